// Package recordtest is the conformance suite of record.Store: every store
// (sqlite, mongodb) runs Run against a real backend.
package recordtest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token"
)

// Store is the whole contract a store of jwtd's keeps: records
// (record.Store) and the managed keys' keyrings and history (keys.KeyStore).
type Store interface {
	record.Store
	keys.KeyStore
}

// Run runs the suite. newStore returns an empty store; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, Store)
	}{
		{"InsertAndByJTI", testInsertAndByJTI},
		{"DuplicateJTI", testDuplicateJTI},
		{"XIDConflict", testXIDConflict},
		{"ByXIDNewestFirst", testByXID},
		{"ByPhonePaginated", testByPhone},
		{"Revoke", testRevoke},
		{"Revocations", testRevocations},
		{"StatusByExpiry", testStatusByExpiry},
		{"Purge", testPurge},
		{"Outcomes", testOutcomes},
		{"OutcomesPurgedWithRecords", testOutcomesPurged},
		{"Keyrings", testKeyrings},
		{"KeyHistory", testKeyHistory},
		{"ClosedTransaction", testClosedTransaction},
		{"ClosingRace", testClosingRace},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ContextCancelled", testContextCancelled},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = s.Close()
				}
			})
			if tc.name == "Closed" {
				closed = true
			}
			tc.fn(t, s)
		})
	}
}

// base is the suite's clock origin; times are whole microseconds so that
// every backend stores them exactly.
var base = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// rec makes a record issued n milliseconds after base.
func rec(jti, xid, phone string, n int) *record.Record {
	issued := base.Add(time.Duration(n) * time.Millisecond)
	return &record.Record{
		JTI: jti, Profile: "appverify", Kid: "av1", Alg: "HS256", XID: xid, Phone: phone,
		Subject: "sub-" + jti, Issued: issued, Expires: issued.Add(90 * time.Second),
		ClientIP: "192.0.2.1", TokenSHA256: token.HashToken("token-" + jti),
	}
}

func insert(t *testing.T, s Store, r *record.Record) {
	t.Helper()
	if err := s.Insert(context.Background(), r); err != nil {
		t.Fatalf("insert %s: %v", r.JTI, err)
	}
}

func equal(a, b record.Record) bool {
	return a.JTI == b.JTI && a.Profile == b.Profile && a.Kid == b.Kid && a.Alg == b.Alg && a.XID == b.XID &&
		a.Phone == b.Phone && a.Subject == b.Subject && a.Issued.Equal(b.Issued) && a.Expires.Equal(b.Expires) &&
		a.Revoked.Equal(b.Revoked) && a.ClientIP == b.ClientIP && a.TokenSHA256 == b.TokenSHA256 && a.TokenText == b.TokenText
}

func jtis(recs []record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.JTI
	}
	return out
}

func testInsertAndByJTI(t *testing.T, s Store) {
	ctx := context.Background()
	r := rec("j1", "x1", "+14155552671", 0)
	r.TokenText = "a.b.c"
	insert(t, s, r)
	got, err := s.ByJTI(ctx, "j1")
	if err != nil {
		t.Fatal(err)
	}
	if !equal(*got, *r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", *got, *r)
	}
	if _, err := s.ByJTI(ctx, "nope"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("unknown jti: %v", err)
	}
	// Records without XID or phone (castlabs, native) are fine.
	insert(t, s, rec("j2", "", "", 1))
	if err := s.Ping(ctx); err != nil {
		t.Errorf("ping: %v", err)
	}
}

func testDuplicateJTI(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("dup", "x1", "+1", 0))
	other := rec("dup", "x2", "+2", 5)
	if err := s.Insert(ctx, other); !errors.Is(err, record.ErrDuplicate) {
		t.Fatalf("duplicate jti: %v", err)
	}
	got, err := s.ByJTI(ctx, "dup")
	if err != nil || got.XID != "x1" {
		t.Errorf("the first record was changed: %+v %v", got, err)
	}
	if recs, _ := s.ByXID(ctx, "x2"); len(recs) != 0 {
		t.Errorf("the refused record was written: %v", jtis(recs))
	}
	// One jti from several writers at once (in one batch or several):
	// exactly one insert succeeds.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Insert(ctx, rec("dup-race", fmt.Sprintf("dx%d", i), "+1", 20+i))
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, record.ErrDuplicate):
			t.Errorf("racing duplicate: %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d inserts of one jti succeeded, want 1", ok, len(errs))
	}
}

func testXIDConflict(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("a", "tx", "+14155552671", 0))
	insert(t, s, rec("b", "tx", "+14155552671", 1)) // re-issue: same xid, same phone
	if err := s.Insert(ctx, rec("c", "tx", "+14155550000", 2)); !errors.Is(err, record.ErrXIDConflict) {
		t.Fatalf("other phone: %v", err)
	}
	if _, err := s.ByJTI(ctx, "c"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("conflicting record was written: %v", err)
	}
	// Concurrent inserts of one xid with two phones: exactly one phone wins.
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			phone := fmt.Sprintf("+1415555%04d", i%2)
			errs[i] = s.Insert(ctx, rec(fmt.Sprintf("race-%d", i), "race", phone, 10+i))
		}()
	}
	wg.Wait()
	recs, err := s.ByXID(ctx, "race")
	if err != nil {
		t.Fatal(err)
	}
	phones := map[string]bool{}
	for _, r := range recs {
		phones[r.Phone] = true
	}
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, record.ErrXIDConflict):
			t.Errorf("race insert: %v", err)
		}
	}
	if len(phones) != 1 || ok != len(recs) {
		t.Errorf("xid race: %d phones in %d records, %d inserts succeeded", len(phones), len(recs), ok)
	}
}

func testByXID(t *testing.T, s Store) {
	ctx := context.Background()
	for i, jti := range []string{"o1", "o3", "o2"} {
		insert(t, s, rec(jti, "tx", "+1", []int{0, 20, 10}[i]))
	}
	insert(t, s, rec("other", "tx2", "+1", 30))
	recs, err := s.ByXID(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(jtis(recs)); got != "[o3 o2 o1]" {
		t.Errorf("ByXID order %s", got)
	}
	if recs, err := s.ByXID(ctx, "none"); err != nil || len(recs) != 0 {
		t.Errorf("unknown xid: %v %v", recs, err)
	}
	if recs, err := s.ByXID(ctx, ""); err != nil || len(recs) != 0 {
		t.Errorf("empty xid matched records without one: %v %v", jtis(recs), err)
	}
}

func testByPhone(t *testing.T, s Store) {
	ctx := context.Background()
	var want []string
	for i := range 25 {
		// Pairs share an issue time, so the jti breaks ties.
		r := rec(fmt.Sprintf("p%02d", i), fmt.Sprintf("x%02d", i), "+14155552671", i/2)
		insert(t, s, r)
		want = append(want, r.JTI)
	}
	insert(t, s, rec("elsewhere", "y", "+14155550000", 100))
	sort.Sort(sort.Reverse(sort.StringSlice(want))) // newest first: p24, p23, ...
	var got []string
	cursor, pages := "", 0
	for {
		page, err := s.ByPhone(ctx, "+14155552671", 10, cursor)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, jtis(page.Records)...)
		if page.Next == "" {
			break
		}
		cursor = page.Next
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
		t.Errorf("pages %d:\n got %v\nwant %v", pages, got, want)
	}
	if _, err := s.ByPhone(ctx, "+14155552671", 10, "not-a-cursor!"); !errors.Is(err, record.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
	if page, err := s.ByPhone(ctx, "+19999999999", 10, ""); err != nil || len(page.Records) != 0 || page.Next != "" {
		t.Errorf("unknown phone: %+v %v", page, err)
	}
}
