package connlimit

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// harness accepts on a loopback listener and hands the server side of
// each admitted connection back.
type harness struct {
	l        *Listener
	accepted chan net.Conn
	mu       sync.Mutex
	shed     []string
	now      time.Time
}

func newHarness(t *testing.T, total, perClient int) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{accepted: make(chan net.Conn, 16), now: time.Unix(1e9, 0)}
	h.l, err = New(ln, Options{Total: total, PerClient: perClient,
		Shed: func(_ netip.Addr, reason string) { h.mu.Lock(); h.shed = append(h.shed, reason); h.mu.Unlock() },
		Now:  func() time.Time { return h.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.l.Close() })
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			h.accepted <- c
		}
	}()
	return h
}

// dial connects from the loopback address from and returns the client
// side, and the server side if it was admitted within a short while.
func (h *harness) dial(t *testing.T, from string) (client, server net.Conn) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", h.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case s := <-h.accepted:
		return c, s
	case <-time.After(300 * time.Millisecond):
		return c, nil
	}
}

// closedByServer reports whether the server closed the client's
// connection.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := c.Read(make([]byte, 1))
	return err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestPerClientShare(t *testing.T) {
	h := newHarness(t, 10, 2)
	c1, s1 := h.dial(t, "127.0.0.1")
	_, s2 := h.dial(t, "127.0.0.1")
	h.l.ConnState(s1, http.StateIdle)
	h.now = h.now.Add(time.Second)
	h.l.ConnState(s2, http.StateActive)
	// At its share, the address's idle connection makes room.
	_, s3 := h.dial(t, "127.0.0.1")
	if s3 == nil {
		t.Fatal("a third connection was not admitted though one of the address's was idle")
	}
	if !closedByServer(c1) {
		t.Fatal("the idle connection was not closed to make room")
	}
	// All busy: the next is refused, and another address is served.
	h.l.ConnState(s3, http.StateActive)
	c4, s4 := h.dial(t, "127.0.0.1")
	if s4 != nil || !closedByServer(c4) {
		t.Errorf("a connection past the share of a busy address was admitted")
	}
	if _, s := h.dial(t, "127.0.0.2"); s == nil {
		t.Errorf("another address was not served")
	}
	if got := len(h.shed); got != 2 || h.shed[0] != "client_idle_closed" || h.shed[1] != "client_refused" {
		t.Errorf("shed %v", h.shed)
	}
}

func TestTotalMakesRoomFromTheLongestIdle(t *testing.T) {
	h := newHarness(t, 3, 3) // a share as large as the total: no share
	var clients, servers []net.Conn
	for _, from := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		c, s := h.dial(t, from)
		clients, servers = append(clients, c), append(servers, s)
	}
	h.l.ConnState(servers[1], http.StateIdle) // idle longest
	h.now = h.now.Add(time.Second)
	h.l.ConnState(servers[0], http.StateIdle)
	h.l.ConnState(servers[2], http.StateActive)
	if _, s := h.dial(t, "127.0.0.4"); s == nil || !closedByServer(clients[1]) {
		t.Fatal("at the total, the longest-idle connection did not make room")
	}
	// Every connection busy: a new one waits until one closes.
	h.l.ConnState(servers[0], http.StateActive)
	c, s := h.dial(t, "127.0.0.5")
	if s != nil {
		t.Fatal("admitted past the total with every connection busy")
	}
	servers[2].Close()
	_ = c
	select {
	case <-h.accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("not admitted after a connection closed")
	}
}
