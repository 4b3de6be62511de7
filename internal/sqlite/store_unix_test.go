//go:build unix

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/record"
)

// The database and its WAL files are readable by their owner only, whatever
// the umask.
func TestFilesPrivate(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	path := filepath.Join(t.TempDir(), "jwtd.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	if err := s.Insert(context.Background(), &record.Record{JTI: "j", Profile: "p", Kid: "k", Alg: "HS256", Issued: now, Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", filepath.Base(name), info.Mode().Perm(), err)
		}
	}
}

// BenchmarkCommitAudited is what an audit entry adds to its record's
// commit: commits of 16 records shaped like keyed mints' (the minting
// route's commits under load are that large) on two stores, one without
// entries and one with an entry a record, in turns of 50 commits (each
// store first every other turn), with the process's CPU time (user and
// system) around each turn. It reports the CPU of a record without an
// entry and with one, and their difference, the entry's cost (entry-µs):
// its link, its share of the commit's run (one audit row, runs), and the
// pages that adds to the commit's WAL frames and fsync. Turns put both
// under the same load of a shared machine.
func BenchmarkCommitAudited(b *testing.B) {
	const size, turn = 16, 50
	n := 0
	batch := func(audited bool) []*record.Record {
		now := time.Now().UTC()
		recs := make([]*record.Record, size)
		for k := range recs {
			n++
			jti := fmt.Sprintf("%016x%016x", now.UnixNano(), n)
			recs[k] = &record.Record{JTI: jti, Profile: "default", Kid: "es1", Alg: "ES256", Subject: "bench",
				Issued: now, Expires: now.Add(time.Minute), ClientIP: "203.0.113.7", TokenSHA256: fmt.Sprintf("%064x", n)}
			if audited {
				recs[k].Audit = &audit.Entry{Chain: "node-a", Instance: "node-a", Time: now, Actor: "issuer", Action: audit.ActionMint,
					Target: audit.MintTarget(jti, ""), Result: audit.ResultOK, RequestID: "0123456789abcdef", ClientIP: "192.0.2.1",
					Detail: "profile=default"}
			}
		}
		return recs
	}
	stores := [2]*Store{openTemp(b), openTemp(b)}
	// commits makes k commits on stores[i] (entries on the second) and
	// returns the CPU they took.
	commits := func(i, k int) time.Duration {
		start := processCPU(b)
		for range k {
			results, err := stores[i].commit(batch(i == 1))
			if err == nil {
				err = errors.Join(results...) // an entry refused would commit the batch twice
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		return processCPU(b) - start
	}
	for i := range stores {
		commits(i, 2*turn) // a new file's first pages and WAL
	}
	var cpu [2]time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += turn {
		// Each store first every other turn: the collection one turn's
		// garbage starts is not always paid by the same store.
		for _, i := range [][2]int{{0, 1}, {1, 0}}[done/turn%2] {
			cpu[i] += commits(i, min(turn, b.N-done))
		}
	}
	perRecord := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N*size) / 1e3 }
	b.ReportMetric(perRecord(cpu[0]), "off-µs/record")
	b.ReportMetric(perRecord(cpu[1]), "on-µs/record")
	b.ReportMetric(perRecord(cpu[1]-cpu[0]), "entry-µs")
}

// processCPU is the CPU time, user and system, the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
