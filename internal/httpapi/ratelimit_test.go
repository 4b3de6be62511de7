package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/ratelimit"
)

// limitedServer is a server with a memory limiter and the clock behind it.
type limitedServer struct {
	h       http.Handler
	advance func(time.Duration)
	metrics *metrics.Metrics
}

// limitedTestServer is testServer with a memory limiter on an injected
// clock, trusting 10.0.0.0/8 as proxies.
func limitedTestServer(t *testing.T, perIP, perPhone string, routes map[string][]string) limitedServer {
	t.Helper()
	_, svc, store := testServerWithStore(t)
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ls, err := ratelimit.NewMemoryStore(1000, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	if err != nil {
		t.Fatal(err)
	}
	ipLimits, _ := ratelimit.ParseLimits(perIP)
	phoneLimits, _ := ratelimit.ParseLimits(perPhone)
	m := metrics.New()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	limiter, err := ratelimit.New(ls, []ratelimit.Rule{{Name: "per_ip", Limits: ipLimits}, {Name: "per_phone", Limits: phoneLimits}},
		"open", logger, ratelimit.Hooks{Rejected: m.RateLimited, BackendError: m.LimiterError})
	if err != nil {
		t.Fatal(err)
	}
	clientIP, _ := ratelimit.NewClientIP([]string{"10.0.0.0/8"})
	d := testDeps(t, svc, store, limiter, routes)
	d.LimitStore, d.ClientIP, d.Metrics, d.Minter.Metrics = ls, clientIP, m, m
	h := NewServer(d, Options{VerifyLimits: routes["verify"]})
	return limitedServer{h: h, advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }, metrics: m}
}

func from(t *testing.T, h http.Handler, method, path, peer string, xff []string, ct, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = peer
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

var defaultRoutes = map[string][]string{"token": {"per_ip", "per_phone"}, "issue": {"per_ip", "per_phone"}, "generate": {"per_ip"}}

func TestPerIPLimit(t *testing.T) {
	s := limitedTestServer(t, "3 per hour", "100 per hour", defaultRoutes)
	for i := range 3 {
		w := from(t, s.h, "GET", "/v1/token/+14155552671/a"+string(rune('0'+i)), "203.0.113.5:999", nil, "", "")
		if w.Code != 200 || w.Header().Get("RateLimit-Policy") == "" {
			t.Fatalf("request %d: %d %v", i+1, w.Code, w.Header())
		}
	}
	w := from(t, s.h, "GET", "/v1/token/+14155552671/a9", "203.0.113.5:999", nil, "", "")
	if w.Code != 429 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Fatalf("4th: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("Retry-After") != "1200" || w.Header().Get("RateLimit-Policy") != `"per_ip";q=3;w=3600` ||
		w.Header().Get("RateLimit") != `"per_ip";r=0;t=3600` {
		t.Errorf("headers %v", w.Header())
	}
	if strings.Contains(w.Body.String(), "eyJ") {
		t.Error("a token in a 429")
	}
	// Another address is not affected; the limit comes back with time.
	if w := from(t, s.h, "GET", "/v1/token/+14155552671/b1", "203.0.113.6:999", nil, "", ""); w.Code != 200 {
		t.Errorf("another IP: %d", w.Code)
	}
	s.advance(20 * time.Minute)
	if w := from(t, s.h, "GET", "/v1/token/+14155552671/a10", "203.0.113.5:999", nil, "", ""); w.Code != 200 {
		t.Errorf("after 20 minutes: %d", w.Code)
	}
	// X-Forwarded-For from an untrusted peer changes nothing.
	if w := from(t, s.h, "GET", "/v1/token/+14155552671/a11", "203.0.113.5:999", []string{"198.51.100.77"}, "", ""); w.Code != 429 {
		t.Errorf("spoofed XFF from an untrusted peer: %d", w.Code)
	}
	// /generateToken answers in the seed's shape.
	for range 3 {
		from(t, s.h, "POST", "/generateToken", "203.0.113.8:1", nil, "application/json", `{"user_data":"x"}`)
	}
	w = from(t, s.h, "POST", "/generateToken", "203.0.113.8:1", nil, "application/json", `{"user_data":"x"}`)
	if w.Code != 429 || w.Body.String() != "{\"status\":429,\"description\":\"Too many requests\"}\n" {
		t.Errorf("generateToken: %d %s", w.Code, w.Body)
	}
	// Admin routes are not limited.
	for range 5 {
		if w := doAuth(t, s.h, "GET", "/v1/tokens/a0", adminKey, "", ""); w.Code == 429 {
			t.Fatal("admin route limited")
		}
	}
	// The rejections are counted, by limit, with no address or phone in labels.
	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `jwtd_ratelimit_rejections_total{limit="per_ip"} 3`) {
		t.Errorf("metrics:\n%s", grep(rec.Body.String(), "jwtd_"))
	}
	for _, leak := range []string{"203.0.113", "4155552671"} {
		if strings.Contains(rec.Body.String(), leak) {
			t.Errorf("metrics carry %q", leak)
		}
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The per-phone limit holds across client addresses (behind a trusted
// proxy, each request from another client).
func TestPerPhoneLimitAcrossIPs(t *testing.T) {
	s := limitedTestServer(t, "100 per hour", "2 per hour", defaultRoutes)
	codes := []int{}
	for i, ip := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "2001:db8:7::1"} {
		w := from(t, s.h, "GET", "/v1/token/4155552671/p"+string(rune('0'+i)), "10.0.0.1:80", []string{ip}, "", "")
		codes = append(codes, w.Code)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 || codes[3] != 429 {
		t.Errorf("codes %v, want 200 200 429 429", codes)
	}
	// Another spelling of the same number is the same phone.
	if w := from(t, s.h, "GET", "/v1/token/%2B1%20(415)%20555-2671/p9", "10.0.0.1:80", []string{"198.51.100.9"}, "", ""); w.Code != 429 {
		t.Errorf("another spelling: %d", w.Code)
	}
	if w := from(t, s.h, "GET", "/v1/token/+14155550000/q1", "10.0.0.1:80", []string{"198.51.100.9"}, "", ""); w.Code != 200 {
		t.Errorf("another phone: %d", w.Code)
	}
	// A keyed caller has a bucket of its own for the phone (issue 22):
	// the anonymous callers' spent bucket does not refuse it, and it is
	// limited all the same.
	for i, want := range []int{201, 201, 429} {
		w := doAuth(t, s.h, "POST", "/v1/tokens", issuerKey, "application/json", `{"phone":"+14155552671"}`)
		if w.Code != want {
			t.Errorf("POST /v1/tokens %d for the phone anonymous callers spent: %d %s, want %d", i+1, w.Code, w.Body, want)
		}
	}
}

// on_backend_error closed: a backend that cannot be reached refuses with 503.
func TestLimiterBackendClosed(t *testing.T) {
	_, svc, store := testServerWithStore(t)
	ls, err := ratelimit.NewRedisStore("redis://127.0.0.1:1/0") // nothing listens on port 1
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	lims, _ := ratelimit.ParseLimits("10 per minute")
	m := metrics.New()
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, tc := range []struct {
		policy string
		code   int
	}{{"closed", 503}, {"open", 200}} {
		limiter, _ := ratelimit.New(ls, []ratelimit.Rule{{Name: "per_ip", Limits: lims}}, tc.policy, logger, ratelimit.Hooks{BackendError: m.LimiterError})
		d := testDeps(t, svc, store, limiter, defaultRoutes)
		d.LimitStore, d.Metrics = ls, m
		h := NewServer(d, Options{})
		if w := do(t, h, "GET", "/v1/token/+14155552671/z", "", ""); w.Code != tc.code {
			t.Errorf("%s: %d %s", tc.policy, w.Code, w.Body)
		}
		if w := do(t, h, "GET", "/readyz", "", ""); w.Code != 503 {
			t.Errorf("readyz with the limiter away: %d", w.Code)
		}
	}
}

// An API-key holder behind the same address as anonymous callers has its
// own bucket: their requests do not use up its limit, and its limit holds
// whichever address it calls from.
func TestAuthenticatedCallersLimitedByKey(t *testing.T) {
	s := limitedTestServer(t, "3 per hour", "100 per hour", defaultRoutes)
	for range 3 {
		from(t, s.h, "POST", "/generateToken", "203.0.113.9:1", nil, "application/json", `{"user_data":"x"}`)
	}
	if w := from(t, s.h, "POST", "/generateToken", "203.0.113.9:1", nil, "application/json", `{"user_data":"x"}`); w.Code != 429 {
		t.Fatalf("4th anonymous: %d", w.Code)
	}
	issue := func(peer string) int {
		r := httptest.NewRequest("POST", "/v1/tokens", strings.NewReader(`{"sub":"a"}`))
		r.RemoteAddr = peer
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+issuerKey)
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, r)
		return w.Code
	}
	for i, peer := range []string{"203.0.113.9:2", "198.51.100.1:1", "198.51.100.2:1"} {
		if code := issue(peer); code != 201 {
			t.Fatalf("issue %d from %s: %d", i+1, peer, code)
		}
	}
	if code := issue("198.51.100.3:1"); code != 429 {
		t.Errorf("4th with the key, from a 4th address: %d", code)
	}
}
