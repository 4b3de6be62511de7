package ratelimit

import (
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/throttled/throttled/v2/store/storetest"

	"github.com/jwtd/jwtd/internal/testservice"
)

// Each URL form reaches go-redis as the client it names, with its hosts,
// credentials, database and options.
func TestParseRedisURL(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		c, err := parseRedisURL("redis://u:p@10.0.0.1:6380/2?pool_size=7")
		if err != nil || c.single == nil || c.single.Addr != "10.0.0.1:6380" || c.single.DB != 2 ||
			c.single.Username != "u" || c.single.Password != "p" || c.single.PoolSize != 7 {
			t.Fatalf("%+v %v", c.single, err)
		}
	})
	t.Run("sentinel", func(t *testing.T) {
		c, err := parseRedisURL("redis-sentinel://u:p%40ss@s1:26379,s2:26380,s3/mymaster?db=3&sentinel_password=sp&client_name=jwtd")
		o := c.failover
		if err != nil || o == nil {
			t.Fatalf("%+v %v", c, err)
		}
		if o.MasterName != "mymaster" || strings.Join(o.SentinelAddrs, " ") != "s1:26379 s2:26380 s3:26379" || o.DB != 3 ||
			o.Username != "u" || o.Password != "p@ss" || o.SentinelUsername != "" || o.SentinelPassword != "sp" ||
			o.ClientName != "jwtd" || o.TLSConfig != nil {
			t.Errorf("%+v", o)
		}
		c, err = parseRedisURL("rediss-sentinel://s1/m")
		if err != nil || c.failover == nil || c.failover.TLSConfig == nil || c.failover.DB != 0 {
			t.Errorf("TLS: %+v %v", c.failover, err)
		}
	})
	t.Run("cluster", func(t *testing.T) {
		c, err := parseRedisURL("redis-cluster://:secret@n1:7000,n2:7001,[::1]:7002?pool_size=3")
		o := c.cluster
		if err != nil || o == nil {
			t.Fatalf("%+v %v", c, err)
		}
		if strings.Join(o.Addrs, " ") != "n1:7000 n2:7001 [::1]:7002" || o.Password != "secret" || o.PoolSize != 3 || o.TLSConfig != nil {
			t.Errorf("%+v", o)
		}
		if c, err := parseRedisURL("rediss-cluster://n1:7000"); err != nil || c.cluster.TLSConfig == nil {
			t.Errorf("TLS: %v", err)
		}
	})
	// The client each form makes carries jwtd's timeouts.
	for _, url := range []string{"redis://a:1/0", "redis-sentinel://a:1/m", "redis-cluster://a:1"} {
		c, _ := parseRedisURL(url)
		client := c.newClient()
		var dial, read time.Duration
		switch {
		case c.single != nil:
			dial, read = c.single.DialTimeout, c.single.ReadTimeout
		case c.failover != nil:
			dial, read = c.failover.DialTimeout, c.failover.ReadTimeout
		default:
			dial, read = c.cluster.DialTimeout, c.cluster.ReadTimeout
		}
		client.Close()
		if dial != redisDialTimeout || read != redisIOTimeout {
			t.Errorf("%s: dial %s, read %s", url, dial, read)
		}
	}
}

// A URL jwtd cannot use says what is wrong and which forms work, and never
// repeats the password.
func TestParseRedisURLErrors(t *testing.T) {
	for url, want := range map[string]string{
		"redis-sentinel://s1:26379,s2:26379":              "name the Sentinels' master",
		"redis-sentinel://s1:26379/a/b":                   "name the Sentinels' master",
		"redis-sentinel://s1:26379/m?db=x":                `db="x" is not a database number`,
		"redis-sentinel://s1:26379/m?master_name=n":       `"master_name" is set by the URL itself`,
		"redis-sentinel://s1:26379/m?bogus=1":             "unexpected option: bogus",
		"redis-cluster://n1:7000/3":                       "no database number",
		"redis-cluster://n1:7000,,n2:7001":                "an empty host",
		"redis-cluster://n1:99999":                        "has no valid port",
		"redis-cluster://n1:7000?addr=n2:7001":            `"addr" is set by the URL itself`,
		"redis-cluster://u:hunter2@n1:7000?read_timeout=": "",
		"redis://u:hunter2@h:1/x":                         "invalid database number",
		"memcached://h:1":                                 `"memcached://h:1" is not memory://, nor a Redis URL`,
		"redis-sentinel://u:hunter2@s1/m?nope=1":          "unexpected option",
	} {
		err := ValidateURL(url)
		if want == "" {
			if err != nil {
				t.Errorf("%s: %v", url, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "redis-sentinel://") {
			t.Errorf("%s: %v, want %q and the forms", url, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", url, err)
		}
	}
	for _, ok := range []string{"", "memory://", "redis://h:1/0", "rediss://h:1", "redis-sentinel://h/m", "redis-cluster://h"} {
		if err := ValidateURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// The keys of one caller, over every rule and limit, share one Redis
// Cluster hash slot.
func TestKeysShareASlot(t *testing.T) {
	st, _ := NewMemoryStore(10, nil)
	l := newLimiter(t, backend{store: st}, map[string]string{"per_ip": "5 per hour; 1 per second", "per_phone": "3 per day"})
	for _, key := range []string{"198.51.100.7", "+14155552671", "apikey:a"} {
		var tags []string
		for _, rule := range []string{"per_ip", "per_phone"} {
			for i := range l.rules[rule] {
				k := l.rules[rule][i].storeKey(sha256.Sum256([]byte(key)))
				open, close := strings.IndexByte(k, '{'), strings.IndexByte(k, '}')
				if open != 0 || close < 2 {
					t.Fatalf("%s: no hash tag at the start", k)
				}
				tags = append(tags, k[open:close+1])
			}
		}
		for _, tag := range tags[1:] {
			if tag != tags[0] {
				t.Errorf("%s: keys with hash tags %v", key, tags)
			}
		}
	}
}

// The Redis store keeps throttled's store contract, on a real Redis.
func TestRedisGCRAStoreContract(t *testing.T) {
	cfg, err := parseRedisURL(testservice.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := cfg.newClient()
	defer client.Close()
	st := redisGCRA{client: client, prefix: uniqueKey("contract") + ":"}
	storetest.TestGCRAStoreCtx(t, st)
	storetest.TestGCRAStoreTTLCtx(t, st)
}
