package recordtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

func testConcurrentWriters(t *testing.T, s Store) {
	ctx := context.Background()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.Insert(ctx, rec(fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("x%d", w), "+1", i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for w := range writers {
		recs, err := s.ByXID(ctx, fmt.Sprintf("x%d", w))
		if err != nil || len(recs) != each {
			t.Fatalf("writer %d: %d records, %v", w, len(recs), err)
		}
	}
}

func testContextCancelled(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Insert(ctx, rec("c1", "", "", 0)); !errors.Is(err, context.Canceled) {
		t.Errorf("insert: %v", err)
	}
	if _, err := s.ByXID(ctx, "x"); err == nil {
		t.Error("ByXID with a cancelled context succeeded")
	}
	if _, err := s.ByPhone(ctx, "+1", 10, ""); err == nil {
		t.Error("ByPhone with a cancelled context succeeded")
	}
}

func testClosed(t *testing.T, s Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(context.Background(), rec("late", "", "", 0)); !errors.Is(err, record.ErrUnavailable) {
		t.Errorf("insert after close: %v", err)
	}
}

// Outage checks a networked store through its server going away and coming
// back: while it is down, Insert and Ping fail with record.ErrUnavailable
// (and hand nothing out as committed); once it is back, the store works
// again without being reopened and nothing committed before was lost.
func Outage(t *testing.T, s Store, down, up func()) {
	ctx := context.Background()
	insert(t, s, rec("before", "tx-o", "+1", 0))
	down()
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := s.Insert(short, rec("during", "tx-o", "+1", 1)); !errors.Is(err, record.ErrUnavailable) {
		t.Errorf("insert while down: %v", err)
	}
	if err := s.Ping(short); !errors.Is(err, record.ErrUnavailable) {
		t.Errorf("ping while down: %v", err)
	}
	up()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = s.Insert(ctx, rec(fmt.Sprintf("after-%d", time.Now().UnixNano()), "tx-o", "+1", 2)); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the store did not recover: %v", err)
	}
	if _, err := s.ByJTI(ctx, "before"); err != nil {
		t.Errorf("the record committed before the outage: %v", err)
	}
}

// StatsStore is a store whose group committer reports what it committed.
type StatsStore interface {
	record.Store
	Stats() (commits, records uint64)
}

// BenchmarkGroupCommit inserts b.N records from 1, 16 and 256 concurrent
// writers into stores from newStore, and reports records/s, commits/s and
// records per commit. The records are shaped like seed 000's: a random jti
// and XID (so index inserts land anywhere, as in production), one of 1,000
// phones, a token hash.
func BenchmarkGroupCommit(b *testing.B, newStore func(b *testing.B) StatsStore) {
	for _, writers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := newStore(b)
			now := time.Now().UTC()
			var next atomic.Int64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						r := &record.Record{JTI: fmt.Sprintf("%032x", rand.Uint64()), Profile: "appverify", Kid: "av1", Alg: "HS256",
							XID: fmt.Sprintf("tx-%d", rand.Uint64()), Phone: fmt.Sprintf("+1415555%04d", 2000+i%1000),
							Issued: now, Expires: now.Add(time.Minute), ClientIP: "203.0.113.7",
							TokenSHA256: fmt.Sprintf("%064x", i)}
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
