package httpapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/token"
	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// Every attack class, over HTTP: /v1/introspect rejects each with the
// reason Service.Verify gives; /verifyToken, with the key a caller aiming at
// it would send, never says true for one; neither answers 5xx, and nothing
// a token names is fetched.
func TestAttackCorpusOverHTTP(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	mk := func(kid, alg string, m any) *keys.Key {
		k, err := keys.New(kid, alg, m)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	es1, rs1 := mk("es1", "ES256", ec), mk("rs1", "RS256", rk)
	now := time.Now() // the verifier's clock, fixed: the leeway cases sit a second from the edge
	set, _ := keys.NewSet(mk("av1", "HS256", []byte("appverify-secret-0123456789abcdef")), es1, rs1)
	// The corpus is about the verifier's rules: its tokens are made, not
	// minted, so these profiles do not record (a recording profile's token
	// without a record is inactive).
	off := false
	svc, err := token.NewService(set, map[string]token.ProfileSpec{
		"appverify": {Key: "av1", Layout: token.LayoutAppVerify, TTL: 90 * time.Second, Record: &off},
		"default":   {Key: "es1", TTL: time.Minute, Record: &off},
		"rs":        {Key: "rs1", TTL: time.Minute, Record: &off},
	}, token.Options{Leeway: 30 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	h := NewServer(testDeps(t, svc, store, nil, nil), Options{})

	var fetched atomic.Int32
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fetched.Add(1) }))
	defer listener.Close()

	for _, tc := range attacktest.Corpus(t, attacktest.Setup{ES: es1, RS: rs1, Now: now, Listener: listener.URL}) {
		t.Run(tc.Class+"/"+tc.Name, func(t *testing.T) {
			w := doAuth(t, h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", url.Values{"token": {tc.Token}}.Encode())
			if w.Code == 413 && len(tc.Token) > token.MaxTokenBytes {
				// Over the body limit of the routes that take a token
				// before it is a token: refused unread, on both routes.
				body, _ := json.Marshal(map[string]string{"Token": tc.Token, "Signing_key": "k"})
				if w := do(t, h, "POST", "/verifyToken", "application/json", string(body)); w.Code != 413 {
					t.Errorf("verifyToken: %d", w.Code)
				}
				return
			}
			var got struct {
				Active bool   `json:"active"`
				Reason string `json:"reason"`
			}
			if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &got) != nil {
				t.Fatalf("introspect: %d %s", w.Code, w.Body)
			}
			if got.Active != (tc.Reason == "") || got.Reason != tc.Reason {
				t.Errorf("introspect: %s, want reason %q", w.Body, tc.Reason)
			}

			body, _ := json.Marshal(map[string]string{"Token": tc.Token, "Signing_key": string(tc.CallerKey)})
			w = do(t, h, "POST", "/verifyToken", "application/json", string(body))
			if w.Code >= 500 {
				t.Fatalf("verifyToken: %d %s", w.Code, w.Body)
			}
			var vr struct {
				Verified *bool  `json:"Signature Verification"`
				Error    string `json:"Error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &vr)
			reason := tc.Reason
			if tc.Class == "14 exp" && tc.Name == "missing" {
				reason = "" // by design: seed 003 tokens have no exp, so /verifyToken does not require one
			}
			switch {
			case reason == "" && (w.Code != 200 || vr.Verified == nil || !*vr.Verified):
				t.Errorf("verifyToken refused a good token: %d %s", w.Code, w.Body)
			case reason != "" && w.Code == 200 && (vr.Verified == nil || *vr.Verified || vr.Error == ""):
				t.Errorf("verifyToken: %s", w.Body)
			case reason != "" && w.Code != 200 && w.Code != 400:
				t.Errorf("verifyToken: %d %s", w.Code, w.Body)
			}
			if reason != "" && w.Code == 200 && !strings.Contains(vr.Error, ":") {
				t.Errorf("verifyToken error without a reason: %q", vr.Error)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("the jku/x5u listener was asked %d times", n)
	}
}
