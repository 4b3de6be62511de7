package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/testservice"
)

// limitsConfig shares a Redis; 127.0.0.1 is a trusted proxy so that tests
// can speak for many clients through X-Forwarded-For.
func limitsConfig(t *testing.T, dir, redisURL, perIP, perPhone, onError string) string {
	return writeFile(t, dir, fmt.Sprintf("limits-%d.yaml", time.Now().UnixNano()), fmt.Sprintf(`
ratelimit:
  url: %q
  per_ip: %q
  per_phone: %q
  trusted_proxies: [127.0.0.1/32]
  on_backend_error: %s
`, redisURL, perIP, perPhone, onError))
}

func getFrom(t *testing.T, url, clientIP string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if clientIP != "" {
		req.Header.Set("X-Forwarded-For", clientIP)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Two jwtd processes sharing one Redis allow one client IP exactly the
// configured number of requests, spread across both; the per-phone limit
// holds across client IPs.
func TestLimitsSharedAcrossInstances(t *testing.T) {
	redisURL := testservice.RedisURL(t)
	dir := t.TempDir()
	cfg := limitsConfig(t, dir, redisURL, "7 per hour", "4 per hour", "open")
	a, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "a"))
	b, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "b"))
	client := fmt.Sprintf("198.51.100.%d", time.Now().UnixNano()%200+1)
	allowed := map[string]int{}
	for i := range 20 {
		base := []string{a, b}[i%2]
		phone := fmt.Sprintf("+1415555%04d", i) // a new phone each time: only the IP limit binds
		if getFrom(t, fmt.Sprintf("%s/v1/token/%s/ip-%d", base, phone, i), client) == 200 {
			allowed[base]++
		}
	}
	t.Logf("per-IP limit 7/hour across two instances: %d allowed through a, %d through b, %d refused", allowed[a], allowed[b], 20-allowed[a]-allowed[b])
	if allowed[a]+allowed[b] != 7 || allowed[a] == 0 || allowed[b] == 0 {
		t.Errorf("allowed %v, want 7 in all, spread across both", allowed)
	}

	phone := fmt.Sprintf("+1415556%04d", time.Now().UnixNano()%10000)
	phoneAllowed := 0
	for i := range 10 {
		base := []string{a, b}[i%2]
		ip := fmt.Sprintf("203.0.113.%d", i+1)
		if getFrom(t, fmt.Sprintf("%s/v1/token/%s/ph-%d", base, phone, i), ip) == 200 {
			phoneAllowed++
		}
	}
	t.Logf("per-phone limit 4/hour across ten client IPs and two instances: %d allowed", phoneAllowed)
	if phoneAllowed != 4 {
		t.Errorf("per-phone: %d allowed, want 4", phoneAllowed)
	}
}

// Redis stops mid-test: jwtd follows on_backend_error (open: serve and log;
// closed: 503) and limits again when Redis is back.
func TestLimitsRedisOutage(t *testing.T) {
	bin := testservice.RedisBin(t)
	addr := testservice.Addr(testservice.FreePort(t))
	port := addr[strings.LastIndex(addr, ":")+1:]
	redis := testservice.Start(t, addr, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	dir := t.TempDir()
	url := "redis://" + addr + "/0"
	open, openLogs := startServe(t, nil, "--config", limitsConfig(t, dir, url, "2 per hour", "100 per hour", "open"), "--data-dir", filepath.Join(dir, "o"))
	closed, _ := startServe(t, nil, "--config", limitsConfig(t, dir, url, "2 per hour", "100 per hour", "closed"), "--data-dir", filepath.Join(dir, "c"))

	codes := func(base, client string, n int) []int {
		var out []int
		for i := range n {
			out = append(out, getFrom(t, fmt.Sprintf("%s/v1/token/+14155552671/%s-%d-%d", base, client, i, time.Now().UnixNano()), client))
		}
		return out
	}
	if got := fmt.Sprint(codes(open, "192.0.2.1", 3)); got != "[200 200 429]" {
		t.Fatalf("before the outage: %s", got)
	}
	redis.Stop()
	if got := fmt.Sprint(codes(open, "192.0.2.1", 2)); got != "[200 200]" {
		t.Errorf("open during the outage: %s", got)
	}
	if got := fmt.Sprint(codes(closed, "192.0.2.2", 2)); got != "[503 503]" {
		t.Errorf("closed during the outage: %s", got)
	}
	if code, _ := httpDo(t, "GET", open+"/readyz", "", "", ""); code != 503 {
		t.Errorf("readyz during the outage: %d", code)
	}
	waitLog(t, openLogs, "rate-limit backend unavailable")
	_, metricsBody := httpDo(t, "GET", open+"/metrics", "", "", "")
	if !strings.Contains(metricsBody, "jwtd_ratelimit_backend_errors_total 2") {
		t.Errorf("backend errors not counted:\n%s", grepLines(metricsBody, "jwtd_ratelimit"))
	}
	redis.Restart()
	if got := fmt.Sprint(codes(closed, "192.0.2.3", 3)); got != "[200 200 429]" {
		t.Errorf("closed after Redis came back: %s", got)
	}
	if code, _ := httpDo(t, "GET", open+"/readyz", "", "", ""); code != 200 {
		t.Errorf("readyz after the outage: %d", code)
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
