package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
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

	// Headers: 16 KiB in all, and not a byte more.
	for size, want := range map[int]int{15 << 10: 200, 17000: 431} {
		req, _ := http.NewRequest("GET", base+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("p", size))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("a %d-byte header: %d, want %d", size, resp.StatusCode, want)
		}
	}

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

// http.max_connections bounds the open connections: past it, a client
// waits for one to close instead of taking the process's file descriptors.
func TestMaxConnections(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", "http: {max_connections: 2}\n")
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	http.DefaultClient.CloseIdleConnections() // startServe's polling held one
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept both
	client := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := client.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("a third connection was served: %d", resp.StatusCode)
	}
	held[0].Close()
	client.Timeout = 5 * time.Second
	resp, err := client.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	resp.Body.Close()
}

// /verifyToken is limited by default, per caller, in a bucket of its own
// (per_ip_verify): a burst of verifications is refused with Retry-After,
// and does not use up what the same caller may mint.
func TestVerifyTokenLimitedByDefault(t *testing.T) {
	base, _ := startServe(t, nil, "--data-dir", filepath.Join(t.TempDir(), "data"))
	body := `{"Token":"x.y.z","Signing_key":"k"}`
	// 200 requests from 16 clients: far more than 50 within the second
	// they take, however slow the machine.
	var mu sync.Mutex
	passed, refused, noRetry := 0, 0, 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 / 16 {
				req, _ := http.NewRequest("POST", base+"/verifyToken", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				switch {
				case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "":
					refused++
				case resp.StatusCode == 429:
					noRetry++
				default:
					passed++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if noRetry > 0 {
		t.Errorf("%d 429s without Retry-After", noRetry)
	}
	if passed < 50 || refused == 0 {
		t.Errorf("200 verifications at once: %d passed, %d refused; want the first 50 through and the rest limited", passed, refused)
	}
	if code, body := httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"u"}`); code != 200 {
		t.Errorf("generateToken after the verify burst: %d %s", code, body)
	}
}
