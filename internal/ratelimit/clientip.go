package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP resolves the address a request is limited by.
type ClientIP struct {
	trusted []netip.Prefix
}

// NewClientIP trusts the proxies in the given CIDRs (a bare address is a
// /32 or /128).
func NewClientIP(trustedProxies []string) (*ClientIP, error) {
	c := &ClientIP{}
	for _, s := range trustedProxies {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("trusted_proxies: %q is not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		c.trusted = append(c.trusted, p.Masked())
	}
	return c, nil
}

// IsTrusted reports whether a is in trusted_proxies.
func (c *ClientIP) IsTrusted(a netip.Addr) bool { return c.isTrusted(a) }

func (c *ClientIP) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client's address: the TCP peer, unless the peer is a
// trusted proxy; then the right-most X-Forwarded-For address that is not
// trusted (every header line, in order, counts as one list). Entries left of
// that are the client's own words and are never read. If the list runs out
// or an entry is not an address, the nearest trusted hop is the client.
func (c *ClientIP) Resolve(r *http.Request) netip.Addr {
	peer := parseHostPort(r.RemoteAddr)
	if !peer.IsValid() || !c.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, line := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(line, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHostPort(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			return client
		}
		client = a
		if !c.isTrusted(a) {
			return a
		}
	}
	return client
}

// parseHostPort reads "1.2.3.4", "1.2.3.4:5", "2001:db8::1" or
// "[2001:db8::1]:5"; 4-in-6 addresses become IPv4. Invalid is the zero Addr.
func parseHostPort(s string) netip.Addr {
	if s == "" || len(s) > 64 {
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// Key is the rate-limit key of an address: IPv4 as it is, IPv6 by its /64,
// since one subscriber usually holds a whole /64.
func Key(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
