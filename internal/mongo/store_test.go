package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/audit/audittest"
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
	recordtest.Run(t, func(t *testing.T) recordtest.Store { return open(t, url, Options{Retention: time.Hour}) })
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
	recordtest.BenchmarkGroupCommit(b, func(b *testing.B) recordtest.StatsStore { return open(b, url, Options{}) })
}

// An insert that fails as a whole gives back the XID its batch bound: the
// same XID with another phone is then accepted, as on SQLite, where the
// failed transaction rolls the claim back.
func TestFailedInsertReleasesXID(t *testing.T) {
	s := open(t, testservice.MongoURL(t), Options{Retention: time.Hour})
	ctx := context.Background()
	now := time.Now().UTC()
	// A document over the 48 MB wire message limit: the driver refuses
	// the insert before sending anything.
	huge := &record.Record{JTI: "huge", Profile: "appverify", XID: "tx-huge", Phone: "+14155550001",
		Subject: strings.Repeat("x", 49<<20), Issued: now, Expires: now.Add(time.Minute)}
	if err := s.Insert(ctx, huge); err == nil {
		t.Fatal("a 49 MiB record was stored")
	}
	other := &record.Record{JTI: "other", Profile: "appverify", XID: "tx-huge", Phone: "+14155550002",
		Issued: now, Expires: now.Add(time.Minute)}
	if err := s.Insert(ctx, other); err != nil {
		t.Fatalf("the XID of a failed insert stayed bound: %v", err)
	}
	got, err := s.ByXID(ctx, "tx-huge")
	if err != nil || len(got) != 1 || got[0].Phone != other.Phone {
		t.Fatalf("ByXID = %+v, %v", got, err)
	}
	// And the XID is now bound to the phone whose token went in.
	third := &record.Record{JTI: "third", Profile: "appverify", XID: "tx-huge", Phone: "+14155550001",
		Issued: now, Expires: now.Add(time.Minute)}
	if err := s.Insert(ctx, third); err != record.ErrXIDConflict {
		t.Errorf("a third phone on the XID: %v, want ErrXIDConflict", err)
	}
}

func TestAuditConformance(t *testing.T) {
	url := testservice.MongoURL(t)
	audittest.Run(t, func(t *testing.T) audit.Store { return open(t, url, Options{}) })
}
