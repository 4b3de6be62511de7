package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
)

// A client that sends its header slowly is cut off after
// http.read_header_timeout; a body over http.max_body_bytes gets 413 on
// every route that reads one.
func TestServerLimits(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
http: {read_header_timeout: 500ms, read_timeout: 2s, max_body_bytes: 4096}
ratelimit: {routes: {token: [], issue: [], generate: []}}
api_keys:
  - {name: t, sha256: %q, scopes: [admin, issue, introspect]}
`, apikey.Hash(testAdminKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	addr := strings.TrimPrefix(base, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	// Trickle a header line now and then, never finishing the header.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			time.Sleep(200 * time.Millisecond)
			if _, err := fmt.Fprintf(conn, "X-Slow-%d: y\r\n", i); err != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = bufio.NewReader(conn).ReadString('\n')
	cut := time.Since(start)
	if err == nil || cut > 3*time.Second {
		t.Errorf("slow header: read returned %v after %s; want the connection closed after about 500ms", err, cut)
	}
	conn.Close()
	<-done

	big := `{"user_data":"` + strings.Repeat("x", 8192) + `"}`
	for _, route := range []struct{ method, path, ct string }{
		{"POST", "/generateToken", "application/json"},
		{"GET", "/verifyToken", "application/json"},
		{"POST", "/verifyToken", "application/json"},
		{"POST", "/v1/tokens", "application/json"},
		{"POST", "/v1/revoke", "application/json"},
		{"POST", "/v1/introspect", "application/x-www-form-urlencoded"},
	} {
		code, body := httpDo(t, route.method, base+route.path, testAdminKey, route.ct, big)
		if code != 413 {
			t.Errorf("%s %s with 8 KiB: %d %s", route.method, route.path, code, body)
		}
	}
}
