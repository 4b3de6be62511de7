//go:build linux

package main

import (
	"context"
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
				resp, err := client.Get(fmt.Sprintf("%s/v1/token/+1415555%04d/tx-%d-%d", base, c, c, n))
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

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
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
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", disk).CombinedOutput(); err != nil {
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
	if res, err := store.IntegrityCheck(context.Background()); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q %v", res, err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
