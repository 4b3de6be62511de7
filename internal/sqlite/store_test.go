package sqlite

import (
	"context"
	"path/filepath"
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
	recordtest.BenchmarkGroupCommit(b, func(b *testing.B) recordtest.StatsStore {
		s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
