package httpapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/jwtd/jwtd/internal/audit"
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
