package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/seedexample"
	"github.com/jwtd/jwtd/internal/token"
)

func doAuth(t testing.TB, h http.Handler, method, path, key, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if key != "" {
		r.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func decode(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%d: body is not a JSON object: %q", w.Code, w.Body)
	}
	return m
}

func claimsOf(t testing.TB, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func records(t testing.TB, h http.Handler, xid string) []any {
	t.Helper()
	w := doAuth(t, h, "GET", "/v1/tokens/"+xid, adminKey, "", "")
	if w.Code == 404 {
		return nil
	}
	if w.Code != 200 {
		t.Fatalf("get status: %d %s", w.Code, w.Body)
	}
	return decode(t, w)["records"].([]any)
}

func TestPhoneToken(t *testing.T) {
	h, _ := testServer(t)
	var jtis []string
	for _, p := range []string{url.PathEscape("+1 (415) 555-2671"), "+14155552671", "4155552671"} {
		w := do(t, h, "GET", "/v1/token/"+p+"/tx-1", "", "")
		if w.Code != 200 || w.Header().Get("Allow") != "GET" || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Fatalf("%s: %d %v %s", p, w.Code, w.Header(), w.Body)
		}
		claims := claimsOf(t, w.Body.String())
		re := regexp.MustCompile(`^\{"iss":"cust","iat":(\d+),"exp":(\d+),"phn":"\+14155552671","xid":"tx-1","jti":"([0-9a-f]{32})"\}$`)
		m := re.FindStringSubmatch(claims)
		if m == nil {
			t.Fatalf("%s: claims %s", p, claims)
		}
		var iat, exp int64
		fmt.Sscan(m[1], &iat)
		fmt.Sscan(m[2], &exp)
		if exp-iat != 90 || time.Since(time.Unix(iat, 0)) < 9*time.Second || time.Since(time.Unix(iat, 0)) > 12*time.Second {
			t.Errorf("iat %d exp %d: want iat = now-10, exp = iat+90", iat, exp)
		}
		jtis = append(jtis, m[3])
	}
	recs := records(t, h, "tx-1")
	if len(recs) != 3 {
		t.Fatalf("%d records for tx-1, want 3 (re-issue makes a new record)", len(recs))
	}
	for i, r := range recs {
		rec := r.(map[string]any)
		if rec["phone"] != "+14155552671" || rec["status"] != "active" || rec["jti"] != jtis[2-i] {
			t.Errorf("record %d: %v (want newest first)", i, rec)
		}
	}

	// No XID: a UUID v4 is made.
	w := do(t, h, "GET", "/v1/token/+14155552671", "", "")
	xid := regexp.MustCompile(`"xid":"([^"]+)"`).FindStringSubmatch(claimsOf(t, w.Body.String()))
	if w.Code != 200 || xid == nil || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(xid[1]) {
		t.Errorf("no xid: %d %s", w.Code, w.Body)
	}

	// The same XID with another phone: 409, nothing minted.
	w = do(t, h, "GET", "/v1/token/+14155550000/tx-1", "", "")
	if w.Code != 409 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("xid conflict: %d %s", w.Code, w.Body)
	}
	if n := len(records(t, h, "tx-1")); n != 3 {
		t.Errorf("after the conflict tx-1 has %d records", n)
	}

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/v1/token/12345", 400},
		{"GET", "/v1/token/hello/tx", 400},
		{"GET", "/v1/token/+1415555267", 400},
		{"GET", "/v1/token/+14155552671/" + strings.Repeat("x", 129), 400},
		{"GET", "/v1/token/+14155552671/bad%20xid", 400},
		{"GET", "/v1/token/+14155552671/bad$xid", 400},
		{"POST", "/v1/token/+14155552671", 405},
		{"DELETE", "/v1/token/+14155552671/tx", 405},
		{"HEAD", "/v1/token/+14155552671/tx", 405},
	} {
		w := do(t, h, tc.method, tc.path, "", "")
		if w.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, w.Code, w.Body, tc.code)
		}
		if tc.code == 405 && w.Header().Get("Allow") != "GET" {
			t.Errorf("%s %s: Allow %q", tc.method, tc.path, w.Header().Get("Allow"))
		}
		if tc.method != "HEAD" && w.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s %s: content type %q", tc.method, tc.path, w.Header().Get("Content-Type"))
		}
	}
}

func TestAdminRoutesRefuseKeys(t *testing.T) {
	h, _ := testServer(t)
	for _, route := range []struct{ method, path, ct, body, scope string }{
		{"GET", "/v1/tokens/tx", "", "", "admin"},
		{"GET", "/v1/tokens?phone=%2B14155552671", "", "", "admin"},
		{"POST", "/v1/revoke", "application/json", `{"jti":"x"}`, "admin"},
		{"POST", "/v1/tokens", "application/json", `{}`, "issue"},
		{"POST", "/v1/introspect", "application/x-www-form-urlencoded", "token=x", "introspect"},
	} {
		for _, tc := range []struct {
			key  string
			code int
		}{{"", 401}, {"wrong", 401}, {map[string]string{"admin": issuerKey, "issue": introspectKey, "introspect": adminKey}[route.scope], 403}} {
			w := doAuth(t, h, route.method, route.path, tc.key, route.ct, route.body)
			if w.Code != tc.code {
				t.Errorf("%s %s with %q: %d, want %d", route.method, route.path, tc.key, w.Code, tc.code)
			}
			if tc.code == 401 && w.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", route.method, route.path)
			}
		}
	}
}

func TestIssueRoute(t *testing.T) {
	h, _ := testServer(t)
	w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json",
		`{"sub":"alice","aud":"api","data":{"role":"ops"},"ttl":"30s","phone":"(415) 555-2671","xid":"order-7"}`)
	if w.Code != 201 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	resp := decode(t, w)
	tok, _ := resp["token"].(string)
	if resp["jti"] == "" || resp["xid"] != "order-7" || !strings.Contains(claimsOf(t, tok), `"data":{"role":"ops"}`) {
		t.Errorf("response %v", resp)
	}
	exp, _ := time.Parse(time.RFC3339, resp["expires_at"].(string))
	if d := time.Until(exp); d > 31*time.Second || d < 25*time.Second {
		t.Errorf("expires_at %s is not 30s away", exp)
	}
	recs := records(t, h, "order-7")
	if len(recs) != 1 || recs[0].(map[string]any)["phone"] != "+14155552671" || recs[0].(map[string]any)["profile"] != "default" {
		t.Errorf("record %v", recs)
	}
	// appverify through the native route gets a generated XID.
	w = doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"appverify","phone":"+14155552671"}`)
	if w.Code != 201 || decode(t, w)["xid"] == nil {
		t.Errorf("appverify: %d %s", w.Code, w.Body)
	}
	for _, tc := range []struct {
		ct, body string
		code     int
	}{
		{"application/json", `{"ttl":"2m"}`, 400},
		{"application/json", `{"ttl":-1}`, 400},
		{"application/json", `{"ttl":"soon"}`, 400},
		{"application/json", `{"profile":"nope"}`, 400},
		{"application/json", `{"phone":"12"}`, 400},
		{"application/json", `{"xid":"bad xid"}`, 400},
		{"application/json", `{"sub":5}`, 400},
		{"application/json", `{"surprise":true}`, 400},
		{"application/json", `{"sub":"a","sub":"b"}`, 400},
		{"application/json", `{`, 400},
		{"text/plain", `{}`, 415},
		{"application/json", `{"data":"` + strings.Repeat("x", 2<<20) + `"}`, 413},
		{"application/json", `{"ttl":30}`, 201},
	} {
		w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, tc.ct, tc.body)
		if w.Code != tc.code {
			t.Errorf("%.60s: %d %s, want %d", tc.body, w.Code, w.Body, tc.code)
		}
	}
}

func TestListByPhone(t *testing.T) {
	h, _ := testServer(t)
	var want []string
	for i := range 7 {
		w := do(t, h, "GET", fmt.Sprintf("/v1/token/+14155552671/tx-%d", i), "", "")
		if w.Code != 200 {
			t.Fatal(w.Body)
		}
		want = append([]string{regexp.MustCompile(`"jti":"([0-9a-f]+)"`).FindStringSubmatch(claimsOf(t, w.Body.String()))[1]}, want...)
	}
	do(t, h, "GET", "/v1/token/+14155550000/other", "", "")
	var got []string
	cursor := ""
	for pages := 0; pages < 5; pages++ {
		w := doAuth(t, h, "GET", "/v1/tokens?phone=4155552671&limit=3&cursor="+cursor, adminKey, "", "")
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		resp := decode(t, w)
		for _, r := range resp["records"].([]any) {
			got = append(got, r.(map[string]any)["jti"].(string))
		}
		next, _ := resp["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = url.QueryEscape(next)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("listing\n got %v\nwant %v", got, want)
	}
	for _, q := range []string{"phone=12", "", "phone=%2B14155552671&limit=0", "phone=%2B14155552671&limit=501", "phone=%2B14155552671&limit=x", "phone=%2B14155552671&cursor=%21%21"} {
		if w := doAuth(t, h, "GET", "/v1/tokens?"+q, adminKey, "", ""); w.Code != 400 {
			t.Errorf("?%s: %d", q, w.Code)
		}
	}
	// An unencoded + arrives as a space; even where the default region
	// would read the rest, the answer says to write %2B.
	w := doAuth(t, h, "GET", "/v1/tokens?phone=+14155552671", adminKey, "", "")
	if w.Code != 400 || !strings.Contains(w.Body.String(), "write the + as %2B, as in ?phone=%2B14155552671") {
		t.Errorf("?phone=+14155552671: %d %s", w.Code, w.Body)
	}
}

func TestRevokeAndIntrospect(t *testing.T) {
	h, svc, _ := testServerWithStore(t)
	mint := func(xid string) string {
		w := do(t, h, "GET", "/v1/token/+14155552671/"+xid, "", "")
		if w.Code != 200 {
			t.Fatal(w.Body)
		}
		return w.Body.String()
	}
	introspect := func(tok string) map[string]any {
		w := doAuth(t, h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode())
		if w.Code != 200 {
			t.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
		return decode(t, w)
	}
	a1, a2, b1 := mint("a"), mint("a"), mint("b")
	if got := introspect(a1); got["active"] != true || got["phn"] != "+14155552671" || got["xid"] != "a" || got["iss"] != "cust" {
		t.Errorf("active: %v", got)
	}
	jti := regexp.MustCompile(`"jti":"([0-9a-f]+)"`).FindStringSubmatch(claimsOf(t, a1))[1]
	w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"`+jti+`"}`)
	if w.Code != 200 || decode(t, w)["revoked"] != float64(1) {
		t.Errorf("revoke jti: %d %s", w.Code, w.Body)
	}
	if got := introspect(a1); got["active"] != false || got["reason"] != "revoked" {
		t.Errorf("revoked: %v", got)
	}
	if got := introspect(a2); got["active"] != true {
		t.Errorf("the other token of the xid: %v", got)
	}
	w = doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"a"}`)
	if w.Code != 200 || decode(t, w)["revoked"] != float64(1) {
		t.Errorf("revoke xid: %d %s", w.Code, w.Body)
	}
	if got := introspect(a2); got["reason"] != "revoked" {
		t.Errorf("revoked by xid: %v", got)
	}
	recs := records(t, h, "a")
	for _, r := range recs {
		if r.(map[string]any)["status"] != "revoked" || r.(map[string]any)["revoked_at"] == nil {
			t.Errorf("record after revocation: %v", r)
		}
	}
	if got := introspect(b1); got["active"] != true {
		t.Errorf("another transaction: %v", got)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"jti":"unknown"}`, 404}, {`{"xid":"unknown"}`, 404}, {`{}`, 400}, {`{"jti":"x","xid":"y"}`, 400},
		{`{"xid":"bad xid"}`, 400}, {`{"xid":"a"}`, 200},
	} {
		if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", tc.body); w.Code != tc.code {
			t.Errorf("revoke %s: %d %s, want %d", tc.body, w.Code, w.Body, tc.code)
		}
	}

	// Each reason.
	past, _ := token.NewService(svc.Keys(), map[string]token.ProfileSpec{"appverify": {Key: "av1", Layout: token.LayoutAppVerify, TTL: time.Minute}},
		token.Options{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	future, _ := token.NewService(svc.Keys(), map[string]token.ProfileSpec{"appverify": {Key: "av1", Layout: token.LayoutAppVerify, TTL: time.Hour}},
		token.Options{Now: func() time.Time { return time.Now().Add(time.Hour) }})
	expired, _ := past.Issue("appverify", token.Request{Phone: "+1", XID: "p"})
	early, _ := future.Issue("appverify", token.Request{Phone: "+1", XID: "f"})
	es, _ := svc.Issue("default", token.Request{Subject: "s"})
	parts := strings.Split(es.Token, ".")
	unknownKid := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","kid":"nope","typ":"JWT"}`)) + "." + parts[1] + "." + parts[2]
	for tok, reason := range map[string]string{
		"garbage":                  "malformed",
		b1[:len(b1)-4] + "AAAA":    "bad_signature",
		unknownKid:                 "unknown_kid",
		expired.Token:              "expired",
		early.Token:                "not_yet_valid",
		strings.Repeat("A", 9<<10): "malformed",
		parts[0] + "." + parts[1]:  "malformed",
	} {
		if got := introspect(tok); got["active"] != false || got["reason"] != reason || len(got) != 2 {
			t.Errorf("%.40s: %v, want reason %s and nothing else", tok, got, reason)
		}
	}
	for _, tc := range []struct {
		ct, body string
		code     int
	}{
		{"application/json", `{"token":"x"}`, 415},
		{"application/x-www-form-urlencoded", "", 400},
		{"application/x-www-form-urlencoded", "token=%zz", 400},
	} {
		if w := doAuth(t, h, "POST", "/v1/introspect", introspectKey, tc.ct, tc.body); w.Code != tc.code {
			t.Errorf("introspect %q: %d, want %d", tc.body, w.Code, tc.code)
		}
	}
}

// /generateToken's tokens are recorded too.
func TestGenerateTokenIsRecorded(t *testing.T) {
	h, _, store := testServerWithStore(t)
	w := do(t, h, "POST", "/generateToken", "application/json", `{"user_data":"x"}`)
	var resp map[string]string
	_ = json.Unmarshal(w.Body.Bytes(), &resp)
	jti := regexp.MustCompile(`"jti":"([0-9a-f]+)"`).FindStringSubmatch(claimsOf(t, resp["JWT Token"]))[1]
	rec, err := store.ByJTI(context.Background(), jti)
	if err != nil || rec.Profile != "castlabs" || rec.Alg != "HS512" {
		t.Errorf("record %+v %v", rec, err)
	}
}

// With the store gone: /readyz says so, minting answers 503 and hands
// out no token.
func TestStoreUnavailable(t *testing.T) {
	h, _, store := testServerWithStore(t)
	if w := do(t, h, "GET", "/readyz", "", ""); w.Code != 200 {
		t.Errorf("readyz: %d", w.Code)
	}
	store.Close()
	if w := do(t, h, "GET", "/readyz", "", ""); w.Code != 503 {
		t.Errorf("readyz with the store closed: %d", w.Code)
	}
	w := do(t, h, "GET", "/v1/token/+14155552671/tx", "", "")
	if w.Code != 503 || strings.Contains(w.Body.String(), "eyJ") || w.Header().Get("Retry-After") == "" {
		t.Errorf("phone token: %d %s", w.Code, w.Body)
	}
	w = do(t, h, "POST", "/generateToken", "application/json", `{"user_data":"x"}`)
	if w.Code != 503 || strings.Contains(w.Body.String(), "eyJ") {
		t.Errorf("generateToken: %d %s", w.Code, w.Body)
	}
}

// A profile with record: false hands its tokens out without a record, and
// a profile with store_token: true keeps the whole token.
func TestRecordSwitches(t *testing.T) {
	_, svc, store := testServerWithStore(t)
	off, keep := false, true
	svc2, err := token.NewService(svc.Keys(), map[string]token.ProfileSpec{
		"unrecorded": {Key: "es1", TTL: time.Minute, Record: &off},
		"kept":       {Key: "es1", TTL: time.Minute, Record: &keep, StoreToken: true},
	}, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := NewServer(testDeps(t, svc2, store, nil, nil), Options{})
	for profile, want := range map[string]string{"unrecorded": "none", "kept": "whole"} {
		w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"`+profile+`"}`)
		if w.Code != 201 {
			t.Fatalf("%s: %d %s", profile, w.Code, w.Body)
		}
		resp := decode(t, w)
		rec, err := store.ByJTI(context.Background(), resp["jti"].(string))
		switch want {
		case "none":
			if err == nil {
				t.Errorf("%s: recorded %+v", profile, rec)
			}
		case "whole":
			if err != nil || rec.TokenText != resp["token"] {
				t.Errorf("%s: %+v %v", profile, rec, err)
			}
		}
	}
}

// One answer to "is this token good": a revoked castlabs token no longer
// verifies at /verifyToken, and a token of a recording profile whose
// record is gone is not active at /v1/introspect.
func TestRevokedAndUnrecordedTokens(t *testing.T) {
	h, _, store := testServerWithStore(t)
	ex := seedexample.Load(t)
	tok := generateToken(t, h)
	verify := func() string {
		return do(t, h, "POST", "/verifyToken", "application/json", verifyBody(tok, ex.Key)).Body.String()
	}
	if got := verify(); !strings.Contains(got, `"Signature Verification":true`) {
		t.Fatalf("before revoking: %s", got)
	}
	jti := regexp.MustCompile(`"jti":"([0-9a-f]{32})"`).FindStringSubmatch(claimsOf(t, tok))[1]
	if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"`+jti+`"}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if got := verify(); !strings.Contains(got, `"Signature Verification":false,"Error":"revoked`) {
		t.Errorf("after revoking: %s", got)
	}

	w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"sub":"a"}`)
	issued := decode(t, w)["token"].(string)
	introspect := func() map[string]any {
		return decode(t, doAuth(t, h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", "token="+issued))
	}
	if got := introspect(); got["active"] != true {
		t.Fatalf("recorded: %v", got)
	}
	if _, err := store.Purge(context.Background(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := introspect(); got["active"] != false || got["reason"] != "unrecorded" {
		t.Errorf("record purged: %v", got)
	}
}

// The appverify layout puts a phone in every token: without one, nothing is
// minted, on the native route as on seed 000's.
func TestAppVerifyNeedsPhone(t *testing.T) {
	h, _ := testServer(t)
	w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"appverify","xid":"tx-np"}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "phone") || strings.Contains(w.Body.String(), "eyJ") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	if recs := records(t, h, "tx-np"); len(recs) != 0 {
		t.Errorf("recorded: %v", recs)
	}
}

// Revocation is only ever asked of jwtd's own tokens: the same jti in a
// token signed with someone else's key verifies (no oracle of what was
// revoked), and a castlabs token takes no ttl (it has no exp to carry one).
func TestRevocationOnlyOfOwnTokens(t *testing.T) {
	h, _ := testServer(t)
	tok := generateToken(t, h)
	claims := claimsOf(t, tok)
	jti := regexp.MustCompile(`"jti":"([0-9a-f]{32})"`).FindStringSubmatch(claims)[1]
	if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"`+jti+`"}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	foreign := strings.Repeat("f", 64)
	input := strings.Join(strings.Split(tok, ".")[:2], ".")
	mac := hmac.New(sha512.New, []byte(foreign))
	mac.Write([]byte(input))
	forged := input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	got := do(t, h, "POST", "/verifyToken", "application/json", verifyBody(forged, foreign)).Body.String()
	if !strings.Contains(got, `"Signature Verification":true`) {
		t.Errorf("a token under another key with a revoked jti of jwtd's: %s", got)
	}
	w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"castlabs","data":"x","ttl":"1m"}`)
	if w.Code != 400 || !strings.Contains(w.Body.String(), "no exp") {
		t.Errorf("castlabs with a ttl: %d %s", w.Code, w.Body)
	}
}

// A key shared by a recording profile and one with record: false: tokens
// of the second are active without a record.
func TestSharedKeyRecordFalse(t *testing.T) {
	_, svc, store := testServerWithStore(t)
	off := false
	svc2, err := token.NewService(svc.Keys(), map[string]token.ProfileSpec{
		"default": {Key: "es1", TTL: time.Minute},
		"partner": {Key: "es1", TTL: time.Minute, Record: &off},
	}, token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := NewServer(testDeps(t, svc2, store, nil, nil), Options{})
	w := doAuth(t, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"partner"}`)
	tok := decode(t, w)["token"].(string)
	got := decode(t, doAuth(t, h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", "token="+tok))
	if got["active"] != true {
		t.Errorf("partner token: %v", got)
	}
}
