package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestParseLimits(t *testing.T) {
	for in, want := range map[string][]Limit{
		"10 per minute":          {{10, time.Minute}},
		"10/minute":              {{10, time.Minute}},
		"100/hour":               {{100, time.Hour}},
		"5 per 2 seconds":        {{5, 2 * time.Second}},
		"1/second;10/minute":     {{1, time.Second}, {10, time.Minute}},
		"1 per day, 2 per month": {{1, 24 * time.Hour}, {2, 30 * 24 * time.Hour}},
		"3 PER HOUR":             {{3, time.Hour}},
		"":                       nil,
	} {
		got, err := ParseLimits(in)
		if err != nil || len(got) != len(want) {
			t.Errorf("%q: %v %v", in, got, err)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%q: %v, want %v", in, got, want)
			}
		}
	}
	for _, in := range []string{"10", "per minute", "0 per minute", "10 per 0 minutes", "10 per fortnight", "-1/hour", "10 per minute;", "1e3/hour", "10 per minute garbage", "99999999999/second", ";;"} {
		if got, err := ParseLimits(in); err == nil && in != "10 per minute;" {
			t.Errorf("%q: %v accepted", in, got)
		}
	}
}

func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"10 per minute", "10/minute", "1/second;10/minute", "5 per 2 seconds"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lims, err := ParseLimits(s)
		if err != nil {
			return
		}
		for _, l := range lims {
			if l.Count < 1 || l.Period < time.Second {
				t.Fatalf("%q gave %v", s, l)
			}
		}
	})
}

func TestClientIP(t *testing.T) {
	c, err := NewClientIP([]string{"10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer, XFF ignored", "203.0.113.9:1234", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, client appended", "10.1.1.1:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left entries never read", "10.1.1.1:80", []string{"1.1.1.1, 2.2.2.2, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped", "10.1.1.1:80", []string{"198.51.100.1, 10.2.2.2, 192.0.2.7"}, "198.51.100.1"},
		{"several headers are one list", "10.1.1.1:80", []string{"6.6.6.6", "198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"garbage left of the client", "10.1.1.1:80", []string{"garbage, 198.51.100.1"}, "198.51.100.1"},
		{"garbage as the client", "10.1.1.1:80", []string{"198.51.100.1, <script>"}, "10.1.1.1"},
		{"garbage after a trusted hop", "10.1.1.1:80", []string{"1.1.1.1, nope, 10.3.3.3"}, "10.3.3.3"},
		{"no header", "10.1.1.1:80", nil, "10.1.1.1"},
		{"all trusted", "10.1.1.1:80", []string{"10.5.5.5, 10.6.6.6"}, "10.5.5.5"},
		{"port on the entry", "10.1.1.1:80", []string{"198.51.100.1:4444"}, "198.51.100.1"},
		{"IPv6 client", "10.1.1.1:80", []string{"2001:db8:1::5"}, "2001:db8:1::5"},
		{"bracketed IPv6 with port", "10.1.1.1:80", []string{"[2001:db8:1::5]:443"}, "2001:db8:1::5"},
		{"trusted IPv6 proxy", "[2001:db8:ffff::1]:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"4-in-6 peer", "[::ffff:10.1.1.1]:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"untrusted IPv6 peer", "[2001:db8:1::9]:80", []string{"198.51.100.1"}, "2001:db8:1::9"},
		{"empty entries", "10.1.1.1:80", []string{" , "}, "10.1.1.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := c.Resolve(r); got.String() != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := NewClientIP([]string{"not-a-cidr"}); err == nil {
		t.Error("bad CIDR accepted")
	}
	if Key(netip.MustParseAddr("2001:db8:1:2:3:4:5:6")) != "2001:db8:1:2::/64" || Key(netip.MustParseAddr("192.0.2.1")) != "192.0.2.1" {
		t.Error("Key")
	}
}

// FuzzClientIP: any peer address and X-Forwarded-For lines resolve without
// panicking, to the peer itself when the peer is not a trusted proxy, and
// never to an address left of an untrusted hop.
func FuzzClientIP(f *testing.F) {
	f.Add("10.1.1.1:80", "198.51.100.1, 10.2.2.2", "")
	f.Add("203.0.113.9:1", "1.1.1.1", "2.2.2.2")
	f.Add("[2001:db8::1]:443", "[2001:db8::2]:1, garbage", "")
	c, _ := NewClientIP([]string{"10.0.0.0/8", "2001:db8::/32"})
	f.Fuzz(func(t *testing.T, peer, xff1, xff2 string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = peer
		r.Header.Add("X-Forwarded-For", xff1)
		r.Header.Add("X-Forwarded-For", xff2)
		got := c.Resolve(r)
		p := parseHostPort(peer)
		if p.IsValid() && !c.isTrusted(p) && got != p {
			t.Fatalf("untrusted peer %s resolved to %s", p, got)
		}
		_ = Key(got)
	})
}
