// Package connlimit bounds a server's connections, in total and per client
// address, so that one address cannot hold the server: past its share it
// gives up its own idle keep-alive connections, or has its new ones
// refused, while other clients are still served. When the total is
// reached, the longest-idle connection (anyone's) is closed to make room,
// as nginx drains reusable connections; only when every connection is busy
// does a new one wait.
package connlimit

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/jwtd/jwtd/internal/ratelimit"
)

// Options configure a Listener.
type Options struct {
	// Total bounds the open connections; PerClient those of one client
	// address (IPv6 by /64), unless it is Total or more. Both must be
	// positive.
	Total, PerClient int
	// Exempt reports addresses PerClient does not bound (trusted proxies,
	// which carry many clients' connections); nil exempts none.
	Exempt func(netip.Addr) bool
	// Shed is told of every connection closed or refused to keep to the
	// bounds (reason: "client_idle_closed", "client_refused",
	// "idle_closed"); nil tells nobody.
	Shed func(client netip.Addr, reason string)
	// Now replaces the clock (tests); nil is time.Now.
	Now func() time.Time
}

// Listener applies Options to the connections it accepts. Its ConnState
// method must be the http.Server's ConnState (or called from it): it says
// which connections are idle.
type Listener struct {
	net.Listener
	opts Options

	mu      sync.Mutex
	changed *sync.Cond // a connection closed or went idle, or the listener closed
	open    int
	clients map[string]map[*conn]struct{}
	closed  bool
}

// New wraps l.
func New(l net.Listener, opts Options) (*Listener, error) {
	if opts.Total < 1 || opts.PerClient < 1 {
		return nil, errors.New("connlimit: the bounds must be positive")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cl := &Listener{Listener: l, opts: opts, clients: map[string]map[*conn]struct{}{}}
	cl.changed = sync.NewCond(&cl.mu)
	return cl, nil
}

type conn struct {
	net.Conn
	l         *Listener
	client    netip.Addr
	key       string
	exempt    bool
	idleSince time.Time // zero unless idle between requests
	once      sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

// Accept returns the next connection the bounds admit.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, err := l.admit(nc)
		if err != nil {
			nc.Close()
			return nil, err
		}
		if c != nil {
			return c, nil
		}
	}
}

// admit counts nc in, closing idle connections to make room, or refuses
// it (nil), or waits for room while every connection is busy.
func (l *Listener) admit(nc net.Conn) (*conn, error) {
	c := &conn{Conn: nc, l: l}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.client = ap.Addr().Unmap()
	}
	c.key = ratelimit.Key(c.client) // IPv6 by /64, as the rate limits count
	c.exempt = l.opts.Exempt != nil && l.opts.Exempt(c.client)
	var evict []*conn
	defer func() {
		for _, e := range evict {
			e.Close()
		}
	}()
	l.mu.Lock()
	defer l.mu.Unlock()
	own := l.clients[c.key]
	// A share as large as the whole is no share: the total alone bounds.
	if !c.exempt && l.opts.PerClient < l.opts.Total && len(own) >= l.opts.PerClient {
		oldest := longestIdle(own)
		if oldest == nil {
			l.shed(c.client, "client_refused")
			nc.Close()
			return nil, nil
		}
		l.shed(c.client, "client_idle_closed")
		l.forget(oldest)
		evict = append(evict, oldest)
	}
	for l.open >= l.opts.Total {
		if l.closed {
			return nil, net.ErrClosed
		}
		var oldest *conn
		for _, cs := range l.clients {
			if o := longestIdle(cs); o != nil && (oldest == nil || o.idleSince.Before(oldest.idleSince)) {
				oldest = o
			}
		}
		if oldest == nil {
			l.changed.Wait()
			continue
		}
		l.shed(oldest.client, "idle_closed")
		l.forget(oldest)
		evict = append(evict, oldest)
	}
	if l.clients[c.key] == nil {
		l.clients[c.key] = map[*conn]struct{}{}
	}
	l.clients[c.key][c] = struct{}{}
	l.open++
	return c, nil
}

func (l *Listener) shed(client netip.Addr, reason string) {
	if l.opts.Shed != nil {
		l.opts.Shed(client, reason)
	}
}

func longestIdle(cs map[*conn]struct{}) *conn {
	var oldest *conn
	for c := range cs {
		if !c.idleSince.IsZero() && (oldest == nil || c.idleSince.Before(oldest.idleSince)) {
			oldest = c
		}
	}
	return oldest
}

// forget stops counting c; l.mu is held. It is called once for each
// connection: from release, or when admit picks it to close (its Close
// then finds it gone).
func (l *Listener) forget(c *conn) {
	cs := l.clients[c.key]
	if _, ok := cs[c]; !ok {
		return
	}
	delete(cs, c)
	if len(cs) == 0 {
		delete(l.clients, c.key)
	}
	l.open--
	l.changed.Broadcast()
}

func (l *Listener) release(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forget(c)
}

// Close closes the listener; an Accept waiting for room returns.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.changed.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// ConnState records which connections are idle between requests: only
// those are closed to make room.
func (l *Listener) ConnState(nc net.Conn, state http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateIdle:
		c.idleSince = l.opts.Now()
		l.changed.Broadcast()
	case http.StateActive, http.StateHijacked:
		c.idleSince = time.Time{}
	}
}
