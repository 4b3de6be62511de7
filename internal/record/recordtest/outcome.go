package recordtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

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
