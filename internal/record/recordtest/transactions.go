package recordtest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/record"
)

// testClosedTransaction: revoking an XID closes its transaction, which
// then takes no new record, on any phone (another phone's may be refused
// as the conflict it also is); revoking one jti does not.
func testClosedTransaction(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("c1", "tx-c", "+14155550100", 0))
	insert(t, s, rec("o1", "tx-open", "+14155550100", 1))
	if at, err := s.ClosedAt(ctx, "tx-c"); err != nil || !at.IsZero() {
		t.Fatalf("ClosedAt of an open transaction: %v, %v", at, err)
	}
	if _, err := s.RevokeJTI(ctx, "o1", base); err != nil {
		t.Fatal(err)
	}
	insert(t, s, rec("o2", "tx-open", "+14155550100", 2)) // one token revoked: still open
	at := base.Add(time.Second)
	if n, err := s.RevokeXID(ctx, "tx-c", at); err != nil || n != 1 {
		t.Fatalf("RevokeXID = %d, %v", n, err)
	}
	if got, err := s.ClosedAt(ctx, "tx-c"); err != nil || !got.Equal(at) {
		t.Fatalf("ClosedAt = %v, %v; want %v", got, err, at)
	}
	for _, r := range []*record.Record{rec("c2", "tx-c", "+14155550100", 3), rec("c3", "tx-c", "+14155550199", 4)} {
		err := s.Insert(ctx, r)
		otherPhone := r.Phone != "+14155550100" && errors.Is(err, record.ErrXIDConflict) // refused either way
		if !errors.Is(err, record.ErrXIDClosed) && !otherPhone {
			t.Errorf("insert %s into a closed transaction: %v, want ErrXIDClosed", r.JTI, err)
		}
		if _, err := s.ByJTI(ctx, r.JTI); !errors.Is(err, record.ErrNotFound) {
			if got, _ := s.ByJTI(ctx, r.JTI); got == nil || got.Revoked.IsZero() {
				t.Errorf("%s refused but stored unrevoked", r.JTI)
			}
		}
	}
	// Revoking again keeps the first closing; an unknown XID is not closed.
	if _, err := s.RevokeXID(ctx, "tx-c", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClosedAt(ctx, "tx-c"); !got.Equal(at) {
		t.Errorf("ClosedAt after a second revocation = %v, want %v", got, at)
	}
	if n, err := s.RevokeXID(ctx, "tx-none", at); err != nil || n != 0 {
		t.Fatalf("RevokeXID of an unknown XID = %d, %v", n, err)
	}
	if got, _ := s.ClosedAt(ctx, "tx-none"); !got.IsZero() {
		t.Errorf("an unknown XID was closed at %v", got)
	}
	// The closing goes with the transaction's last record (a store may
	// keep it up to a day longer).
	if _, err := s.Purge(ctx, base.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClosedAt(ctx, "tx-c"); err != nil || !got.IsZero() {
		t.Errorf("ClosedAt after the purge = %v, %v", got, err)
	}
}

// testClosingRace: records inserted while their transaction is revoked
// are either revoked by it or refused, never left active.
func testClosingRace(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("r0", "tx-race", "+14155550100", 0))
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Insert(ctx, rec("r"+string(rune('a'+i%26))+string(rune('a'+i/26)), "tx-race", "+14155550100", i+1))
		}()
	}
	if _, err := s.RevokeXID(ctx, "tx-race", base); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && !errors.Is(err, record.ErrXIDClosed) {
			t.Errorf("insert %d: %v", i, err)
		}
	}
	recs, err := s.ByXID(ctx, "tx-race")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Revoked.IsZero() {
			t.Errorf("%s is active in a revoked transaction", r.JTI)
		}
	}
	if err := s.Insert(ctx, rec("r-after", "tx-race", "+14155550100", 99)); !errors.Is(err, record.ErrXIDClosed) {
		t.Errorf("insert after the revocation: %v", err)
	}
}

// testKeyHistory: the history keeps the first entry of a fingerprint.
func testKeyHistory(t *testing.T, s Store) {
	ctx := context.Background()
	if got, err := s.KnownKeys(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty history: %v, %v", got, err)
	}
	first := []keys.KnownKey{
		{Fingerprint: "hmac:HS512:aaa", Kid: "cl1", Alg: "HS512", Profiles: "castlabs", Recorded: true, Lifetime: 90 * time.Second, Added: base},
		{Fingerprint: "jwk:bbb", Kid: "es1", Alg: "ES256", Profiles: "default", Added: base.Add(time.Second)},
	}
	if err := s.RememberKeys(ctx, first); err != nil {
		t.Fatal(err)
	}
	again := first[0]
	again.Kid, again.Added = "changed", base.Add(time.Hour)
	if err := s.RememberKeys(ctx, []keys.KnownKey{again, {Fingerprint: "jwk:ccc", Kid: "es2", Alg: "ES256", Added: base.Add(2 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.KnownKeys(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("KnownKeys = %+v, %v", got, err)
	}
	if got[0] != first[0] || got[1] != first[1] || got[2].Kid != "es2" {
		t.Errorf("KnownKeys = %+v, want the first entries kept as they were", got)
	}
}
