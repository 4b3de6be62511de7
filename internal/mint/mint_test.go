package mint_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/token"
)

// newMinter mints with an appverify, a castlabs and an unrecorded profile,
// recording into a real SQLite file, with a per-phone limit of 2 per hour.
func newMinter(t *testing.T) (*mint.Minter, *sqlite.Store) {
	t.Helper()
	av, _ := keys.New("av1", "HS256", []byte("appverify-secret-0123456789abcdef"))
	cl, _ := keys.New("cl1", "HS512", []byte("castlabs-secret-0123456789abcdef-castlabs-secret-0123456789abcdef"))
	set, err := keys.NewSet(av, cl)
	if err != nil {
		t.Fatal(err)
	}
	off := false
	svc, err := token.NewService(set, map[string]token.ProfileSpec{
		"appverify": {Key: "av1", Layout: token.LayoutAppVerify, TTL: 90 * time.Second},
		"castlabs":  {Key: "cl1", Layout: token.LayoutCastlabs, TTL: time.Hour},
		"quiet":     {Key: "av1", Layout: token.LayoutAppVerify, TTL: time.Minute, Record: &off},
	}, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	phones, err := phone.NewNormalizer("US", 0)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := ratelimit.NewMemoryStore(100, nil)
	lims, _ := ratelimit.ParseLimits("2 per hour")
	limiter, err := ratelimit.New(ls, []ratelimit.Rule{{Name: "per_phone", Limits: lims}}, "open", nil, ratelimit.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return &mint.Minter{
		Tokens: func() *token.Service { return svc }, Store: store, Phones: phones, Metrics: metrics.New(),
		Limiter: limiter, LimitBy: map[string][]string{"token": {"per_ip", "per_phone"}},
	}, store
}

func TestMintRecordsBeforeReturning(t *testing.T) {
	m, store := newMinter(t)
	ctx := context.Background()
	got, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "(415) 555-2671", XID: "tx-1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Phone != "+14155552671" || got.XID != "tx-1" {
		t.Errorf("minted %+v", got)
	}
	rec, err := store.ByJTI(ctx, got.JTI)
	if err != nil {
		t.Fatalf("no record for a token handed out: %v", err)
	}
	if rec.Phone != got.Phone || rec.XID != "tx-1" || rec.TokenSHA256 != token.HashToken(got.Token) || rec.ClientIP != "" {
		t.Errorf("record %+v", rec)
	}
	// No XID: appverify makes one. An unrecorded profile writes nothing.
	got, err = m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+14155550000"})
	if err != nil || len(got.XID) != 36 {
		t.Errorf("generated XID %q, %v", got.XID, err)
	}
	got, err = m.Mint(ctx, mint.Request{Profile: "quiet", Phone: "+14155550001", XID: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ByJTI(ctx, got.JTI); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("record: false wrote a record: %v", err)
	}
}

// Every refusal is its own error, and hands nothing out.
func TestMintRefusals(t *testing.T) {
	m, store := newMinter(t)
	ctx := context.Background()
	if _, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+14155552671", XID: "tx-a"}); err != nil {
		t.Fatal(err)
	}
	var limited *ratelimit.LimitedError
	for name, tc := range map[string]struct {
		req   mint.Request
		check func(error) bool
	}{
		"unknown profile": {mint.Request{Profile: "nope"}, func(err error) bool { return errors.Is(err, token.ErrUnknownProfile) }},
		"bad phone":       {mint.Request{Profile: "appverify", Phone: "hello"}, func(err error) bool { return errors.Is(err, phone.ErrInvalid) }},
		"bad xid":         {mint.Request{Profile: "appverify", Phone: "+14155552671", XID: "a b"}, func(err error) bool { return errors.Is(err, record.ErrInvalidXID) }},
		"ttl too long":    {mint.Request{Profile: "appverify", Phone: "+14155552671", TTL: 2 * time.Hour}, func(err error) bool { return errors.Is(err, token.ErrTTLTooLong) }},
		"castlabs ttl":    {mint.Request{Profile: "castlabs", TTL: time.Minute}, func(err error) bool { return errors.Is(err, token.ErrInvalidRequest) }},
		"too much data": {mint.Request{Profile: "castlabs", Data: []byte(`"` + strings.Repeat("x", 9000) + `"`)},
			func(err error) bool { return errors.Is(err, token.ErrInvalidRequest) }},
		"xid of another phone": {mint.Request{Profile: "appverify", Phone: "+14155550000", XID: "tx-a"},
			func(err error) bool { return errors.Is(err, record.ErrXIDConflict) }},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := m.Mint(ctx, tc.req)
			if got != nil || !tc.check(err) {
				t.Errorf("got %v, %v", got, err)
			}
		})
	}
	// The per-phone limit (2 per hour) counts the phone's E.164 form,
	// however it is written, and a refused request is not recorded.
	_, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "4155552671", XID: "tx-b", Limits: "token"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+1 415 555 2671", XID: "tx-c", Limits: "token"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+14155552671", XID: "tx-d", Limits: "token"})
	if got != nil || !errors.As(err, &limited) || limited.Decision.Rule != "per_phone" {
		t.Fatalf("third in an hour: %v, %v", got, err)
	}
	if recs, _ := store.ByXID(ctx, "tx-d"); len(recs) != 0 {
		t.Errorf("a refused request was recorded: %+v", recs)
	}
	// Without a group, no limit applies (the CLI).
	if _, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+14155552671", XID: "tx-e"}); err != nil {
		t.Errorf("no group: %v", err)
	}
}

// A store that cannot commit fails the mint: no token without its record.
func TestMintStoreDown(t *testing.T) {
	m, store := newMinter(t)
	store.Close()
	got, err := m.Mint(context.Background(), mint.Request{Profile: "castlabs", Data: []byte(`"x"`)})
	if got != nil || !errors.Is(err, record.ErrUnavailable) {
		t.Errorf("got %v, %v", got, err)
	}
}

// A revoked transaction takes no new token from any profile: a recording
// one is refused by the store's commit, an unrecorded one by Mint.
func TestMintRefusesClosedTransaction(t *testing.T) {
	m, store := newMinter(t)
	ctx := context.Background()
	if _, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+14155550123", XID: "closed-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RevokeXID(ctx, "closed-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, profile := range []string{"appverify", "quiet"} {
		if _, err := m.Mint(ctx, mint.Request{Profile: profile, Phone: "+14155550123", XID: "closed-1"}); !errors.Is(err, record.ErrXIDClosed) {
			t.Errorf("%s on the revoked transaction: %v, want ErrXIDClosed", profile, err)
		}
	}
}

// A request whose data is read after its limits (ReadData: seed 003's
// /generateToken) is counted whether its data reads or not, with the
// decision handed to ReadData; a caller the limits refuse has none read.
func TestMintReadsDataAfterLimits(t *testing.T) {
	m, store := newMinter(t)
	ctx := context.Background()
	ls, _ := ratelimit.NewMemoryStore(100, nil)
	lims, _ := ratelimit.ParseLimits("2 per hour")
	limiter, err := ratelimit.New(ls, []ratelimit.Rule{{Name: "per_ip", Limits: lims}}, "open", nil, ratelimit.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	m.Limiter, m.LimitBy = limiter, map[string][]string{"generate": {"per_ip"}}
	errBody := errors.New("a body that does not read")
	var remaining []int // of each decision ReadData was given
	req := func(data string, err error) mint.Request {
		return mint.Request{Profile: "castlabs", ClientIP: netip.MustParseAddr("203.0.113.7"), Limits: "generate",
			ReadData: func(d ratelimit.Decision) (json.RawMessage, error) {
				remaining = append(remaining, d.Remaining)
				return json.RawMessage(data), err
			}}
	}
	if got, err := m.Mint(ctx, req("", errBody)); got != nil || !errors.Is(err, errBody) {
		t.Fatalf("data that does not read: %v, %v", got, err)
	}
	got, err := m.Mint(ctx, req(`"x"`, nil))
	if err != nil || got.Limit.Remaining != 0 {
		t.Fatalf("second: %+v, %v", got, err)
	}
	if j, err := token.Decode(got.Token); err != nil || !strings.Contains(string(j.Payload), `"data":"x"`) {
		t.Errorf("the token does not carry the data read: %v", err)
	}
	if rec, err := store.ByJTI(ctx, got.JTI); err != nil || rec.ClientIP != "203.0.113.7" {
		t.Errorf("record %+v, %v", rec, err)
	}
	var limited *ratelimit.LimitedError
	if got, err := m.Mint(ctx, req(`"x"`, nil)); got != nil || !errors.As(err, &limited) {
		t.Errorf("third in an hour: %v, %v", got, err)
	}
	if !slices.Equal(remaining, []int{1, 0}) {
		t.Errorf("ReadData was given %v remaining; want [1 0], and not called for the refused request", remaining)
	}
}

// An audited mint's entry is written in its record's commit: it is in
// the store when Mint returns, though the trail lingers 100 ms before a
// write of its own, and the trail's head is that entry. An unrecorded
// profile's entry goes through the trail.
func TestMintAuditedWithItsRecord(t *testing.T) {
	m, store := newMinter(t)
	m.Audit = audit.NewTrail(store, audit.Options{Chain: "node-a"})
	defer m.Audit.Close()
	ctx := context.Background()
	who := &audit.Entry{Actor: "issuer", RequestID: "req-1", ClientIP: "192.0.2.7"}
	got, err := m.Mint(ctx, mint.Request{Profile: "appverify", Phone: "+14155552671", XID: "tx-1", Audit: who})
	if err != nil {
		t.Fatal(err)
	}
	es, err := store.AuditList(ctx, audit.Query{Chain: "node-a", Order: audit.BySeq})
	want := audit.Entry{Chain: "node-a", Seq: 1, Instance: "node-a", Actor: "issuer", Action: audit.ActionMint,
		Target: "jti:" + got.JTI + " xid:tx-1", Result: audit.ResultOK, RequestID: "req-1", ClientIP: "192.0.2.7", Detail: "profile=appverify"}
	if err != nil || len(es) != 1 {
		t.Fatalf("entries right after Mint: %+v %v", es, err)
	}
	e := es[0]
	want.Time, want.Hash = e.Time, e.Hash
	if e != want || e.Hash != e.ComputeHash() || m.Audit.Head() != e {
		t.Errorf("entry %+v\nwant  %+v\ntrail's head %+v", e, want, m.Audit.Head())
	}
	if _, err := m.Mint(ctx, mint.Request{Profile: "quiet", Phone: "+14155552671", Audit: who}); err != nil {
		t.Fatal(err)
	}
	m.Audit.Close() // writes what it holds
	if reps, err := audit.Verify(ctx, store); err != nil || len(reps) != 1 || reps[0].Entries != 2 {
		t.Errorf("after an unrecorded mint: %+v %v", reps, err)
	}
}

// When the store writes the record and refuses its entry, a required
// trail fails the mint (no token); one that is not hands the token out
// and writes the entry once the store takes entries again.
func TestMintEntryRefused(t *testing.T) {
	for _, required := range []bool{true, false} {
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			m, store := newMinter(t)
			m.Audit = audit.NewTrail(store, audit.Options{Chain: "node-a", Required: required, Linger: time.Millisecond})
			defer m.Audit.Close()
			db, err := sql.Open("sqlite", store.Path())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			got, err := m.Mint(ctx, mint.Request{Profile: "castlabs", Data: []byte(`"x"`), Audit: &audit.Entry{Actor: "issuer"}})
			if required {
				if got != nil || !errors.Is(err, audit.ErrNotWritten) {
					t.Errorf("required: %v, %v; want no token and ErrNotWritten", got, err)
				}
				return
			}
			if err != nil || got == nil {
				t.Fatalf("not required: %v, %v; want the token", got, err)
			}
			if _, err := db.Exec(`DROP TRIGGER refuse_audit`); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				es, err := store.AuditList(ctx, audit.Query{Target: "jti:" + got.JTI})
				if err == nil && len(es) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the entry of a token handed out was not written: %+v %v", es, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
