package recordtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

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
