package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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

// The key manager on MongoDB; no key is in the clear in the keyrings
// collection.
func TestManagedKeys(t *testing.T) {
	s := open(t, testservice.MongoURL(t), Options{})
	recordtest.ManagedKeys(t, s, func() [][]byte { return storedKeyrings(t, s) })
}

// storedKeyrings reads the keyrings collection as stored, each document
// as its BSON bytes.
func storedKeyrings(t *testing.T, s *Store) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cur, err := s.keyrings.Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close(ctx)
	var out [][]byte
	for cur.Next(ctx) {
		out = append(out, slices.Clone([]byte(cur.Current)))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The server goes away and comes back: a FerretDB of the test's own.
func TestOutage(t *testing.T) {
	bin := testservice.FerretDBBin(t)
	addr := testservice.Addr(testservice.FreePort(t))
	p := testservice.Start(t, addr, bin, "--listen", addr, "--dir", filepath.Join(t.TempDir(), "ferretdb"))
	s := open(t, "mongodb://"+addr, Options{})
	recordtest.Outage(t, s, p.Stop, p.Restart)
}

// Where the server has no TTL index (FerretDB answers NotImplemented), the
// store says so and keeps a plain index on expires for the purge; the
// purge takes the expired records and keeps the live ones; a second start
// with another retention, which meets the index already made, starts too.
func TestTTLIndexFallback(t *testing.T) {
	s := open(t, testservice.MongoURL(t), Options{Retention: time.Hour})
	ctx := context.Background()
	cur, err := s.tokens.Indexes().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var indexes []struct {
		Key                bson.D `bson:"key"`
		ExpireAfterSeconds *int32 `bson:"expireAfterSeconds"`
	}
	if err := cur.All(ctx, &indexes); err != nil {
		t.Fatal(err)
	}
	// On a server with TTL indexes the index on expires is one, of the
	// retention; on FerretDB it is plain, for the purge.
	found := false
	for _, ix := range indexes {
		if len(ix.Key) == 1 && ix.Key[0].Key == "expires" {
			found = true
			if ttl := ix.ExpireAfterSeconds; s.TTLIndex() != (ttl != nil) || ttl != nil && *ttl != 3600 {
				t.Errorf("TTLIndex() %v, the index on expires %+v", s.TTLIndex(), ix)
			}
		}
	}
	if !found {
		t.Errorf("no index on expires: %+v", indexes)
	}

	now := time.Now().UTC()
	expired := &record.Record{JTI: "expired", Profile: "default", Issued: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}
	live := &record.Record{JTI: "live", Profile: "default", Issued: now, Expires: now.Add(time.Hour)}
	for _, r := range []*record.Record{expired, live} {
		if err := s.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Purge(ctx, now); err != nil || n != 1 {
		t.Errorf("purge: %d %v; want 1 record purged", n, err)
	}
	if _, err := s.ByJTI(ctx, "expired"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("the expired record after the purge: %v", err)
	}
	if _, err := s.ByJTI(ctx, "live"); err != nil {
		t.Errorf("the live record after the purge: %v", err)
	}

	again, err := Open(ctx, strings.TrimSuffix(testservice.MongoURL(t), "/")+"/"+s.tokens.Database().Name(), Options{Retention: 2 * time.Hour})
	if err != nil {
		t.Fatalf("a second start with another retention: %v", err)
	}
	defer again.Close()
	if again.TTLIndex() && !s.TTLIndex() {
		t.Error("the second start reports a TTL index the first could not make")
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
	// A minute for the commit: encoding 49 MiB on a busy machine can take
	// the default 5 s, and a commit that times out keeps its claims.
	s := open(t, testservice.MongoURL(t), Options{Retention: time.Hour, GroupOptions: record.GroupOptions{Timeout: time.Minute}})
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
	audittest.Run(t, func(t *testing.T) audittest.Store { return open(t, url, Options{}) })
}
