package httpapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/record"
)

// GET /v1/audit lists the entries of the actions taken through the API,
// newest first, filtered, a page at a time; entries hold no token.
func TestAuditRoute(t *testing.T) {
	h, _ := testServer(t)
	var jtis []string
	for range 3 {
		w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","sub":"a","xid":"tx-audit"}`)
		if w.Code != 201 {
			t.Fatalf("mint: %d %s", w.Code, w.Body)
		}
		var m struct{ JTI, Token string }
		_ = json.Unmarshal(w.Body.Bytes(), &m)
		jtis = append(jtis, m.JTI)
	}
	if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-audit"}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	page := func(q string) (es []audit.Entry, next string) {
		t.Helper()
		w := doAuth(t, h, "GET", "/v1/audit?"+q, adminKey, "", "")
		if w.Code != 200 {
			t.Fatalf("GET /v1/audit?%s: %d %s", q, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "eyJ") {
			t.Errorf("an entry holds a token: %s", w.Body)
		}
		var p struct {
			Entries    []audit.Entry
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		return p.Entries, p.NextCursor
	}
	es, _ := page("action=token.revoke")
	if len(es) != 1 || es[0].Target != "xid:tx-audit" || es[0].Detail != "count=3" || es[0].Actor == "" {
		t.Errorf("revocation entries: %+v", es)
	}
	mintActor := ""
	var seen []string
	q := "action=token.mint&limit=2"
	for {
		es, next := page(q)
		for _, e := range es {
			seen = append(seen, e.Target)
			mintActor = e.Actor
		}
		if next == "" {
			break
		}
		q = "action=token.mint&limit=2&cursor=" + url.QueryEscape(next)
	}
	if len(seen) != 3 || seen[0] != "jti:"+jtis[2]+" xid:tx-audit" || seen[2] != "jti:"+jtis[0]+" xid:tx-audit" {
		t.Errorf("mint entries, newest first in pages of 2: %v (minted %v)", seen, jtis)
	}
	// A jti finds its mint's entry, whose target names the XID too.
	if es, _ := page("target=" + url.QueryEscape("jti:"+jtis[1])); len(es) != 1 || es[0].Target != "jti:"+jtis[1]+" xid:tx-audit" {
		t.Errorf("target=jti:%s: %+v", jtis[1], es)
	}
	if es, _ := page("actor=" + url.QueryEscape(mintActor) + "&action=token.revoke"); len(es) != 0 {
		t.Errorf("the issuer key's revocations: %+v", es)
	}
	for _, bad := range []string{"since=yesterday", "limit=0", "cursor=not-a-cursor"} {
		if w := doAuth(t, h, "GET", "/v1/audit?"+bad, adminKey, "", ""); w.Code != 400 {
			t.Errorf("GET /v1/audit?%s: %d, want 400", bad, w.Code)
		}
	}
	if w := doAuth(t, h, "GET", "/v1/audit", issuerKey, "", ""); w.Code != 403 {
		t.Errorf("without admin: %d", w.Code)
	}
}

// Seed 000's route with require_caller mints with an API key: one
// token.mint entry, the key's name its actor; a caller without a key is
// refused and counted. Without require_caller the route is anonymous and
// leaves no entry.
func TestAuditSeedRouteWithCaller(t *testing.T) {
	_, svc, store := testServerWithStore(t)
	d := testDeps(t, svc, store, nil, nil)
	d.Refusals = audit.NewRefusals()
	h := NewServer(d, Options{MaxBodyBytes: 1 << 20, Seed000RequireCaller: true})
	anon := NewServer(d, Options{MaxBodyBytes: 1 << 20})
	if w := do(t, anon, "GET", "/v1/token/+14155552671/tx-anon", "", ""); w.Code != 200 {
		t.Fatalf("anonymous seed token: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, "GET", "/v1/token/+14155552671/tx-seed", "", ""); w.Code != 401 {
		t.Fatalf("no key with require_caller: %d %s", w.Code, w.Body)
	}
	if w := doAuth(t, h, "GET", "/v1/token/+14155552671/tx-seed", issuerKey, "", ""); w.Code != 200 {
		t.Fatalf("seed token with a key: %d %s", w.Code, w.Body)
	}
	if err := d.Refusals.Flush(t.Context(), d.Audit, time.Now()); err != nil {
		t.Fatal(err)
	}
	es, err := store.AuditList(t.Context(), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var mints, refusals []audit.Entry
	for _, e := range es {
		switch e.Action {
		case audit.ActionMint:
			mints = append(mints, e)
		case audit.ActionAuthRefused:
			refusals = append(refusals, e)
		}
	}
	if len(mints) != 1 || mints[0].Actor != "issuer" || !strings.HasPrefix(mints[0].Target, "jti:") ||
		!strings.HasSuffix(mints[0].Target, " xid:tx-seed") || mints[0].RequestID == "" {
		t.Errorf("token.mint entries: %+v, want one by issuer for tx-seed", mints)
	}
	if len(refusals) != 1 || refusals[0].Actor != "none" {
		t.Errorf("auth.refused entries: %+v, want one for no key", refusals)
	}
}

// With audit.required and a trail that cannot write, a keyed mint on seed
// 000's route is refused before it is tried, as POST /v1/tokens' is:
// nothing inserted, nothing counted against a limit.
func TestAuditSeedRouteRequiredTrailFailing(t *testing.T) {
	_, svc, store := testServerWithStore(t)
	d := testDeps(t, svc, store, nil, nil) // a required trail
	inserts := &countingInserts{Store: d.Minter.Store}
	d.Minter.Store = inserts
	h := NewServer(d, Options{MaxBodyBytes: 1 << 20, Seed000RequireCaller: true})
	if w := doAuth(t, h, "GET", "/v1/token/+14155552671/tx-1", issuerKey, "", ""); w.Code != 200 {
		t.Fatalf("seed token with a key: %d %s", w.Code, w.Body)
	}
	db, err := sql.Open("sqlite", "file:"+store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	// A revocation whose entry is refused leaves the trail failing.
	if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-1"}`); w.Code != 503 {
		t.Fatalf("revoke while entries cannot be written: %d %s", w.Code, w.Body)
	}
	before := inserts.n.Load()
	if w := doAuth(t, h, "GET", "/v1/token/+14155552671/tx-2", issuerKey, "", ""); w.Code != 503 || !strings.Contains(w.Body.String(), "audit") {
		t.Errorf("keyed seed mint while the trail fails: %d %s, want 503", w.Code, w.Body)
	}
	if n := inserts.n.Load(); n != before {
		t.Errorf("the refused mint was tried: %d inserts", n-before)
	}
}

// countingInserts counts the records a Minter inserts.
type countingInserts struct {
	mint.Store
	n atomic.Int64
}

func (c *countingInserts) Insert(ctx context.Context, r *record.Record) error {
	c.n.Add(1)
	return c.Store.Insert(ctx, r)
}
