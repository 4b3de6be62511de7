package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/record/recordtest"
	"github.com/jwtd/jwtd/internal/testservice"
)

// open opens a store on a database of its own, dropped when the test ends.
func open(t testing.TB, base string, opts Options) *Store {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	uri := strings.TrimSuffix(base, "/") + "/jwtdtest_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.tokens.Database().Drop(ctx)
		_ = s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	url := testservice.MongoURL(t)
	recordtest.Run(t, func(t *testing.T) record.Store { return open(t, url, Options{Retention: time.Hour}) })
}

// The server goes away and comes back: a FerretDB of the test's own.
func TestOutage(t *testing.T) {
	bin := testservice.FerretDBBin(t)
	addr := testservice.Addr(testservice.FreePort(t))
	p := testservice.Start(t, addr, bin, "--listen", addr, "--dir", filepath.Join(t.TempDir(), "ferretdb"))
	s := open(t, "mongodb://"+addr, Options{})
	recordtest.Outage(t, s, p.Stop, p.Restart)
}

// FerretDB has no TTL indexes; the store says so and relies on the purge.
func TestTTLIndexFallback(t *testing.T) {
	s := open(t, testservice.MongoURL(t), Options{Retention: time.Hour})
	t.Logf("TTL index: %v", s.TTLIndex())
	n, err := s.Purge(context.Background(), time.Now())
	if err != nil || n != 0 {
		t.Errorf("purge: %d %v", n, err)
	}
}

// BenchmarkGroupCommit is the mongodb store with 1, 16 and 256 concurrent
// writers.
func BenchmarkGroupCommit(b *testing.B) {
	url := testservice.MongoURL(b)
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := open(b, url, Options{})
			now := time.Now().UTC()
			var mu sync.Mutex
			n := 0
			take := func() (int, bool) {
				mu.Lock()
				defer mu.Unlock()
				n++
				return n, n <= b.N
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i, ok := take()
						if !ok {
							return
						}
						r := &record.Record{JTI: fmt.Sprintf("j%d", i), Profile: "appverify", Kid: "av1", Alg: "HS256",
							XID: fmt.Sprintf("x%d", i), Phone: "+14155552671", Issued: now, Expires: now.Add(time.Minute)}
						if err := s.Insert(context.Background(), r); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start).Seconds()
			commits, records := s.Stats()
			b.ReportMetric(float64(records)/elapsed, "records/s")
			b.ReportMetric(float64(commits)/elapsed, "commits/s")
			b.ReportMetric(float64(records)/float64(commits), "records/commit")
		})
	}
}
