package httpapi

import (
	"encoding/json"
	"testing"
)

// FuzzSeedRoutes: any body, with any content type, at either seed route
// gets a JSON answer with a status below 500.
func FuzzSeedRoutes(f *testing.F) {
	h, _ := testServer(f)
	ex := readSeedExample(f)
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
