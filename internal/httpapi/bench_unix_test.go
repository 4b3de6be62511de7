//go:build unix

package httpapi

import (
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkKeyedMintTrailCost is the audit trail's cost on the keyed
// minting route as make bench shows it: POST /v1/tokens (ES256, recorded)
// on two servers, one without the trail and one with it, each on its own
// SQLite file, in turns of 256 tokens from 64 goroutines (the
// connections of make bench's wrk), with the process's CPU time (user and
// system) and the time taken around each turn. Turns of a fraction of a
// second put both under the same load of a shared machine, where two runs
// one after the other do not. It reports the CPU per token of each
// (off-µs/token, on-µs/token) and their ratio (on/off), and the rate with
// the trail as a share of the rate without (rate-on/off); b.N is the
// tokens each server mints after 1024 it is not measured on. make bench
// runs it on every CPU (GOMAXPROCS), as jwtd serve runs. The collector
// runs as jwtd serve sets it (GOGC 400 up to 64 MiB of heap,
// cmd/jwtd/serve.go), unless GOGC or GOMEMLIMIT say otherwise: the
// garbage a request leaves costs what it does when served.
func BenchmarkKeyedMintTrailCost(b *testing.B) {
	const turn, workers = 256, 64
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
		if os.Getenv("GOMEMLIMIT") == "" {
			defer debug.SetMemoryLimit(debug.SetMemoryLimit(64 << 20))
		}
	}
	servers := []http.Handler{keyedMintServer(b, "audit=off"), keyedMintServer(b, "audit=on")}
	// mint has workers mint n tokens through h and returns the process's
	// CPU time meanwhile, and the time taken.
	mint := func(h http.Handler, n int) (cpu, took time.Duration) {
		start, began := processCPU(b), time.Now()
		var left atomic.Int64
		left.Store(int64(n))
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if err := keyedMint(b, h); err != nil {
						b.Error(err) // FailNow only on the benchmark's goroutine
						left.Store(-workers)
					}
				}
			})
		}
		wg.Wait()
		if b.Failed() {
			b.FailNow()
		}
		return processCPU(b) - start, time.Since(began)
	}
	// Not counted: each server's first pages and WAL, which a new file
	// makes once.
	for _, h := range servers {
		mint(h, 4*turn)
	}
	var cpu, took [2]time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += turn {
		for i, h := range servers {
			c, t := mint(h, min(turn, b.N-done))
			cpu[i] += c
			took[i] += t
		}
	}
	off, on := float64(cpu[0].Microseconds())/float64(b.N), float64(cpu[1].Microseconds())/float64(b.N)
	b.ReportMetric(off, "off-µs/token")
	b.ReportMetric(on, "on-µs/token")
	b.ReportMetric(on/off, "on/off")
	b.ReportMetric(took[0].Seconds()/took[1].Seconds(), "rate-on/off")
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
