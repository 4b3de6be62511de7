// Command soak runs jwtd for a long time at a steady rate on the phone
// route, with retention purging records all along, and reports whether
// anything drifts: resident memory, goroutines, open files, p99 latency,
// and whether every token acknowledged was committed. `make soak` runs it
// for 30 minutes; it exits 1 when the last five minutes drift from the
// first five.
//
//	go run ./bench/soak --jwtd bin/jwtd --duration 30m --rate 2000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("jwtd", "bin/jwtd", "the jwtd binary")
	duration := flag.Duration("duration", 30*time.Minute, "how long to run")
	rate := flag.Int("rate", 2000, "requests a second (about half of what this generator reaches on the phone route, purging, on 2 vCPUs)")
	clients := flag.Int("clients", 32, "concurrent clients")
	window := flag.Duration("window", time.Minute, "reporting window")
	warmup := flag.Duration("warmup", 3*time.Minute, "left out of the comparison: until the first records are purged, the store grows")
	flag.Parse()
	if err := soak(*bin, *duration, *rate, *clients, *window, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// sample is one reporting window.
type sample struct {
	at         time.Duration
	ok, failed int
	p50, p99   time.Duration
	rss        int64
	goroutines int
	files      int
}

func soak(bin string, duration time.Duration, rate, clients int, window, warmup time.Duration) error {
	dir, err := os.MkdirTemp("", "jwtd-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	const addr = "127.0.0.1:18090"
	base := "http://" + addr
	// Tokens live 90 s; records are purged a minute after, every 30 s.
	cfg := filepath.Join(dir, "jwtd.yaml")
	if err := os.WriteFile(cfg, []byte(`log_level: warn
store: {retention: 1m, purge_interval: 30s}
ratelimit: {routes: {token: [], issue: [], generate: [], verify: []}}
`), 0o600); err != nil {
		return err
	}
	if resp, err := http.Get(base + "/healthz"); err == nil {
		resp.Body.Close()
		return fmt.Errorf("something already answers on %s (another soak?)", addr)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg, "--listen", addr, "--data-dir", filepath.Join(dir, "data"))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			return fmt.Errorf("jwtd did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A fixed rate: a ticker hands out requests to the clients; a request
	// that finds a tick's worth already waiting is counted as missed, not
	// queued further.
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	// A tick's worth of requests may wait for a client: a tick hands them
	// out at once, more than there are clients.
	work := make(chan int, rate/100+1)
	var mu sync.Mutex
	var lat []time.Duration
	var ok, failed, missed atomic.Int64
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for n := range work {
				start := time.Now()
				resp, err := client.Get(fmt.Sprintf("%s/v1/token/+1415555%04d/soak-%d", base, n%10000, n))
				took := time.Since(start)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				lat = append(lat, took)
				mu.Unlock()
			}
		})
	}
	go func() {
		defer close(work)
		const tick = 10 * time.Millisecond
		perTick := rate * int(tick) / int(time.Second)
		t := time.NewTicker(tick)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for range perTick {
				select {
				case work <- n:
				default:
					missed.Add(1)
				}
				n++
			}
		}
	}()

	var samples []sample
	start := time.Now()
	fmt.Printf("soak: %s at %d requests/s, %d clients, purging records a minute after expiry\n", duration, rate, clients)
	fmt.Printf("%8s %10s %8s %9s %9s %8s %10s %6s\n", "minute", "tokens/s", "failed", "p50 ms", "p99 ms", "RSS MB", "goroutines", "files")
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(window):
		}
		mu.Lock()
		w := lat
		lat = nil
		mu.Unlock()
		slices.Sort(w)
		s := sample{at: time.Since(start), ok: int(ok.Swap(0)), failed: int(failed.Swap(0)),
			rss: rss(pid), goroutines: int(metric(base, "go_goroutines")), files: files(pid)}
		if len(w) > 0 {
			s.p50, s.p99 = w[len(w)/2], w[len(w)*99/100]
		}
		samples = append(samples, s)
		fmt.Printf("%8.1f %10.0f %8d %9.2f %9.2f %8d %10d %6d\n", s.at.Minutes(), float64(s.ok)/window.Seconds(), s.failed,
			ms(s.p50), ms(s.p99), s.rss>>20, s.goroutines, s.files)
	}
	wg.Wait()
	time.Sleep(time.Second)

	acknowledged := int(ok.Load()) // answered after the last window closed
	for _, s := range samples {
		acknowledged += s.ok
	}
	committed := int(metric(base, "jwtd_store_commit_batch_size_sum"))
	fmt.Printf("tokens acknowledged %d, records committed %d, requests missed (no client free) %d\n", acknowledged, committed, missed.Load())

	// The first five windows after the warm-up and the last five (or a
	// third of what is left each, in a short run), compared. Until tokens
	// expire and the purge starts (ttl 90 s, retention 1 min), the store
	// only grows, so what comes before is not the steady state.
	steady := samples[min(len(samples)-1, int(warmup/window)):]
	k := min(5, max(1, len(steady)/3))
	first, last := average(steady[:k]), average(steady[len(steady)-k:])
	fmt.Printf("first %d windows after the warm-up: RSS %d MB, %d goroutines, %d files, p99 %.2f ms\n", k, first.rss>>20, first.goroutines, first.files, ms(first.p99))
	fmt.Printf("last %d windows:  RSS %d MB, %d goroutines, %d files, p99 %.2f ms\n", k, last.rss>>20, last.goroutines, last.files, ms(last.p99))
	var drift []string
	if last.rss > first.rss+first.rss/4+16<<20 {
		drift = append(drift, "resident memory grew")
	}
	if last.goroutines > first.goroutines+20 {
		drift = append(drift, "goroutines grew")
	}
	if last.files > first.files+20 {
		drift = append(drift, "open files grew")
	}
	if last.p99 > 2*first.p99+time.Millisecond {
		drift = append(drift, "p99 doubled")
	}
	if committed != acknowledged {
		drift = append(drift, fmt.Sprintf("%d records committed for %d tokens acknowledged", committed, acknowledged))
	}
	if len(drift) > 0 {
		return fmt.Errorf("drift: %s", strings.Join(drift, "; "))
	}
	fmt.Println("soak: no drift")
	return nil
}

func average(ss []sample) sample {
	var a sample
	for _, s := range ss {
		a.rss += s.rss
		a.goroutines += s.goroutines
		a.files += s.files
		a.p99 += s.p99
	}
	n := len(ss)
	a.rss, a.goroutines, a.files, a.p99 = a.rss/int64(n), a.goroutines/n, a.files/n, a.p99/time.Duration(n)
	return a
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rss is the process's resident memory in bytes.
func rss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// files is how many files the process has open.
func files(pid int) int {
	entries, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(entries)
}

// metric reads one sample of jwtd's /metrics.
func metric(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return -1
}
