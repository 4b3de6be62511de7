package record

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// memStore holds the little of a Store that the use cases call, in memory;
// fail makes the named method fail with its error.
type memStore struct {
	recs     []Record
	outcomes map[string][]Outcome
	closed   map[string]time.Time
	fail     map[string]error
	calls    []string
}

func newMemStore(recs ...Record) *memStore {
	return &memStore{recs: recs, outcomes: map[string][]Outcome{}, closed: map[string]time.Time{}, fail: map[string]error{}}
}

func (m *memStore) call(name string) error {
	m.calls = append(m.calls, name)
	return m.fail[name]
}

func (m *memStore) revoke(name string, match func(*Record) bool, at time.Time) (int, error) {
	if err := m.call(name); err != nil {
		return 0, err
	}
	n := 0
	for i := range m.recs {
		if match(&m.recs[i]) && m.recs[i].Revoked.IsZero() {
			m.recs[i].Revoked = at
			n++
		}
	}
	return n, nil
}

func (m *memStore) RevokeJTI(_ context.Context, jti string, at time.Time) (int, error) {
	return m.revoke("RevokeJTI", func(r *Record) bool { return r.JTI == jti }, at)
}

func (m *memStore) RevokeXID(_ context.Context, xid string, at time.Time) (int, error) {
	n, err := m.revoke("RevokeXID", func(r *Record) bool { return r.XID == xid }, at)
	if err == nil && len(m.byXID(xid)) > 0 && m.closed[xid].IsZero() {
		m.closed[xid] = at
	}
	return n, err
}

func (m *memStore) ByJTI(_ context.Context, jti string) (*Record, error) {
	if err := m.call("ByJTI"); err != nil {
		return nil, err
	}
	for _, r := range m.recs {
		if r.JTI == jti {
			return &r, nil
		}
	}
	return nil, ErrNotFound
}

func (m *memStore) ByXID(_ context.Context, xid string) ([]Record, error) {
	if err := m.call("ByXID"); err != nil {
		return nil, err
	}
	return m.byXID(xid), nil
}

func (m *memStore) byXID(xid string) []Record {
	var out []Record
	for _, r := range m.recs {
		if r.XID == xid {
			out = append(out, r)
		}
	}
	return out
}

func (m *memStore) Outcomes(_ context.Context, xid string) ([]Outcome, error) {
	return m.outcomes[xid], m.call("Outcomes")
}

func (m *memStore) ClosedAt(_ context.Context, xid string) (time.Time, error) {
	return m.closed[xid], m.call("ClosedAt")
}

func (m *memStore) AddOutcome(_ context.Context, o *Outcome) error {
	if err := m.call("AddOutcome"); err != nil {
		return err
	}
	if len(m.byXID(o.XID)) == 0 {
		return fmt.Errorf("%w: xid %s", ErrNotFound, o.XID)
	}
	m.outcomes[o.XID] = append(m.outcomes[o.XID], *o)
	return nil
}

var (
	_ Revoker           = (*memStore)(nil)
	_ TransactionReader = (*memStore)(nil)
	_ OutcomeAdder      = (*memStore)(nil)
)

var (
	t0      = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	errDown = fmt.Errorf("%w: connection refused", ErrUnavailable)
)

func twoTokens() *memStore {
	return newMemStore(
		Record{JTI: "j1", XID: "tx-1", Issued: t0, Expires: t0.Add(time.Minute)},
		Record{JTI: "j2", XID: "tx-1", Issued: t0.Add(time.Second), Expires: t0.Add(time.Minute)},
	)
}

// Revoke says what it revoked, and tells a target no record has from one
// revoked already; a target that cannot be one is refused before the store
// is asked, and a store that fails on either call is the error.
func TestRevoke(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		target  Target
		fail    string // a method of the store that fails
		want    int
		wantErr error
		calls   string
	}{
		{name: "a jti", target: Target{JTI: "j1"}, want: 1, calls: "RevokeJTI"},
		{name: "a transaction", target: Target{XID: "tx-1"}, want: 2, calls: "RevokeXID"},
		{name: "neither", target: Target{}, wantErr: ErrTarget},
		{name: "both", target: Target{JTI: "j1", XID: "tx-1"}, wantErr: ErrTarget},
		{name: "a jti too long", target: Target{JTI: strings.Repeat("j", 129)}, wantErr: ErrInvalidJTI},
		{name: "an invalid XID", target: Target{XID: "tx 1"}, wantErr: ErrInvalidXID},
		{name: "an unknown jti", target: Target{JTI: "nope"}, wantErr: ErrUnknownJTI, calls: "RevokeJTI ByJTI"},
		{name: "an unknown XID", target: Target{XID: "tx-none"}, wantErr: ErrUnknownXID, calls: "RevokeXID ByXID"},
		{name: "store down", target: Target{JTI: "j1"}, fail: "RevokeJTI", wantErr: ErrUnavailable, calls: "RevokeJTI"},
		{name: "store down after an unknown jti", target: Target{JTI: "nope"}, fail: "ByJTI", wantErr: ErrUnavailable, calls: "RevokeJTI ByJTI"},
		{name: "store down after an unknown XID", target: Target{XID: "tx-none"}, fail: "ByXID", wantErr: ErrUnavailable, calls: "RevokeXID ByXID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := twoTokens()
			if tc.fail != "" {
				s.fail[tc.fail] = errDown
			}
			n, err := Revoke(ctx, s, tc.target, t0)
			if n != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Revoke = %d, %v; want %d, %v", n, err, tc.want, tc.wantErr)
			}
			if got := strings.Join(s.calls, " "); got != tc.calls {
				t.Errorf("store calls %q, want %q", got, tc.calls)
			}
		})
	}
	// The unknown are not found, as a Store's lookups say it.
	for _, err := range []error{ErrUnknownJTI, ErrUnknownXID} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%v is not ErrNotFound", err)
		}
	}
}

// A second revocation revokes nothing and is no error: the tokens were
// revoked already. Revoking a transaction closes it.
func TestRevokeAgain(t *testing.T) {
	ctx := context.Background()
	s := twoTokens()
	if n, err := Revoke(ctx, s, Target{JTI: "j1"}, t0); n != 1 || err != nil {
		t.Fatalf("first: %d, %v", n, err)
	}
	if n, err := Revoke(ctx, s, Target{JTI: "j1"}, t0.Add(time.Second)); n != 0 || err != nil {
		t.Errorf("a jti revoked already: %d, %v; want 0, nil", n, err)
	}
	if n, err := Revoke(ctx, s, Target{XID: "tx-1"}, t0.Add(time.Second)); n != 1 || err != nil {
		t.Errorf("the transaction of a revoked jti: %d, %v; want the other token", n, err)
	}
	if n, err := Revoke(ctx, s, Target{XID: "tx-1"}, t0.Add(2*time.Second)); n != 0 || err != nil {
		t.Errorf("a transaction revoked already: %d, %v; want 0, nil", n, err)
	}
	tr, err := ReadTransaction(ctx, s, "tx-1")
	if err != nil || !tr.Closed.Equal(t0.Add(time.Second)) {
		t.Errorf("the revoked transaction: %+v, %v; want it closed at its first revocation", tr, err)
	}
}

// ReadTransaction refuses an XID that cannot be one before the store is
// asked, answers ErrUnknownXID for one without records, and fails with the
// store on any of its reads.
func TestReadTransaction(t *testing.T) {
	ctx := context.Background()
	s := twoTokens()
	s.outcomes["tx-1"] = []Outcome{{XID: "tx-1", Status: Verified}}
	tr, err := ReadTransaction(ctx, s, "tx-1")
	if err != nil || len(tr.Records) != 2 || len(tr.Outcomes) != 1 || !tr.Closed.IsZero() {
		t.Fatalf("%+v, %v", tr, err)
	}
	for _, tc := range []struct {
		name, xid, fail string
		want            error
	}{
		{"an invalid XID", "tx 1", "", ErrInvalidXID},
		{"an unknown XID", "tx-none", "", ErrUnknownXID},
		{"records unreadable", "tx-1", "ByXID", ErrUnavailable},
		{"outcomes unreadable", "tx-1", "Outcomes", ErrUnavailable},
		{"closing unreadable", "tx-1", "ClosedAt", ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := twoTokens()
			if tc.fail != "" {
				s.fail[tc.fail] = errDown
			}
			if tr, err := ReadTransaction(ctx, s, tc.xid); tr != nil || !errors.Is(err, tc.want) {
				t.Errorf("%+v, %v; want %v", tr, err, tc.want)
			}
		})
	}
}

// ReportOutcome checks the outcome before the store is asked, and appends
// it only to a transaction jwtd recorded a token for, revoked or not.
func TestReportOutcome(t *testing.T) {
	ctx := context.Background()
	s := twoTokens()
	if _, err := Revoke(ctx, s, Target{XID: "tx-1"}, t0); err != nil {
		t.Fatal(err)
	}
	o := Outcome{XID: "tx-1", Code: 2401}
	if err := ReportOutcome(ctx, s, &o, t0, time.Second); err != nil || o.Status != Verified || !o.Recorded.Equal(t0) {
		t.Fatalf("%+v, %v", o, err)
	}
	if len(s.outcomes["tx-1"]) != 1 {
		t.Errorf("outcomes kept: %+v", s.outcomes)
	}
	for _, tc := range []struct {
		name string
		o    Outcome
		fail error // AddOutcome's
		want error
	}{
		{"an invalid XID", Outcome{XID: "tx 1", Code: 2401}, nil, ErrInvalidXID},
		{"an unknown code", Outcome{XID: "tx-1", Code: 7}, nil, ErrInvalidOutcome},
		{"from the future", Outcome{XID: "tx-1", Status: Verified, UpdatedOn: t0.Add(time.Hour)}, nil, ErrInvalidOutcome},
		{"an unknown XID", Outcome{XID: "tx-none", Code: 2401}, nil, ErrUnknownXID},
		{"too many", Outcome{XID: "tx-1", Code: 2401}, ErrTooManyOutcomes, ErrTooManyOutcomes},
		{"store down", Outcome{XID: "tx-1", Code: 2401}, errDown, ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := twoTokens()
			s.fail["AddOutcome"] = tc.fail
			o := tc.o
			if err := ReportOutcome(ctx, s, &o, t0, time.Second); !errors.Is(err, tc.want) {
				t.Errorf("%v; want %v", err, tc.want)
			}
			if len(s.outcomes) != 0 {
				t.Errorf("a refused outcome was kept: %+v", s.outcomes)
			}
			if errors.Is(tc.want, ErrInvalidXID) || errors.Is(tc.want, ErrInvalidOutcome) {
				if len(s.calls) != 0 {
					t.Errorf("the store was asked: %v", s.calls)
				}
			}
		})
	}
}
