package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
)

// ErrBackend wraps a failure to reach the rate-limit backend.
var ErrBackend = errors.New("rate-limit backend unavailable")

// Store is where GCRA state lives: a bounded in-memory LRU, or Redis (one
// server, Sentinel or Cluster).
type Store struct {
	gcra  throttled.GCRAStoreCtx
	redis redis.UniversalClient // nil for memory
}

// NewMemoryStore keeps at most maxKeys keys; when full, the bucket nearest
// to refilling gives way (see memStore). now, when not nil, replaces the
// clock (tests).
func NewMemoryStore(maxKeys int, now func() time.Time) (*Store, error) {
	if maxKeys < 1 {
		return nil, errors.New("ratelimit.max_keys must be positive")
	}
	return &Store{gcra: newMemStore(maxKeys, now)}, nil
}

// NewRedisStore keeps state in Redis, timed by the Redis server's clock, so
// that every instance sharing it shares the limits. url is one of the forms
// ValidateURL takes: one server, Sentinel (go-redis's failover client
// follows the primary Sentinels name) or Cluster. It connects lazily.
func NewRedisStore(url string) (*Store, error) {
	cfg, err := parseRedisURL(url)
	if err != nil {
		return nil, err
	}
	client := cfg.newClient()
	return &Store{gcra: redisGCRA{client: client, prefix: "jwtd:rl:"}, redis: client}, nil
}

// OpenStore opens the store a URL names: memory:// or a Redis form.
func OpenStore(url string, maxKeys int) (*Store, error) {
	if url == "" || url == "memory://" {
		return NewMemoryStore(maxKeys, nil)
	}
	return NewRedisStore(url)
}

// Ping checks that the backend answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.redis == nil {
		return nil
	}
	if err := pingRedis(ctx, s.redis); err != nil {
		return fmt.Errorf("%w: %v", ErrBackend, err)
	}
	return nil
}

// Close releases the backend's connections.
func (s *Store) Close() error {
	if s.redis == nil {
		return nil
	}
	return s.redis.Close()
}

// Rule is a named set of limits, such as "per_ip" with "60 per minute".
type Rule struct {
	Name   string
	Limits []Limit
}

// casAttempts bounds the compare-and-swap retries of one update;
// casExhausted starts throttled's error when they run out (it has no
// sentinel for it).
const (
	casAttempts  = 32
	casExhausted = "Failed to store updated rate limit data"
)

// Hooks observe the limiter; every field may be nil.
type Hooks struct {
	Rejected     func(rule string)
	BackendError func()
}

// Limiter applies rules over a store.
type Limiter struct {
	rules  map[string][]limiter
	remote bool // the store is across a network (Redis): checks get a deadline
	// deadline bounds a check against a remote store (backendDeadline).
	deadline time.Duration
	open     bool
	log      *slog.Logger
	hooks    Hooks
	policy   map[string]string

	logEvery *logevery.Every // backend-error log lines
}

// backendLogEvery spaces the backend-error log lines during an outage; the
// metric counts every one.
const backendLogEvery = 10 * time.Second

type limiter struct {
	limit  Limit
	gcra   *throttled.GCRARateLimiterCtx
	suffix string // of its keys in the store: the rule and the limit
}

// New builds a limiter. onBackendError is "open" (allow, log, count) or
// "closed" (refuse) for when the store cannot be reached.
func New(store *Store, rules []Rule, onBackendError string, log *slog.Logger, hooks Hooks) (*Limiter, error) {
	l := &Limiter{rules: map[string][]limiter{}, remote: store.redis != nil, deadline: backendDeadline, log: log, hooks: hooks, policy: map[string]string{},
		logEvery: logevery.New(backendLogEvery)}
	switch onBackendError {
	case "", "open":
		l.open = true
	case "closed":
	default:
		return nil, fmt.Errorf("on_backend_error %q is not open or closed", onBackendError)
	}
	for _, r := range rules {
		var policies []string
		for _, lim := range r.Limits {
			// GCRA with a burst of Count−1: Count requests at once, then one
			// every Period/Count.
			g, err := throttled.NewGCRARateLimiterCtx(store.gcra, throttled.RateQuota{
				MaxRate: throttled.PerDuration(lim.Count, lim.Period), MaxBurst: lim.Count - 1,
			})
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", r.Name, lim, err)
			}
			g.SetMaxCASAttemptsLimit(casAttempts)
			suffix := fmt.Sprintf("%s:%d/%d", r.Name, lim.Count, int64(lim.Period/time.Second))
			l.rules[r.Name] = append(l.rules[r.Name], limiter{limit: lim, gcra: g, suffix: suffix})
			policies = append(policies, fmt.Sprintf("%q;q=%d;w=%d", r.Name, lim.Count, int(lim.Period/time.Second)))
		}
		l.policy[r.Name] = strings.Join(policies, ", ")
	}
	return l, nil
}

// Has reports whether a rule has limits.
func (l *Limiter) Has(rule string) bool { return len(l.rules[rule]) > 0 }

// Decision is the outcome of one check.
type Decision struct {
	Allowed    bool
	Rule       string
	Limit      Limit         // the limit that refused, or the tightest one
	Remaining  int           // requests left under Limit now
	Reset      time.Duration // until Limit is back to full
	RetryAfter time.Duration // when refused: until the next request may pass
	Policy     string        // the RateLimit-Policy header value
}

// backendDeadline is how long a check may wait on a remote store before
// it is answered as on_backend_error says.
const backendDeadline = time.Second

// Allow counts one request against every limit of the rule for key. When
// the store cannot be reached it returns an error wrapping ErrBackend and a
// Decision that follows on_backend_error.
func (l *Limiter) Allow(ctx context.Context, rule, key string) (Decision, error) {
	d := Decision{Allowed: true, Rule: rule, Remaining: -1, Policy: l.policy[rule]}
	if l.remote {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.deadline)
		defer cancel()
	}
	sum := sha256.Sum256([]byte(key))
	for i := range l.rules[rule] {
		lim := &l.rules[rule][i]
		limited, res, err := lim.gcra.RateLimitCtx(ctx, lim.storeKey(sum), 1)
		if err != nil && strings.HasPrefix(err.Error(), casExhausted) {
			// So many concurrent requests on one key that the update kept
			// losing its compare-and-swap: that is a flood, so refuse
			// rather than let on_backend_error open the door to it.
			limited, err = true, nil
			res.RetryAfter, res.ResetAfter = time.Second, lim.limit.Period
		}
		if err != nil {
			if l.hooks.BackendError != nil {
				l.hooks.BackendError()
			}
			l.logBackendError(rule, err)
			return Decision{Allowed: l.open, Rule: rule, Remaining: -1, Policy: l.policy[rule]}, fmt.Errorf("%w: %v", ErrBackend, err)
		}
		if limited {
			if l.hooks.Rejected != nil {
				l.hooks.Rejected(rule)
			}
			return Decision{Allowed: false, Rule: rule, Limit: lim.limit, Remaining: 0, Reset: res.ResetAfter,
				RetryAfter: res.RetryAfter, Policy: l.policy[rule]}, nil
		}
		if d.Remaining < 0 || res.Remaining < d.Remaining {
			d.Limit, d.Remaining, d.Reset = lim.limit, res.Remaining, res.ResetAfter
		}
	}
	return d, nil
}

// storeKey names a key's state: the key's hash, so that no phone number or
// address is written to Redis in the clear, then the rule and the limit (so
// that a changed limit starts afresh). The hash is a Redis Cluster hash tag
// ({...}): every limit of every rule for one key lives in one slot, on one
// node.
func (lim *limiter) storeKey(sum [sha256.Size]byte) string {
	b := make([]byte, 0, 34+len(lim.suffix))
	b = append(b, '{')
	b = hex.AppendEncode(b, sum[:16])
	b = append(b, "}:"...)
	return string(append(b, lim.suffix...))
}

func (l *Limiter) logBackendError(rule string, err error) {
	ok, held := l.logEvery.Allow()
	if !ok {
		return
	}
	policy := "closed: refusing"
	if l.open {
		policy = "open: allowing"
	}
	l.log.Error("rate-limit backend unavailable", "rule", rule, "on_backend_error", policy,
		"errors_since_last_line", held, "err", err)
}

// LimitedError is a request refused by a limit. Its Decision says which
// limit, and when the next request may pass.
type LimitedError struct{ Decision Decision }

func (e *LimitedError) Error() string {
	return fmt.Sprintf("%s limit of %s reached", e.Decision.Rule, e.Decision.Limit)
}

// PerPhone is the rule keyed by phone number; every other rule is keyed by
// the caller.
const PerPhone = "per_phone"

// Caller is who a request is counted as under the per_ip rules: the API key
// it authenticated with, when it did (so that callers behind one address
// share no bucket with anonymous ones, nor with each other), else its
// address.
type Caller struct {
	IP     netip.Addr
	APIKey string // the key's configured name
}

// phoneKey is the caller's per_phone key for phone, or "" for no phone.
// Anonymous callers share one bucket per phone: the limit is there against
// SMS pumping, where many addresses aim at one number, so it must not be
// per address. Each API key has a bucket of its own per phone: a keyed
// caller is one the operator chose and can revoke, and none of them, nor
// any anonymous caller, can spend another's. The buckets per phone are
// thus bounded by the configured keys, plus one.
func (c Caller) phoneKey(phone string) string {
	switch {
	case phone == "":
		return ""
	case c.APIKey != "":
		return "apikey:" + c.APIKey + "\x00" + phone
	}
	return phone
}

// key is the caller's per_ip key, or "" when it has none.
func (c Caller) key() string {
	switch {
	case c.APIKey != "":
		return "apikey:" + c.APIKey
	case c.IP.IsValid():
		return Key(c.IP)
	}
	return ""
}

// Check counts one request against the named rules: per_phone is keyed
// by phone (and API key, for a keyed caller: see phoneKey), every other
// rule (per_ip, per_ip_verify) by the caller: its API key or its address. A caller with neither, or an empty phone, skips the
// rules keyed by it. It returns the tightest
// decision (for the RateLimit headers; Remaining < 0 when none applied), a
// *LimitedError when a limit refuses, or an error wrapping ErrBackend when
// the backend is away and on_backend_error is closed. With
// on_backend_error open, a backend error allows the request without
// checking the remaining rules: they share the backend. A nil Limiter
// allows everything.
func (l *Limiter) Check(ctx context.Context, rules []string, caller Caller, phone string) (Decision, error) {
	tightest := Decision{Allowed: true, Remaining: -1}
	if l == nil {
		return tightest, nil
	}
	for _, rule := range rules {
		key := caller.key()
		if rule == PerPhone {
			key = caller.phoneKey(phone)
		}
		if key == "" {
			continue
		}
		if !l.Has(rule) {
			continue
		}
		d, err := l.Allow(ctx, rule, key)
		switch {
		case err != nil && d.Allowed:
			return tightest, nil
		case err != nil:
			return d, err
		case !d.Allowed:
			return d, &LimitedError{d}
		case tightest.Remaining < 0 || d.Remaining < tightest.Remaining:
			tightest = d
		}
	}
	return tightest, nil
}
