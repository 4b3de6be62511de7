// Package recordtest is the conformance suite of record.Store: every store
// (sqlite, mongodb) runs Run against a real backend.
package recordtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
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

func testRevoke(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("r1", "tx", "+1", 0))
	insert(t, s, rec("r2", "tx", "+1", 1))
	insert(t, s, rec("r3", "tx", "+1", 2))
	insert(t, s, rec("r4", "other", "+1", 3))
	at := base.Add(time.Minute)
	if n, err := s.RevokeJTI(ctx, "r1", at); n != 1 || err != nil {
		t.Errorf("revoke jti: %d %v", n, err)
	}
	if n, err := s.RevokeJTI(ctx, "r1", at.Add(time.Second)); n != 0 || err != nil {
		t.Errorf("revoke again: %d %v", n, err)
	}
	if n, err := s.RevokeXID(ctx, "tx", at.Add(2*time.Second)); n != 2 || err != nil {
		t.Errorf("revoke xid: %d %v (r1 already revoked)", n, err)
	}
	if n, err := s.RevokeJTI(ctx, "nope", at); n != 0 || err != nil {
		t.Errorf("revoke unknown: %d %v", n, err)
	}
	r1, _ := s.ByJTI(ctx, "r1")
	r2, _ := s.ByJTI(ctx, "r2")
	r4, _ := s.ByJTI(ctx, "r4")
	if !r1.Revoked.Equal(at) || !r2.Revoked.Equal(at.Add(2*time.Second)) || !r4.Revoked.IsZero() {
		t.Errorf("revoked times: %v %v %v", r1.Revoked, r2.Revoked, r4.Revoked)
	}
	if r1.Status(base) != record.Revoked || r4.Status(base) != record.Active {
		t.Errorf("status: %s %s", r1.Status(base), r4.Status(base))
	}
}

func testRevocations(t *testing.T, s Store) {
	ctx := context.Background()
	for i, jti := range []string{"v1", "v2", "v3", "v4"} {
		insert(t, s, rec(jti, "", "", i)) // expire 90 s after base
	}
	if got, err := s.Revocations(ctx, time.Time{}, base); err != nil || len(got) != 0 {
		t.Fatalf("nothing revoked yet: %+v %v", got, err)
	}
	at := base.Add(10 * time.Second)
	for i, jti := range []string{"v3", "v1", "v2"} {
		if _, err := s.RevokeJTI(ctx, jti, at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Revocations(ctx, time.Time{}, base)
	if err != nil || len(got) != 3 || got[0].JTI != "v3" || got[1].JTI != "v1" || got[2].JTI != "v2" {
		t.Fatalf("all, oldest first: %+v %v", got, err)
	}
	if !got[0].Revoked.Equal(at) || !got[0].Expires.Equal(base.Add(2*time.Millisecond+90*time.Second)) {
		t.Errorf("times: %+v", got[0])
	}
	// Since a time: only the later ones. Past their expiry: none.
	if got, err := s.Revocations(ctx, at.Add(time.Second), base); err != nil || len(got) != 2 || got[0].JTI != "v1" {
		t.Errorf("since: %+v %v", got, err)
	}
	if got, err := s.Revocations(ctx, time.Time{}, base.Add(2*time.Minute)); err != nil || len(got) != 0 {
		t.Errorf("all expired: %+v %v", got, err)
	}
}

func testStatusByExpiry(t *testing.T, s Store) {
	insert(t, s, rec("e1", "", "", 0))
	r, err := s.ByJTI(context.Background(), "e1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   time.Time
		want record.Status
	}{
		{r.Expires.Add(-time.Nanosecond), record.Active},
		{r.Expires, record.Expired},
		{r.Expires.Add(time.Hour), record.Expired},
	} {
		if got := r.Status(tc.at); got != tc.want {
			t.Errorf("at %s: %s, want %s", tc.at, got, tc.want)
		}
	}
}

func testPurge(t *testing.T, s Store) {
	ctx := context.Background()
	for i := range 5 {
		insert(t, s, rec(fmt.Sprintf("old%d", i), "", "", i))
	}
	young := rec("young", "", "", 0)
	young.Expires = base.Add(48 * time.Hour)
	insert(t, s, young)
	// Retention 24h, clock injected at base+72h: the five that expired at
	// base+90s are past retention and go; the one expiring at base+48h stays.
	p := record.Purger{Store: s, Retention: 24 * time.Hour, Now: func() time.Time { return base.Add(72 * time.Hour) }}
	n, err := p.RunOnce(ctx)
	if err != nil || n != 5 {
		t.Fatalf("purged %d, %v; want 5", n, err)
	}
	if _, err := s.ByJTI(ctx, "old0"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("old0 survived: %v", err)
	}
	if _, err := s.ByJTI(ctx, "young"); err != nil {
		t.Errorf("young was purged: %v", err)
	}
	if n, err := p.RunOnce(ctx); n != 0 || err != nil {
		t.Errorf("second purge: %d %v", n, err)
	}
}

// outcome is a report on xid that happened n seconds after base.
func outcome(xid string, status record.OutcomeStatus, code, n int) *record.Outcome {
	at := base.Add(time.Duration(n) * time.Second)
	return &record.Outcome{XID: xid, Status: status, Code: code, Description: fmt.Sprintf("d%d", n),
		UpdatedOn: at, Source: "callback", Recorded: at.Add(time.Second)}
}

// Outcomes are appended to a transaction that has records, kept whole,
// and listed newest first by when they happened, whatever order they came
// in; an XID without records takes none. An outcome is kept when every
// token of its transaction is expired or revoked.
func testOutcomes(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("o1", "tx-out", "+14155550100", 0))
	if _, err := s.RevokeXID(ctx, "tx-out", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	late := outcome("tx-out", record.Verified, 2401, 30)
	early := outcome("tx-out", record.Pending, 2400, 10)
	again := outcome("tx-out", record.Failed, 0, 30) // same time as late, recorded after it
	again.Recorded = late.Recorded.Add(time.Second)
	for _, o := range []*record.Outcome{late, early, again} {
		if err := s.AddOutcome(ctx, o); err != nil {
			t.Fatalf("AddOutcome %+v: %v", o, err)
		}
	}
	got, err := s.Outcomes(ctx, "tx-out")
	if err != nil {
		t.Fatal(err)
	}
	want := []*record.Outcome{again, late, early}
	if len(got) != len(want) {
		t.Fatalf("%d outcomes, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.XID != w.XID || g.Status != w.Status || g.Code != w.Code || g.Description != w.Description ||
			!g.UpdatedOn.Equal(w.UpdatedOn) || g.Source != w.Source || !g.Recorded.Equal(w.Recorded) {
			t.Errorf("outcome %d: %+v, want %+v", i, g, *w)
		}
	}
	if err := s.AddOutcome(ctx, outcome("tx-never", record.Verified, 2401, 1)); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("an outcome for an XID without records: %v, want ErrNotFound", err)
	}
	if got, err := s.Outcomes(ctx, "tx-never"); err != nil || len(got) != 0 {
		t.Errorf("outcomes of tx-never: %+v %v", got, err)
	}
	// A transaction holds at most MaxOutcomes.
	for i := len(want); i < record.MaxOutcomes; i++ {
		if err := s.AddOutcome(ctx, outcome("tx-out", record.Pending, 2400, 100+i)); err != nil {
			t.Fatalf("outcome %d: %v", i+1, err)
		}
	}
	if err := s.AddOutcome(ctx, outcome("tx-out", record.Pending, 2400, 1000)); !errors.Is(err, record.ErrTooManyOutcomes) {
		t.Errorf("outcome %d: %v, want ErrTooManyOutcomes", record.MaxOutcomes+1, err)
	}
	if got, err := s.Outcomes(ctx, "tx-out"); err != nil || len(got) != record.MaxOutcomes {
		t.Errorf("%d outcomes, %v; want %d", len(got), err, record.MaxOutcomes)
	}
}

// The purge that takes a transaction's last record takes its outcomes; a
// transaction with a record left keeps them.
func testOutcomesPurged(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("gone", "tx-gone", "+14155550101", 0))
	insert(t, s, rec("kept-old", "tx-kept", "+14155550102", 0))
	young := rec("kept-young", "tx-kept", "+14155550102", 1)
	young.Expires = base.Add(48 * time.Hour)
	insert(t, s, young)
	for _, xid := range []string{"tx-gone", "tx-kept"} {
		if err := s.AddOutcome(ctx, outcome(xid, record.Verified, 2401, 5)); err != nil {
			t.Fatal(err)
		}
	}
	p := record.Purger{Store: s, Retention: 24 * time.Hour, Now: func() time.Time { return base.Add(72 * time.Hour) }}
	if n, err := p.RunOnce(ctx); err != nil || n != 2 {
		t.Fatalf("purged %d, %v; want 2", n, err)
	}
	if got, err := s.Outcomes(ctx, "tx-gone"); err != nil || len(got) != 0 {
		t.Errorf("outcomes of a purged transaction: %+v %v", got, err)
	}
	if got, err := s.Outcomes(ctx, "tx-kept"); err != nil || len(got) != 1 {
		t.Errorf("outcomes of a transaction with a record left: %+v %v", got, err)
	}
}

// Keyrings are stored whole and changed by compare-and-swap on their
// version: of several writers that read one version, exactly one wins.
func testKeyrings(t *testing.T, s Store) {
	ctx := context.Background()
	ring, err := s.Keyring(ctx, "default")
	if err != nil || ring.Version != 0 || len(ring.Keys) != 0 {
		t.Fatalf("a keyring never stored: %+v %v", ring, err)
	}
	key := keys.ManagedKey{Kid: "k1", Alg: "ES256", State: keys.KeyNext, Created: base,
		Activates: base.Add(time.Hour), Private: []byte{0, 1, 2, 0xff}}
	ring.Keys = []keys.ManagedKey{key}
	v, err := s.PutKeyring(ctx, ring)
	if err != nil || v != 1 {
		t.Fatalf("first put: %d %v", v, err)
	}
	if _, err := s.PutKeyring(ctx, ring); !errors.Is(err, keys.ErrConflict) {
		t.Errorf("a second first put: %v, want ErrConflict", err)
	}
	got, err := s.Keyring(ctx, "default")
	if err != nil || got.Version != 1 || len(got.Keys) != 1 {
		t.Fatalf("read back: %+v %v", got, err)
	}
	k := got.Keys[0]
	if k.Kid != key.Kid || k.Alg != key.Alg || k.State != key.State || !k.Created.Equal(key.Created) ||
		!k.Activates.Equal(key.Activates) || !k.Retires.IsZero() || !k.Deletes.IsZero() || string(k.Private) != string(key.Private) {
		t.Errorf("read back %+v, want %+v", k, key)
	}

	// A rotation by several instances at once: one wins, the others are
	// told to read again.
	got.Keys[0].State = keys.KeyCurrent
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	for range 8 {
		wg.Go(func() {
			_, err := s.PutKeyring(ctx, got)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, keys.ErrConflict):
				lost.Add(1)
			default:
				t.Errorf("put: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != 7 {
		t.Errorf("%d won, %d lost; want 1 and 7", won.Load(), lost.Load())
	}
	if r, _ := s.Keyring(ctx, "default"); r.Version != 2 || r.Keys[0].State != keys.KeyCurrent {
		t.Errorf("after the race: %+v", r)
	}
	// A writer that read a version long superseded loses, however the
	// store keeps its history.
	v3 := got
	v3.Version = 2
	if _, err := s.PutKeyring(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutKeyring(ctx, got); !errors.Is(err, keys.ErrConflict) {
		t.Errorf("a write from version 1 after version 3: %v, want ErrConflict", err)
	}
	if r, _ := s.Keyring(ctx, "default"); r.Version != 3 {
		t.Errorf("after a stale write: version %d, want 3", r.Version)
	}
	if _, err := s.PutKeyring(ctx, keys.Keyring{Profile: "castlabs", Keys: []keys.ManagedKey{{Kid: "c1", Alg: "HS512", State: keys.KeyCurrent, Created: base}}}); err != nil {
		t.Fatal(err)
	}
	rings, err := s.Keyrings(ctx)
	if err != nil || len(rings) != 2 || rings[0].Profile != "castlabs" || rings[1].Profile != "default" {
		t.Errorf("Keyrings: %+v %v", rings, err)
	}
}

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
