package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/jwtd/jwtd/internal/testservice"
	"github.com/throttled/throttled/v2"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// backend is one store under test: advance moves its clock (the memory
// store's injected clock; Redis's real one, by waiting).
type backend struct {
	store   *Store
	advance func(time.Duration)
}

func memoryBackend(t *testing.T) backend {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	st, err := NewMemoryStore(1000, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	if err != nil {
		t.Fatal(err)
	}
	return backend{store: st, advance: func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }}
}

func redisBackend(t *testing.T) backend { return redisBackendAt(t, testservice.RedisURL(t)) }

func redisBackendAt(t *testing.T, url string) backend {
	st, err := NewRedisStore(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return backend{store: st, advance: time.Sleep}
}

// uniqueKey keeps tests on a shared Redis apart.
var keySeq atomic.Int64

func uniqueKey(name string) string {
	return fmt.Sprintf("%s-%d-%d", name, time.Now().UnixNano(), keySeq.Add(1))
}

func newLimiter(t *testing.T, b backend, rules map[string]string) *Limiter {
	t.Helper()
	var rs []Rule
	for name, text := range rules {
		lims, err := ParseLimits(text)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, Rule{Name: name, Limits: lims})
	}
	l, err := New(b.store, rs, "open", quiet, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestSuite runs one suite on every backend: memory, one Redis, a
// Sentinel set and a Cluster (each started once for its cases).
func TestSuite(t *testing.T) {
	at := func(start func(testing.TB) string) func(*testing.T) func(*testing.T) backend {
		return func(t *testing.T) func(*testing.T) backend {
			url := start(t)
			return func(t *testing.T) backend { return redisBackendAt(t, url) }
		}
	}
	for name, backends := range map[string]func(*testing.T) func(*testing.T) backend{
		"memory":         func(*testing.T) func(*testing.T) backend { return memoryBackend },
		"redis":          func(*testing.T) func(*testing.T) backend { return redisBackend },
		"redis-sentinel": at(func(t testing.TB) string { return testservice.RedisSentinel(t).URL }),
		"redis-cluster":  at(func(t testing.TB) string { return testservice.RedisCluster(t).URL }),
	} {
		t.Run(name, func(t *testing.T) {
			mk := backends(t)
			for _, tc := range []struct {
				name string
				fn   func(*testing.T, backend)
			}{
				{"ExactlyCount", testExactlyCount},
				{"KeysAndRulesApart", testKeysAndRulesApart},
				{"Replenishes", testReplenishes},
				{"SeveralLimits", testSeveralLimits},
				{"Concurrent", testConcurrent},
				{"Check", testCheck},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, mk(t)) })
			}
		})
	}
}

func testExactlyCount(t *testing.T, b backend) {
	l := newLimiter(t, b, map[string]string{"per_ip": "5 per hour"})
	key := uniqueKey("ip")
	for i := range 5 {
		d, err := l.Allow(context.Background(), "per_ip", key)
		if err != nil || !d.Allowed || d.Remaining != 4-i {
			t.Fatalf("request %d: %+v %v", i+1, d, err)
		}
	}
	d, err := l.Allow(context.Background(), "per_ip", key)
	if err != nil || d.Allowed {
		t.Fatalf("request 6: %+v %v", d, err)
	}
	// One request comes back every 12 minutes.
	if d.RetryAfter < 11*time.Minute || d.RetryAfter > 12*time.Minute || d.Limit.Count != 5 {
		t.Errorf("retry after %s, limit %v", d.RetryAfter, d.Limit)
	}
	if d.Policy != `"per_ip";q=5;w=3600` {
		t.Errorf("policy %q", d.Policy)
	}
}

func testKeysAndRulesApart(t *testing.T, b backend) {
	l := newLimiter(t, b, map[string]string{"per_ip": "1 per hour", "per_phone": "1 per hour"})
	a, c := uniqueKey("a"), uniqueKey("c")
	for _, step := range []struct {
		rule, key string
		want      bool
	}{
		{"per_ip", a, true}, {"per_ip", a, false}, {"per_ip", c, true}, {"per_phone", a, true}, {"per_phone", a, false},
	} {
		if d, err := l.Allow(context.Background(), step.rule, step.key); err != nil || d.Allowed != step.want {
			t.Errorf("%s %s: %+v %v, want allowed=%v", step.rule, step.key, d, err, step.want)
		}
	}
	if d, _ := l.Allow(context.Background(), "unlimited", a); !d.Allowed || l.Has("unlimited") {
		t.Error("a rule without limits refused")
	}
}

func testReplenishes(t *testing.T, b backend) {
	// 2 per 2 seconds: two at once, then one a second. The margins (a
	// second) keep a slow machine from turning a refusal into a pass.
	l := newLimiter(t, b, map[string]string{"r": "2 per 2 seconds"})
	key := uniqueKey("r")
	allow := func() bool { d, _ := l.Allow(context.Background(), "r", key); return d.Allowed }
	if got := fmt.Sprint(allow(), allow(), allow()); got != "true true false" {
		t.Fatalf("2 per 2 seconds at once: %s, want true true false", got)
	}
	b.advance(1200 * time.Millisecond)
	if !allow() {
		t.Error("no request allowed 1.2s later")
	}
	if allow() {
		t.Error("two requests allowed 1.2s later")
	}
}

func testSeveralLimits(t *testing.T, b backend) {
	l := newLimiter(t, b, map[string]string{"r": "2 per 2 seconds; 3/minute"})
	key := uniqueKey("r")
	allow := func() Decision { d, _ := l.Allow(context.Background(), "r", key); return d }
	if first, second := allow(), allow(); !first.Allowed || !second.Allowed {
		t.Fatal("first two refused")
	}
	if d := allow(); d.Allowed || d.Limit.Period != 2*time.Second {
		t.Fatalf("third: %+v, want refused by the per-2-seconds limit", d)
	}
	b.advance(2200 * time.Millisecond)
	if !allow().Allowed {
		t.Fatal("refused after two seconds")
	}
	b.advance(2200 * time.Millisecond)
	if d := allow(); d.Allowed || d.Limit.Period != time.Minute {
		t.Fatalf("fifth: %+v, want refused by the per-minute limit", d)
	}
}

func testConcurrent(t *testing.T, b backend) {
	l := newLimiter(t, b, map[string]string{"r": "20 per hour"})
	// What is tested is the count under contention, not the deadline: 60
	// checks that each dial a connection can pass a second on a busy
	// machine (they did: on a 2-core machine under a cold make test).
	l.deadline = time.Minute
	key := uniqueKey("r")
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, err := l.Allow(context.Background(), "r", key); err == nil && d.Allowed {
				allowed.Add(1)
			} else if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := allowed.Load(); n != 20 {
		t.Errorf("%d of 60 concurrent requests allowed, want exactly 20", n)
	}
}

// Redis stops mid-test: the limiter follows on_backend_error, counts and
// logs it, and limits again when Redis is back.
func TestRedisOutage(t *testing.T) {
	bin := testservice.RedisBin(t)
	addr := testservice.Addr(testservice.FreePort(t))
	port := addr[strings.LastIndex(addr, ":")+1:]
	p := testservice.Start(t, addr, bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	st, err := NewRedisStore("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lims, _ := ParseLimits("1 per hour")
	var backendErrors atomic.Int32
	var logs strings.Builder
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(b)
	}), nil))
	mk := func(policy string) *Limiter {
		l, err := New(st, []Rule{{Name: "per_ip", Limits: lims}}, policy, logger, Hooks{BackendError: func() { backendErrors.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	open, closed := mk("open"), mk("closed")
	key := uniqueKey("outage")
	if d, err := open.Allow(context.Background(), "per_ip", key); err != nil || !d.Allowed {
		t.Fatalf("before: %+v %v", d, err)
	}
	p.Stop()
	if d, err := open.Allow(context.Background(), "per_ip", key); !errors.Is(err, ErrBackend) || !d.Allowed {
		t.Errorf("open while down: %+v %v", d, err)
	}
	if d, err := closed.Allow(context.Background(), "per_ip", key); !errors.Is(err, ErrBackend) || d.Allowed {
		t.Errorf("closed while down: %+v %v", d, err)
	}
	if err := st.Ping(context.Background()); !errors.Is(err, ErrBackend) {
		t.Errorf("ping while down: %v", err)
	}
	if backendErrors.Load() != 2 || !strings.Contains(logs.String(), "rate-limit backend unavailable") {
		t.Errorf("%d backend errors counted; log: %s", backendErrors.Load(), logs.String())
	}
	p.Restart() // a new, empty Redis
	var d Decision
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d, err = open.Allow(context.Background(), "per_ip", key); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || !d.Allowed {
		t.Fatalf("after Redis came back: %+v %v", d, err)
	}
	if d, err := open.Allow(context.Background(), "per_ip", key); err != nil || d.Allowed {
		t.Errorf("limiting did not resume: %+v %v", d, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// Check counts a request against the kinds it is given, skips kinds it has
// no key for, reports the tightest limit, and refuses with *LimitedError.
func testCheck(t *testing.T, b backend) {
	l := newLimiter(t, b, map[string]string{"per_ip": "5 per hour", "per_phone": "2 per hour"})
	ctx := context.Background()
	ip := netip.MustParseAddr("2001:db8:1:2::7")
	phone := uniqueKey("+1415")
	d, err := l.Check(ctx, []string{"per_ip", "per_phone"}, Caller{IP: ip}, phone)
	if err != nil || d.Rule != "per_phone" || d.Remaining != 1 {
		t.Fatalf("first: %+v %v, want per_phone with 1 left", d, err)
	}
	if _, err := l.Check(ctx, []string{"per_ip", "per_phone"}, Caller{IP: netip.MustParseAddr("2001:db8:1:2::8")}, phone); err != nil {
		t.Fatal(err) // another address of the same /64
	}
	var limited *LimitedError
	d, err = l.Check(ctx, []string{"per_ip", "per_phone"}, Caller{IP: ip}, phone)
	if !errors.As(err, &limited) || d.Allowed || limited.Decision.Rule != "per_phone" {
		t.Fatalf("third for the phone: %+v %v", d, err)
	}
	// The /64 has used 3 of its 5; no phone, no phone limit.
	d, err = l.Check(ctx, []string{"per_ip", "per_phone"}, Caller{IP: ip}, "")
	if err != nil || d.Rule != "per_ip" || d.Remaining != 1 {
		t.Errorf("ip only: %+v %v", d, err)
	}
	// An API key from the same address has a bucket of its own.
	key := uniqueKey("ops")
	if d, err := l.Check(ctx, []string{"per_ip"}, Caller{IP: ip, APIKey: key}, ""); err != nil || d.Remaining != 4 {
		t.Errorf("an API key behind the /64: %+v %v", d, err)
	}
	// The phone's anonymous bucket is spent; each API key has a bucket of
	// its own for the phone, which the others cannot spend either.
	other := uniqueKey("crm")
	for i := range 2 {
		if d, err := l.Check(ctx, []string{"per_phone"}, Caller{IP: ip, APIKey: key}, phone); err != nil || d.Remaining != 1-i {
			t.Fatalf("keyed mint %d for a phone anonymous callers spent: %+v %v", i+1, d, err)
		}
	}
	if _, err := l.Check(ctx, []string{"per_phone"}, Caller{IP: ip, APIKey: key}, phone); !errors.As(err, &limited) {
		t.Errorf("a key's third for the phone: %v", err)
	}
	if d, err := l.Check(ctx, []string{"per_phone"}, Caller{APIKey: other}, phone); err != nil || d.Remaining != 1 {
		t.Errorf("another key for the phone: %+v %v", d, err)
	}
	if _, err := l.Check(ctx, []string{"per_phone"}, Caller{IP: netip.MustParseAddr("192.0.2.9")}, phone); !errors.As(err, &limited) {
		t.Errorf("anonymous after the keyed mints: %v, want still limited", err)
	}
	// No kinds, an invalid address, or a nil Limiter: nothing applies.
	for _, l := range []*Limiter{l, nil} {
		if d, err := l.Check(ctx, nil, Caller{IP: ip}, phone); err != nil || d.Remaining != -1 {
			t.Errorf("no kinds: %+v %v", d, err)
		}
	}
	if d, err := l.Check(ctx, []string{"per_ip"}, Caller{}, ""); err != nil || d.Remaining != -1 {
		t.Errorf("invalid address: %+v %v", d, err)
	}
}

// Churn cannot reset a limit: with the table full, the buckets that refill
// soonest (the churn's own) give way, not a saturated one, and no new
// caller is refused for want of a slot.
func TestMemoryStoreResistsChurn(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	st, err := NewMemoryStore(50, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	l := newLimiter(t, backend{store: st}, map[string]string{"per_ip": "100 per hour", "per_phone": "3 per hour"})
	ctx := context.Background()
	home := Caller{IP: netip.MustParseAddr("192.0.2.1")}
	for range 3 {
		if _, err := l.Check(ctx, []string{"per_ip", "per_phone"}, home, "+14155552671"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i), 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
		if _, err := l.Check(ctx, []string{"per_ip"}, Caller{IP: ip}, ""); err != nil {
			t.Fatalf("new address %d in a full table: %v", i, err)
		}
	}
	if _, err := l.Check(ctx, []string{"per_ip"}, Caller{APIKey: "ops"}, ""); err != nil {
		t.Errorf("a new API key in a full table: %v", err)
	}
	var limited *LimitedError
	if _, err := l.Check(ctx, []string{"per_ip", "per_phone"}, home, "+14155552671"); !errors.As(err, &limited) || limited.Decision.Rule != "per_phone" {
		t.Errorf("the phone's 4th in the hour, after the churn: %v", err)
	}
	if len(st.gcra.(*memStore).entries) > 50 {
		t.Errorf("%d keys held, max 50", len(st.gcra.(*memStore).entries))
	}
}

// go-redis's own lines reach jwtd's JSON log, one per 10 s at most.
func TestRedisLogsRouted(t *testing.T) {
	var buf strings.Builder
	l := &redisLog{log: slog.New(slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) { return buf.WriteString(string(b)) }), nil)),
		every: logevery.New(time.Hour)}
	for range 5 {
		l.Printf(context.Background(), "pool: dial %s: %v", "tcp 127.0.0.1:1", "refused")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"msg":"redis client"`) || !strings.Contains(lines[0], "dial tcp 127.0.0.1:1: refused") {
		t.Errorf("log: %q", buf.String())
	}
}

// losingStore is a GCRA store whose every compare-and-swap loses, as under a
// flood of requests on one key.
type losingStore struct{ throttled.GCRAStoreCtx }

func (losingStore) GetWithTime(context.Context, string) (int64, time.Time, error) {
	return 1, time.Now(), nil
}

func (losingStore) CompareAndSwapWithTTL(context.Context, string, int64, int64, time.Duration) (bool, error) {
	return false, nil
}

// A key whose updates keep losing their compare-and-swap is refused, not
// treated as a backend outage (which on_backend_error open would allow).
// This also pins the library's error text the limiter recognises: were it
// to change, the request would be allowed and this test would fail.
func TestCASExhaustionRefuses(t *testing.T) {
	lims, _ := ParseLimits("5 per minute")
	var backendErrors atomic.Int32
	l, err := New(&Store{gcra: losingStore{}}, []Rule{{Name: "per_ip", Limits: lims}}, "open", quiet,
		Hooks{BackendError: func() { backendErrors.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := l.Allow(context.Background(), "per_ip", "flooded")
	if err != nil || d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("Allow = %+v, %v; want refused with a Retry-After", d, err)
	}
	if n := backendErrors.Load(); n != 0 {
		t.Errorf("counted as %d backend errors", n)
	}
}
