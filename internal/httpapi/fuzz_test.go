package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/jwtd/jwtd/internal/seedexample"
)

// FuzzSeedRoutes: any body, with any content type, at either seed route
// gets a JSON answer with a status below 500.
func FuzzSeedRoutes(f *testing.F) {
	h, _ := testServer(f)
	ex := seedexample.Load(f)
	f.Add("application/json", `{"user_data":"x"}`)
	f.Add("application/json", verifyBody(ex.Token, ex.Key))
	f.Add("application/json; charset=utf-8", `{"Token":"a.b.c","Signing_key":{"kty":"EC"}}`)
	f.Add("text/plain", `{}`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		for _, route := range []struct{ method, path string }{{"POST", "/generateToken"}, {"GET", "/verifyToken"}} {
			w := do(t, h, route.method, route.path, contentType, body)
			if w.Code >= 500 {
				t.Fatalf("%s %s: %d %s", route.method, route.path, w.Code, w.Body)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %s: body is not JSON: %q", route.method, route.path, w.Body)
			}
		}
	})
}

// FuzzNativeRoutes: any body at the native JSON and form routes (the
// outcome route on a transaction that exists), and any
// phone and XID in the seed 000 path, gets an answer below 500, in
// problem+json when it is an error.
func FuzzNativeRoutes(f *testing.F) {
	h, _ := testServer(f)
	if w := do(f, h, "GET", "/v1/token/+14155552671/tx-1", "", ""); w.Code != 200 {
		f.Fatalf("mint: %d %s", w.Code, w.Body)
	}
	f.Add(`{"profile":"default","sub":"a","data":{"x":1},"ttl":"30s"}`, "+14155552671", "tx-1")
	f.Add(`{"jti":"x"}`, "4155552671", "a:b")
	f.Add(`token=abc`, "%2B1%20(415)", "..")
	f.Add(`{"status":"verified","code":2401,"description":"d","updated_on":"2026-11-26T12:00:00Z","source":"s"}`, "+14155552671", "tx-1")
	f.Fuzz(func(t *testing.T, body, phone, xid string) {
		for _, route := range []struct{ path, key, ct string }{
			{"/v1/tokens", issuerKey, "application/json"},
			{"/v1/revoke", adminKey, "application/json"},
			{"/v1/introspect", introspectKey, "application/x-www-form-urlencoded"},
			{"/v1/transactions/tx-1/outcome", outcomeKey, "application/json"},
		} {
			w := doAuth(t, h, "POST", route.path, route.key, route.ct, body)
			if w.Code >= 500 || (w.Code >= 400 && w.Header().Get("Content-Type") != "application/problem+json") {
				t.Fatalf("POST %s %q: %d %s", route.path, body, w.Code, w.Body)
			}
		}
		u := &url.URL{Path: "/v1/token/" + phone + "/" + xid}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL = u
		r.RequestURI = u.EscapedPath()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code >= 500 {
			t.Fatalf("GET %s: %d %s", u.EscapedPath(), rec.Code, rec.Body)
		}
	})
}
