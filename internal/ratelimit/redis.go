package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
)

// The Redis URL forms ratelimit.url takes, one a deployment:
//
//	redis://[user:password@]host:port[/db]                  one server
//	redis-sentinel://[user:password@]host:port[,host:port...]/master[?db=N]
//	redis-cluster://[user:password@]host:port[,host:port...]
//
// The rediss, rediss-sentinel and rediss-cluster schemes speak TLS. With
// Sentinel, user and password are the primary's (and the replicas'); the
// Sentinels' own, when they have one, go in sentinel_username and
// sentinel_password. Other query parameters are go-redis's own options
// (pool_size, client_name, ...); jwtd sets the timeouts itself.
const (
	redisForms = "redis://[user:password@]host:port[/db], " +
		"redis-sentinel://[user:password@]host:port[,host:port...]/master-name[?db=N] or " +
		"redis-cluster://[user:password@]host:port[,host:port...] (rediss… for TLS)"
)

// redisConfig is a parsed Redis URL: exactly one of its fields is set.
type redisConfig struct {
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// ValidateURL reports whether url is a ratelimit.url jwtd can open:
// memory:// or one of the Redis forms. It connects to nothing.
func ValidateURL(url string) error {
	if url == "" || url == "memory://" {
		return nil
	}
	_, err := parseRedisURL(url)
	return err
}

// parseRedisURL reads one of the Redis forms into go-redis's options
// (through go-redis's own URL parsers, so that its query options work the
// same in every form).
func parseRedisURL(raw string) (redisConfig, error) {
	scheme, _, _ := strings.Cut(raw, "://")
	fail := func(format string, args ...any) (redisConfig, error) {
		return redisConfig{}, fmt.Errorf("ratelimit.url: %s; use %s", fmt.Sprintf(format, args...), redisForms)
	}
	tls := strings.HasPrefix(scheme, "rediss")
	base := "redis"
	if tls {
		base = "rediss"
	}
	switch scheme {
	case "redis", "rediss":
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return fail("%s", redactURL(err, raw))
		}
		return redisConfig{single: opts}, nil
	case "redis-sentinel", "rediss-sentinel", "redis-cluster", "rediss-cluster":
	default:
		return fail("%q is not memory://, nor a Redis URL", redactedScheme(raw))
	}
	user, hosts, rest, err := splitHosts(raw, scheme)
	if err != nil {
		return fail("%v", err)
	}
	u, err := url.Parse(base + "://" + hosts[0] + rest)
	if err != nil {
		return fail("%s", redactURL(err, raw))
	}
	q := u.Query()
	for _, reserved := range []string{"addr", "master_name", "username", "password"} {
		if q.Has(reserved) {
			return fail("%q is set by the URL itself (its hosts, path and user:password), not as a parameter", reserved)
		}
	}
	for _, h := range hosts[1:] {
		q.Add("addr", h)
	}
	if strings.HasSuffix(scheme, "-cluster") {
		if strings.Trim(u.Path, "/") != "" || q.Has("db") {
			return fail("a Redis Cluster has no database number (%q)", u.Path)
		}
		u.User, u.Path, u.RawQuery = user, "", q.Encode()
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return fail("%s", redactURL(err, raw))
		}
		return redisConfig{cluster: opts}, nil
	}
	master := strings.Trim(u.Path, "/")
	if master == "" || strings.Contains(master, "/") {
		return fail("name the Sentinels' master after the hosts, as in redis-sentinel://h1:26379,h2:26379/mymaster")
	}
	db := q.Get("db")
	if db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return fail("db=%q is not a database number", db)
		}
	}
	// go-redis reads the URL's user:password as the Sentinels'; jwtd's
	// form has them for the primary, the Sentinels' in parameters.
	if user != nil {
		q.Set("username", user.Username())
		p, _ := user.Password()
		q.Set("password", p)
	}
	sentinelUser, sentinelPassword := q.Get("sentinel_username"), q.Get("sentinel_password")
	q.Del("db")
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	q.Set("master_name", master)
	u.Path, u.RawQuery = "/"+db, q.Encode()
	opts, err := redis.ParseFailoverURL(u.String())
	if err != nil {
		return fail("%s", redactURL(err, raw))
	}
	opts.SentinelUsername, opts.SentinelPassword = sentinelUser, sentinelPassword
	return redisConfig{failover: opts}, nil
}

// splitHosts takes scheme://[userinfo@]h1:p1,h2:p2[/path][?query] apart:
// url.Parse takes one host only. A host without a port gets the form's
// default one.
func splitHosts(raw, scheme string) (user *url.Userinfo, hosts []string, rest string, err error) {
	authority := strings.TrimPrefix(raw, scheme+"://")
	if i := strings.IndexAny(authority, "/?"); i >= 0 {
		authority, rest = authority[:i], authority[i:]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		u, err := url.Parse("x://" + authority[:at+1] + "h")
		if err != nil {
			return nil, nil, "", errors.New("the user:password part cannot be read (percent-encode @, : and / in it)")
		}
		user, authority = u.User, authority[at+1:]
	}
	port := "6379"
	if strings.HasSuffix(scheme, "-sentinel") {
		port = "26379"
	}
	for h := range strings.SplitSeq(authority, ",") {
		if h == "" {
			return nil, nil, "", errors.New("an empty host in the list")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, port)
		}
		if _, p, err := net.SplitHostPort(h); err != nil || p == "" {
			return nil, nil, "", fmt.Errorf("%q is not host:port", h)
		} else if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, nil, "", fmt.Errorf("%q has no valid port", h)
		}
		hosts = append(hosts, h)
	}
	return user, hosts, rest, nil
}

// redactURL is a parse error without the password it may quote.
func redactURL(err error, raw string) string {
	msg := err.Error()
	if u, perr := url.Parse(raw); perr == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return msg
}

// redactedScheme is the URL up to its host, without user and password.
func redactedScheme(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if len(raw) > 16 {
			return raw[:16] + "…"
		}
		return raw
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return scheme + "://" + rest
}

// Short timeouts: a limit check must not hold a request for long when
// Redis is away; on_backend_error decides what happens then. No retries
// of a failed command either (Cluster still follows MOVED and ASK, and
// reloads its slot map after an error).
const (
	redisDialTimeout = 500 * time.Millisecond
	redisIOTimeout   = 300 * time.Millisecond
)

// newClient makes the go-redis client a URL names: a plain, a failover
// (Sentinel) or a cluster client. It connects lazily.
func (c redisConfig) newClient() redis.UniversalClient {
	switch {
	case c.failover != nil:
		o := c.failover
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
		o.MaxRetries, o.DialerRetries = -1, 1
		return redis.NewFailoverClient(o)
	case c.cluster != nil:
		o := c.cluster
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
		o.MaxRetries, o.DialerRetries = -1, 1
		return redis.NewClusterClient(o)
	}
	o := c.single
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
	o.MaxRetries, o.DialerRetries = -1, 1
	return redis.NewClient(o)
}

// redisGCRA keeps GCRA state in Redis, one string key per bucket, timed by
// the clock of the server that holds the key. Every operation is one
// command on one key (a script reads the time and the key together), so
// that on a Redis Cluster each touches the one node that owns the key's
// slot, and nothing else: throttled's own go-redis store sends TIME as a
// command of its own, which a cluster client sends to any master (and a
// check would fail while an unrelated one is down), and sets a key's TTL
// in a second command, rounded down to whole seconds.
type redisGCRA struct {
	client redis.UniversalClient
	prefix string
}

// failed passes err on. A cluster client learns that a replica took over
// from a master only from a MOVED answer or its periodic reload (every
// minute), and a dead master answers nothing: after any error it reloads
// its slot map now (in the background, at most every 200 ms).
func (r redisGCRA) failed(err error) error {
	if cc, ok := r.client.(*redis.ClusterClient); ok && err != nil && !errors.Is(err, redis.Nil) {
		cc.ReloadState(context.Background())
	}
	return err
}

var _ throttled.GCRAStoreCtx = redisGCRA{}

var (
	// The server's time (seconds, microseconds) and the key's value,
	// false when it has none.
	getWithTimeScript = redis.NewScript(`local t = redis.call('TIME')
return {tonumber(t[1]), tonumber(t[2]), redis.call('GET', KEYS[1])}`)
	// Swap the value when it is ARGV[1], with a TTL of ARGV[3] ms (0:
	// none).
	compareAndSwapScript = redis.NewScript(`if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '0' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1`)
)

// GetWithTime returns the key's value, or -1 when it has none, and the
// time on the server that holds it.
func (r redisGCRA) GetWithTime(ctx context.Context, key string) (int64, time.Time, error) {
	res, err := getWithTimeScript.Run(ctx, r.client, []string{r.prefix + key}).Slice()
	if err != nil {
		return 0, time.Time{}, r.failed(err)
	}
	if len(res) < 2 {
		return 0, time.Time{}, fmt.Errorf("redis: unexpected reply %v", res)
	}
	sec, _ := res[0].(int64)
	usec, _ := res[1].(int64)
	now := time.Unix(sec, usec*int64(time.Microsecond))
	if len(res) < 3 || res[2] == nil {
		return -1, now, nil
	}
	s, _ := res[2].(string)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, now, fmt.Errorf("redis: key %s holds %q, not a GCRA state", key, s)
	}
	return v, now, nil
}

// SetIfNotExistsWithTTL sets the key and its TTL at once, unless it exists.
func (r redisGCRA) SetIfNotExistsWithTTL(ctx context.Context, key string, value int64, ttl time.Duration) (bool, error) {
	set, err := r.client.SetNX(ctx, r.prefix+key, value, ttlMillis(ttl)).Result()
	return set, r.failed(err)
}

// CompareAndSwapWithTTL swaps the key's value and TTL when it holds old;
// a key that has expired holds nothing and is not swapped.
func (r redisGCRA) CompareAndSwapWithTTL(ctx context.Context, key string, old, new int64, ttl time.Duration) (bool, error) {
	n, err := compareAndSwapScript.Run(ctx, r.client, []string{r.prefix + key}, old, new, ttlMillis(ttl).Milliseconds()).Int()
	return n == 1, r.failed(err)
}

// ttlMillis rounds a TTL up to whole milliseconds (Redis's precision):
// rounded down, a key could vanish before its state ran out and hand out a
// fresh burst early. 0 is no TTL (GCRA always asks for one; throttled's
// store contract says 0 keeps the key).
func ttlMillis(ttl time.Duration) time.Duration {
	if ttl <= 0 {
		return 0
	}
	return (ttl + time.Millisecond - 1).Truncate(time.Millisecond)
}

// pingRedis checks that the backend answers: on a cluster, every master
// (a check may touch any of them).
func pingRedis(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
	}
	return c.Ping(ctx).Err()
}
