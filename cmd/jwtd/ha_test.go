//go:build linux

package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/testservice"
)

// The Redis primary of a Sentinel set is killed (SIGKILL) under load from
// two jwtd instances, one with on_backend_error open and one closed; see
// limiterFailover for what must hold.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel() // its own Redis servers and jwtd processes; it mostly waits on the failover
	s := testservice.RedisSentinel(t)
	old := s.Primary.Addr()
	limiterFailover(t, s.URL, "primary "+old, s.Primary.Stop, func(ctx context.Context) error {
		addr, err := s.PrimaryAddr(ctx)
		if err == nil && addr == old {
			err = fmt.Errorf("the Sentinels still name %s the primary", old)
		}
		return err
	})
}

// One master of a three-master Redis Cluster is killed under load; see
// limiterFailover.
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel() // its own Redis servers and jwtd processes; it mostly waits on the failover
	c := testservice.RedisCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	masters, err := c.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters: %d %v", len(masters), err)
	}
	victim := masters[0]
	limiterFailover(t, c.URL, "master "+victim.Addr(), victim.Stop, func(ctx context.Context) error {
		now, err := c.Masters(ctx)
		switch {
		case err != nil:
			return err
		case len(now) != 3:
			return fmt.Errorf("%d masters", len(now))
		}
		for _, m := range now {
			if m == victim {
				return fmt.Errorf("%s is still a master", victim.Addr())
			}
		}
		return nil
	})
}

// limiterFailover runs two jwtd instances on one highly available Redis
// (url), open and closed, under load, kills a node, and checks that:
// every answer is a token or a 503 with Retry-After (no 500, no 429, no
// transport error), none slower than the limiter's deadline allows;
// open serves all along and closed refuses during the gap; closed serves
// again after the promotion (promoted says whether it happened), without a
// restart; /readyz is ready again and backend errors stop; and the shared
// per-IP limit then holds across both instances.
func limiterFailover(t *testing.T, url, victim string, kill func(), promoted func(context.Context) error) {
	const limit, tries = 20, 60
	dir := t.TempDir()
	config := func(policy string) string {
		return writeFile(t, dir, policy+".yaml", fmt.Sprintf(`
ratelimit:
  url: %q
  per_ip: "1000000 per hour"
  per_phone: "1000000 per hour"
  per_ip_verify: "%d per hour"
  trusted_proxies: [127.0.0.1/32]
  on_backend_error: %s
`, url, limit, policy))
	}
	_, open, _, _ := startProcess(t, "--config", config("open"), "--data-dir", filepath.Join(dir, "o"))
	_, closed, closedLogs, _ := startProcess(t, "--config", config("closed"), "--data-dir", filepath.Join(dir, "c"))
	openLoad, closedLoad := startPhoneLoad(t, open, 6, 30*time.Second), startPhoneLoad(t, closed, 6, 30*time.Second)
	stopLoads := func() {
		for _, l := range []*phoneLoad{openLoad, closedLoad} {
			select {
			case <-l.stop:
			default:
				l.finish()
			}
		}
	}
	defer stopLoads()
	waitFor(t, "tokens before the kill", 30*time.Second, func() bool { return openLoad.count(200) > 50 && closedLoad.count(200) > 50 })

	openBefore, closedBefore := openLoad.codesNow(), closedLoad.codesNow()
	watch := watchRefusals(closedLoad, openLoad)
	kill()
	killedAt := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	waitFor(t, "the promotion", 30*time.Second, func() bool { err = promoted(ctx); return err == nil })
	// Over: closed refused and served again, and has refused nothing
	// for 3 s.
	waitFor(t, "closed serving again after the failover", 60*time.Second, func() bool { return watch.over(3 * time.Second) })
	watch.stop()
	lastRefused, firstAllowed := watch.last503.Sub(killedAt), watch.firstOK.Sub(killedAt)
	openDuring, closedDuring := diffCodes(watch.others[0], openBefore), diffCodes(watch.self, closedBefore)
	ready := waitFor(t, "/readyz ready on both", 30*time.Second, func() bool { return status(open+"/readyz") == 200 && status(closed+"/readyz") == 200 })
	// Checks that began before the recovery may still fail, up to the
	// limiter's 1 s deadline: count from twice that after.
	time.Sleep(2 * time.Second)
	errorsAt := func() float64 {
		return metric(t, open, "jwtd_ratelimit_backend_errors_total") + metric(t, closed, "jwtd_ratelimit_backend_errors_total")
	}
	stable := errorsAt()
	time.Sleep(time.Second)
	stopLoads()
	if n := errorsAt(); n != stable {
		t.Errorf("backend errors still counted after the recovery: %.0f → %.0f", stable, n)
	}

	// The shared limit: one client, alternating between the instances.
	client := fmt.Sprintf("198.51.100.%d", time.Now().UnixNano()%200+1)
	allowed, refused := map[string]int{}, 0
	for i := range tries {
		base := []string{open, closed}[i%2]
		switch code := getFrom(t, base+"/verifyToken?token=x", client); code {
		case http.StatusTooManyRequests:
			refused++
		case http.StatusServiceUnavailable, http.StatusInternalServerError:
			t.Errorf("verify %d answered %d after the failover", i, code)
		default:
			allowed[base]++
		}
	}

	t.Logf("killed %s under load; from the kill to closed's first token after its last refusal: open %v, closed %v", victim, openDuring, closedDuring)
	t.Logf("closed's last 503 %s after the kill, its first allowed request after that %s after the kill; /readyz ready on both %s later; whole run: open %s; closed %s",
		lastRefused.Round(time.Millisecond), firstAllowed.Round(time.Millisecond), ready.Round(time.Millisecond), openLoad, closedLoad)
	t.Logf("after the failover, limit %d per hour shared: %d of %d allowed (%d through open, %d through closed), %d refused",
		limit, allowed[open]+allowed[closed], tries, allowed[open], allowed[closed], refused)

	openLoad.checkAnswers(t)
	closedLoad.checkAnswers(t)
	if openLoad.count(503) > 0 {
		t.Errorf("open answered %d 503s", openLoad.count(503))
	}
	if openDuring[200] == 0 {
		t.Error("open served nothing during the failover")
	}
	// The limiter's deadline is 1 s a check; a token request makes two.
	for name, l := range map[string]*phoneLoad{"open": openLoad, "closed": closedLoad} {
		if l.slowest > 3*time.Second {
			t.Errorf("%s: slowest answer %s", name, l.slowest)
		}
	}
	if allowed[open]+allowed[closed] != limit || allowed[open] == 0 || allowed[closed] == 0 {
		t.Errorf("after the failover: %v allowed, want %d in all, through both instances", allowed, limit)
	}
	if t.Failed() {
		t.Logf("closed's log:\n%s", lastLines(closedLogs.String(), 30))
	}
}

// refusalWatch samples a load's answers every 20 ms: when its last 503
// came, and its first token after that, with every load's answers then.
type refusalWatch struct {
	mu      sync.Mutex
	last503 time.Time
	firstOK time.Time
	self    map[int]int   // the load's answers at firstOK
	others  []map[int]int // the other loads' answers at firstOK
	done    chan struct{}
	exited  chan struct{}
}

func watchRefusals(l *phoneLoad, others ...*phoneLoad) *refusalWatch {
	w := &refusalWatch{done: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(w.exited)
		prev := l.codesNow()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			now := l.codesNow()
			w.mu.Lock()
			switch {
			case now[503] > prev[503]:
				w.last503, w.firstOK = time.Now(), time.Time{}
			case now[200] > prev[200] && !w.last503.IsZero() && w.firstOK.IsZero():
				w.firstOK, w.self, w.others = time.Now(), now, nil
				for _, o := range others {
					w.others = append(w.others, o.codesNow())
				}
			}
			w.mu.Unlock()
			prev = now
		}
	}()
	return w
}

// over reports whether the load refused, then served again, and has
// refused nothing for quiet.
func (w *refusalWatch) over(quiet time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.firstOK.IsZero() && time.Since(w.last503) > quiet
}

func (w *refusalWatch) stop() {
	close(w.done)
	<-w.exited
}

// codesNow is a copy of the answers so far, by status.
func (l *phoneLoad) codesNow() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.codes)
}

// diffCodes is the answers in after that were not in before.
func diffCodes(after, before map[int]int) map[int]int {
	out := map[int]int{}
	for code, n := range after {
		if d := n - before[code]; d > 0 {
			out[code] = d
		}
	}
	return out
}

// jwtd refuses to start on a store URI weaker than its durability promise,
// and on a rate-limit URL it cannot read, saying what to change.
func TestWeakBackendURLsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ setting, url, want string }{
		{"--store-url", "mongodb://127.0.0.1:1/jwtd?w=1", "store.url: remove w=1 (jwtd writes with w=majority"},
		{"--store-url", "mongodb://127.0.0.1:1/jwtd?readPreference=secondaryPreferred", "readPreference=secondaryPreferred"},
		{"--ratelimit-url", "redis-sentinel://127.0.0.1:26379", "name the Sentinels' master"},
		{"--ratelimit-url", "redis-cluster://127.0.0.1:7000/1", "a Redis Cluster has no database number"},
	} {
		_, _, err := runCLI(t, nil, "", "serve", "--listen", "127.0.0.1:0", "--data-dir", dir, tc.setting, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %s: %v, want %q", tc.setting, tc.url, err, tc.want)
		}
	}
}
