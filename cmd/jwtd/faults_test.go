//go:build linux

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/mongo"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/testservice"
)

// phoneLoad drives the seed 000 route from several clients until stopped,
// a new XID per request, and keeps what every answer was: the tokens
// handed out (each must have a durable record), 503s (each must carry
// Retry-After), anything else, and the slowest answer.
type phoneLoad struct {
	base    string
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	jtis    []string
	codes   map[int]int
	noRetry int // 503s without Retry-After
	fast503 int // 503s within 200 ms: refused at once, not after a wait
	errs    int // transport errors
	slowest time.Duration
	lastOK  time.Time
}

func startPhoneLoad(t *testing.T, base string, clients int, timeout time.Duration) *phoneLoad {
	l := &phoneLoad{base: base, stop: make(chan struct{}), codes: map[int]int{}}
	client := &http.Client{Timeout: timeout}
	for c := range clients {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/token/+1415555%04d/tx-%d-%d", base, c, c, n), nil)
				// A client address of its own, where 127.0.0.1 is a
				// trusted proxy: clients do not share a rate-limit key.
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("192.0.2.%d", c))
				resp, err := client.Do(req)
				took := time.Since(start)
				var body []byte
				if err == nil {
					body, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				l.mu.Lock()
				l.slowest = max(l.slowest, took)
				switch {
				case err != nil:
					l.errs++
				case resp.StatusCode == 200:
					l.jtis = append(l.jtis, jtiOf(t, strings.TrimSpace(string(body))))
					l.lastOK = time.Now()
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "":
					l.noRetry++
				}
				if err == nil && resp.StatusCode == 503 && took < 200*time.Millisecond {
					l.fast503++
				}
				if err == nil {
					l.codes[resp.StatusCode]++
				}
				l.mu.Unlock()
				if err != nil || resp.StatusCode != 200 {
					time.Sleep(20 * time.Millisecond) // as a client told to retry would
				}
			}
		})
	}
	return l
}

// okSince reports whether a token was handed out after t.
func (l *phoneLoad) okSince(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK.After(t)
}

func (l *phoneLoad) count(code int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codes[code]
}

func (l *phoneLoad) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *phoneLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("answers %v, %d transport errors, %d tokens, slowest %s", l.codes, l.errs, len(l.jtis), l.slowest.Round(time.Millisecond))
}

// checkAnswers fails the test for any answer but a token or a 503 with
// Retry-After.
func (l *phoneLoad) checkAnswers(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for code, n := range l.codes {
		if code != 200 && code != 503 {
			t.Errorf("%d requests answered %d", n, code)
		}
	}
	if l.noRetry > 0 {
		t.Errorf("%d 503s without Retry-After", l.noRetry)
	}
	if l.errs > 0 {
		t.Errorf("%d requests got no answer (the client's timeout, or a dropped connection)", l.errs)
	}
}

// waitFor polls cond every 50 ms until it holds or the time is up, and
// returns how long it took.
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// metric is the value of one sample line of /metrics ("name{labels}"), or
// 0 when absent.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	for line := range strings.Lines(get(t, base+"/metrics")) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// The disk holding the SQLite file fills up under load: every request gets
// its token with a committed record or a 503 with Retry-After; /readyz, a
// log line and a metric say why meanwhile; serving resumes by itself once
// space is freed; nothing acknowledged is lost and the file is intact.
func TestDiskFull(t *testing.T) {
	testservice.Root(t, "mount", "umount")
	disk := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", disk).Run() })
	cfg := writeFile(t, t.TempDir(), "c.yaml", "ratelimit: {routes: {token: [], issue: [], generate: [], verify: []}}\n")
	cmd, base, logs, done := startProcess(t, "--config", cfg, "--data-dir", disk)

	load := startPhoneLoad(t, base, 8, 10*time.Second)
	defer func() {
		select {
		case <-load.stop:
		default:
			load.finish()
		}
	}()
	waitFor(t, "the first tokens", 10*time.Second, func() bool { return load.count(200) > 100 })

	// Fill the disk.
	filler, err := os.Create(filepath.Join(disk, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	filler.Close()
	fullAt := time.Now()
	waitFor(t, "503s while the disk is full", 10*time.Second, func() bool { return load.count(503) > 0 })
	waitFor(t, "/readyz saying not ready", 10*time.Second, func() bool { return status(base+"/readyz") == 503 })
	if n := metric(t, base, "jwtd_store_commit_failures_total"); n == 0 {
		t.Error("jwtd_store_commit_failures_total stayed 0")
	}
	time.Sleep(time.Second)

	// Free it: serving resumes by itself.
	if err := os.Remove(filepath.Join(disk, "filler")); err != nil {
		t.Fatal(err)
	}
	freedAt := time.Now()
	recovered := waitFor(t, "tokens again after space was freed", 15*time.Second, func() bool { return load.okSince(freedAt) })
	readyAgain := waitFor(t, "/readyz ready again", 15*time.Second, func() bool { return status(base+"/readyz") == 200 })
	time.Sleep(500 * time.Millisecond)
	load.finish()
	t.Logf("disk full for %s; %s; tokens again %s after space was freed, ready after %s",
		freedAt.Sub(fullAt).Round(time.Millisecond), load, recovered.Round(time.Millisecond), readyAgain.Round(time.Millisecond))
	load.checkAnswers(t)
	if !strings.Contains(logs.String(), "full") {
		t.Errorf("no log line says the disk is full:\n%s", lastLines(logs.String(), 20))
	}

	// Stop jwtd, then every token handed out has its record, and the file
	// is intact.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-done
	checkRecorded(t, filepath.Join(disk, "jwtd.db"), load.jtis)
}

// checkRecorded opens the SQLite file and checks that every jti has a
// record and that the file passes PRAGMA integrity_check.
func checkRecorded(t *testing.T, path string, jtis []string) {
	t.Helper()
	store, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lost := 0
	for _, jti := range jtis {
		if _, err := store.ByJTI(context.Background(), jti); errors.Is(err, record.ErrNotFound) {
			lost++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d tokens handed out have no record", lost, len(jtis))
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q %v", res, err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ownFerretDB starts a FerretDB of the test's own and a jwtd on it, with
// limits off, and the store bounds given.
func ownFerretDB(t *testing.T, storeTimeout time.Duration, maxWaiting int) (ferret *testservice.Process, storeURL, base string) {
	t.Helper()
	addr := testservice.Addr(testservice.FreePort(t))
	ferret = testservice.Start(t, addr, testservice.FerretDBBin(t), "--listen", addr, "--dir", filepath.Join(t.TempDir(), "ferretdb"))
	// The options a replica-set URI carries (docs/ha.md): they must
	// reach the driver and keep the store's promises.
	storeURL = "mongodb://" + addr + "/jwtdfaults?w=majority&journal=true&retryWrites=true&appName=jwtd-faults"
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`%s
store: {url: %q, timeout: %s, max_waiting: %d, max_batch: %d}
ratelimit: {routes: {token: [], issue: [], generate: [], verify: []}}
`, masterKeySetting(t, dir), storeURL, storeTimeout, maxWaiting, min(256, maxWaiting)))
	// A process of its own: TestSlowStore reads its resident memory and
	// goroutines from /metrics, which in-process would be the (race-built)
	// test binary's.
	_, base, _, _ = startProcess(t, "--config", cfg, "--data-dir", t.TempDir())
	return ferret, storeURL, base
}

// checkRecordedMongo checks that every jti has a record in the store.
func checkRecordedMongo(t *testing.T, storeURL string, jtis []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := mongo.Open(ctx, storeURL, mongo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	lost := 0
	for _, jti := range jtis {
		if _, err := store.ByJTI(ctx, jti); errors.Is(err, record.ErrNotFound) {
			lost++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d tokens handed out have no record", lost, len(jtis))
	}
}

// The store freezes (SIGSTOP) under load: requests fail within
// store.timeout instead of piling up, those past store.max_waiting at once;
// when it thaws, serving resumes, and goroutines and memory return to
// where they were.
func TestSlowStore(t *testing.T) {
	const storeTimeout, maxWaiting, clients = time.Second, 16, 48
	ferret, storeURL, base := ownFerretDB(t, storeTimeout, maxWaiting)
	warm := startPhoneLoad(t, base, 4, 10*time.Second) // warm up, then measure the baseline at rest
	waitFor(t, "the first tokens", 20*time.Second, func() bool { return warm.count(200) > 50 })
	warm.finish()
	time.Sleep(500 * time.Millisecond)
	goroutines, rss := metric(t, base, "go_goroutines"), metric(t, base, "process_resident_memory_bytes")

	load := startPhoneLoad(t, base, clients, 30*time.Second)
	waitFor(t, "tokens under load", 20*time.Second, func() bool { return load.count(200) > 200 })
	ferret.Signal(syscall.SIGSTOP)
	frozenAt := time.Now()
	time.Sleep(3 * time.Second)
	during := load.String()
	ferret.Signal(syscall.SIGCONT)
	thawedAt := time.Now()
	recovered := waitFor(t, "tokens after the store thawed", 30*time.Second, func() bool { return load.okSince(thawedAt) })
	load.finish()
	t.Logf("frozen %s with %d clients: %s; tokens again %s after the thaw", thawedAt.Sub(frozenAt).Round(time.Millisecond),
		clients, during, recovered.Round(time.Millisecond))
	load.checkAnswers(t)
	if load.count(503) == 0 {
		t.Error("no 503 while the store was frozen")
	}
	if load.fast503 == 0 {
		t.Errorf("%d clients, %d may wait: none was refused at once", clients, maxWaiting)
	}
	// Every answer within the store timeout, plus the time to commit a
	// batch and answer, on a busy machine.
	if load.slowest > storeTimeout+2*time.Second {
		t.Errorf("slowest answer %s; want within store.timeout (%s) and a little", load.slowest, storeTimeout)
	}
	var g, r float64
	waitFor(t, "goroutines and memory back to their baseline", 20*time.Second, func() bool {
		g, r = metric(t, base, "go_goroutines"), metric(t, base, "process_resident_memory_bytes")
		return g <= goroutines+10
	})
	t.Logf("at rest before: %.0f goroutines, RSS %.0f MB; after: %.0f goroutines, RSS %.0f MB", goroutines, rss/(1<<20), g, r/(1<<20))
	if r > rss+64<<20 {
		t.Errorf("RSS grew from %.0f MB to %.0f MB", rss/(1<<20), r/(1<<20))
	}
	checkRecordedMongo(t, storeURL, load.jtis)
}

// The store is killed under load and started again: nothing acknowledged
// is lost, requests whose commit could not be known got 503 and no token,
// and jwtd reconnects by itself.
func TestStoreLostMidCommit(t *testing.T) {
	ferret, storeURL, base := ownFerretDB(t, 2*time.Second, 1024)
	load := startPhoneLoad(t, base, 16, 30*time.Second)
	waitFor(t, "tokens under load", 20*time.Second, func() bool { return load.count(200) > 200 })
	ferret.Stop()
	lostAt := time.Now()
	waitFor(t, "503s while the store is away", 10*time.Second, func() bool { return load.count(503) > 0 })
	time.Sleep(time.Second)
	ferret.Restart()
	backAt := time.Now()
	recovered := waitFor(t, "tokens after the store came back", 60*time.Second, func() bool { return load.okSince(backAt) })
	load.finish()
	t.Logf("store away %s: %s; tokens again %s after it was back", backAt.Sub(lostAt).Round(time.Millisecond), load, recovered.Round(time.Millisecond))
	load.checkAnswers(t)
	checkRecordedMongo(t, storeURL, load.jtis)
}

// must runs a command that must succeed (ip, tc).
func must(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", args, err, out)
	}
}

// redisAcrossALink runs Redis in a network namespace of its own, reached
// over a veth pair, and returns its URL and a function that takes the
// namespace's end of the link down (true) or up: while it is down, what
// the host sends is dropped, a partition where nothing answers, not even a
// refusal.
func redisAcrossALink(t *testing.T) (url string, linkDown func(bool)) {
	t.Helper()
	testservice.Root(t, "ip")
	bin := testservice.RedisBin(t)
	n := time.Now().UnixNano() % 200
	ns, hostDev, nsDev := fmt.Sprintf("jwtd-rl-%d", n), fmt.Sprintf("jwtdh%d", n), fmt.Sprintf("jwtdn%d", n)
	hostIP, nsIP := fmt.Sprintf("10.213.%d.1", n), fmt.Sprintf("10.213.%d.2", n)
	must(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	must(t, "ip", "link", "add", hostDev, "type", "veth", "peer", "name", nsDev)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", hostDev).Run() })
	must(t, "ip", "link", "set", nsDev, "netns", ns)
	must(t, "ip", "addr", "add", hostIP+"/24", "dev", hostDev)
	must(t, "ip", "link", "set", hostDev, "up")
	must(t, "ip", "netns", "exec", ns, "ip", "addr", "add", nsIP+"/24", "dev", nsDev)
	must(t, "ip", "netns", "exec", ns, "ip", "link", "set", nsDev, "up")
	must(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	addr := nsIP + ":6379"
	// Not loopback, so protected mode would refuse every command.
	testservice.Start(t, addr, "ip", "netns", "exec", ns, bin, "--bind", nsIP, "--port", "6379", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	return "redis://" + addr + "/0", func(down bool) {
		state := "up"
		if down {
			state = "down"
		}
		must(t, "ip", "netns", "exec", ns, "ip", "link", "set", nsDev, state)
	}
}

// Redis is cut off by a partition (its link down, every packet dropped) and then
// reachable again, under on_backend_error open and closed: open serves,
// closed answers 503 with Retry-After, no request waits past the limiter's
// deadline, and limits are enforced again within seconds of the heal.
func TestRedisPartition(t *testing.T) {
	url, linkDown := redisAcrossALink(t)
	dir := t.TempDir()
	open, _ := startServe(t, nil, "--config", limitsConfig(t, dir, url, "1000000 per hour", "1000000 per hour", "open"), "--data-dir", filepath.Join(dir, "o"))
	closed, _ := startServe(t, nil, "--config", limitsConfig(t, dir, url, "1000000 per hour", "1000000 per hour", "closed"), "--data-dir", filepath.Join(dir, "c"))
	openLoad, closedLoad := startPhoneLoad(t, open, 8, 30*time.Second), startPhoneLoad(t, closed, 8, 30*time.Second)
	waitFor(t, "tokens before the partition", 20*time.Second, func() bool { return openLoad.count(200) > 50 && closedLoad.count(200) > 50 })

	linkDown(true)
	cutAt := time.Now()
	waitFor(t, "closed refusing while Redis is cut off", 10*time.Second, func() bool { return closedLoad.count(503) > 0 })
	okBefore := openLoad.count(200)
	time.Sleep(3 * time.Second)
	if openLoad.count(200) <= okBefore {
		t.Error("open served nothing while Redis was cut off")
	}
	during := fmt.Sprintf("open: %s; closed: %s", openLoad, closedLoad)

	linkDown(false)
	healedAt := time.Now()
	errorsAt := func() float64 { return metric(t, closed, "jwtd_ratelimit_backend_errors_total") }
	recovered := waitFor(t, "closed serving again after the heal", 30*time.Second, func() bool { return closedLoad.okSince(healedAt) })
	// Checks that began before the heal may still fail, up to the
	// limiter's 1 s deadline: count from twice that after.
	time.Sleep(2 * time.Second)
	stable := errorsAt()
	time.Sleep(time.Second)
	openLoad.finish()
	closedLoad.finish()
	t.Logf("cut off %s; %s; closed served again %s after the heal", healedAt.Sub(cutAt).Round(time.Millisecond), during, recovered.Round(time.Millisecond))
	if n := errorsAt(); n != stable {
		t.Errorf("backend errors still counted a second after recovery: %.0f → %.0f", stable, n)
	}
	for name, l := range map[string]*phoneLoad{"open": openLoad, "closed": closedLoad} {
		l.checkAnswers(t)
		// The limiter's deadline is 1 s a check; a request makes two.
		if l.slowest > 3*time.Second {
			t.Errorf("%s: slowest answer %s during the partition", name, l.slowest)
		}
	}
	if openLoad.count(503) > 0 {
		t.Errorf("open answered %d 503s", openLoad.count(503))
	}
}
