package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/record/recordtest"
)

func TestConformance(t *testing.T) {
	recordtest.Run(t, func(t *testing.T) record.Store {
		s, err := Open(filepath.Join(t.TempDir(), "jwtd.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Records committed before Close are there when the file is opened again.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwtd.db")
	s, err := Open(path, Options{Linger: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.Insert(context.Background(), &record.Record{JTI: "j", Profile: "p", Kid: "k", Alg: "HS256", Issued: now, Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ByJTI(context.Background(), "j"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkGroupCommit measures inserts with 1, 16 and 256 concurrent
// writers on a real file with synchronous=FULL, and reports records/s and
// commits/s (how well concurrent requests share a commit).
func BenchmarkGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now().UTC()
			var next sync.Mutex
			n := 0
			take := func() (int, bool) {
				next.Lock()
				defer next.Unlock()
				if n >= b.N {
					return 0, false
				}
				n++
				return n, true
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
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
