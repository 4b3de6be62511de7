package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/seedexample"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/token"
)

// API keys of the test server, one per scope set.
const (
	adminKey      = "admin-key"
	issuerKey     = "issuer-key"
	introspectKey = "introspect-key"
	outcomeKey    = "outcome-key"
)

// testServer serves a Service whose castlabs profile is keyed by the seed's
// key string, with an appverify and a default profile, over a real
// SQLite store in a temporary directory.
func testServer(t testing.TB) (http.Handler, *token.Service) {
	h, svc, _ := testServerWithStore(t)
	return h, svc
}

func testServerWithStore(t testing.TB) (http.Handler, *token.Service, *sqlite.Store) {
	t.Helper()
	return testServerAt(t, nil)
}

// testServerAt is testServerWithStore with the token service's clock.
func testServerAt(t testing.TB, now func() time.Time) (http.Handler, *token.Service, *sqlite.Store) {
	t.Helper()
	ex := seedexample.Load(t)
	cl, err := keys.New("cl1", "HS512", []byte(ex.Key))
	if err != nil {
		t.Fatal(err)
	}
	av, _ := keys.New("av1", "HS256", []byte("appverify-secret-0123456789abcdef"))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, _ := keys.New("es1", "ES256", ec)
	set, _ := keys.NewSet(cl, av, es)
	svc, err := token.NewService(set, map[string]token.ProfileSpec{
		"castlabs":  {Key: "cl1", Layout: token.LayoutCastlabs, TTL: time.Hour},
		"appverify": {Key: "av1", Layout: token.LayoutAppVerify, Issuer: "cust", TTL: 90 * time.Second, Backdate: 10 * time.Second},
		"default":   {Key: "es1", TTL: time.Minute},
	}, token.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	store := testStore(t)
	h := NewServer(testDeps(t, svc, store, nil, nil), Options{MaxBodyBytes: 1 << 20})
	return h, svc, store
}

// testStore is a real SQLite store in a temporary directory.
func testStore(t testing.TB) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// testDeps wires a server as serve does: one Minter over svc and store,
// phone numbers read in the US, limits (when limiter is not nil) on the
// routes given.
func testDeps(t testing.TB, svc *token.Service, store record.Store, limiter *ratelimit.Limiter, routes map[string][]string) Deps {
	t.Helper()
	phones, err := phone.NewNormalizer("US", 0)
	if err != nil {
		t.Fatal(err)
	}
	tokens := func() *token.Service { return svc }
	apiKeys := testAPIKeys(t)
	trail := auditTrail(t, store) // on the same store, as serve has it
	return Deps{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Tokens: tokens, Store: store, APIKeys: func() *apikey.Set { return apiKeys }, Phones: phones, Limiter: limiter,
		Minter: &mint.Minter{Tokens: tokens, Store: store, Phones: phones, Limiter: limiter, LimitBy: routes, Audit: trail},
		Keys:   fakeKeys{},
		Audit:  trail, AuditStore: auditStore(store),
	}
}

// auditTrail is a required trail on store, when it keeps audit entries.
func auditTrail(t testing.TB, store record.Store) *audit.Trail {
	as := auditStore(store)
	if as == nil {
		return nil
	}
	tr := audit.NewTrail(as, audit.Options{Chain: "test", Required: true})
	t.Cleanup(tr.Close)
	return tr
}

func auditStore(store record.Store) audit.Store {
	as, _ := store.(audit.Store)
	return as
}

// fakeKeys stands in for the key management of cmd/jwtd (tested there
// against real stores): one managed profile, "default", whose rotation
// is under way after the first; "appverify" signs with a configured key.
type fakeKeys struct{}

var fakeKeyList = []keys.Info{{Profile: "default", Kid: "k1", Alg: "ES256", State: "current"}}

func (fakeKeys) List(context.Context) ([]keys.Info, error) { return fakeKeyList, nil }
func (fakeKeys) Rotate(_ context.Context, profile string) ([]keys.Info, error) {
	switch profile {
	case "default":
		return append(fakeKeyList, keys.Info{Profile: "default", Kid: "k2", Alg: "ES256", State: "next"}), nil
	case "busy":
		return nil, fmt.Errorf("%w: key %q signs from …", keys.ErrRotating, "k2")
	case "appverify":
		return nil, fmt.Errorf("%w: it signs with a configured key", keys.ErrNotManaged)
	}
	return nil, fmt.Errorf("%w %q", token.ErrUnknownProfile, profile)
}
func (fakeKeys) JWKSMaxAge() time.Duration { return 90 * time.Second }
func (fakeKeys) Ready() error              { return nil }

// testAPIKeys has one key per scope.
func testAPIKeys(t testing.TB) *apikey.Set {
	t.Helper()
	keys, err := apikey.NewSet([]apikey.Spec{
		{Name: "admin", SHA256: apikey.Hash(adminKey), Scopes: []string{apikey.ScopeAdmin}},
		{Name: "issuer", SHA256: apikey.Hash(issuerKey), Scopes: []string{apikey.ScopeIssue}},
		{Name: "introspector", SHA256: apikey.Hash(introspectKey), Scopes: []string{apikey.ScopeIntrospect}},
		{Name: "callbacks", SHA256: apikey.Hash(outcomeKey), Scopes: []string{apikey.ScopeOutcome}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func do(t testing.TB, h http.Handler, method, path, contentType, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// generateToken mints a castlabs token through /generateToken.
func generateToken(t testing.TB, h http.Handler) string {
	t.Helper()
	w := do(t, h, "POST", "/generateToken", "application/json", `{"user_data":"x"}`)
	var gen struct {
		Token string `json:"JWT Token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &gen); err != nil || gen.Token == "" {
		t.Fatalf("generateToken: %d %s", w.Code, w.Body)
	}
	return gen.Token
}

func verifyBody(tok, key string) string {
	b, _ := json.Marshal(map[string]string{"Token": tok, "Signing_key": key})
	return string(b)
}

// The seed document's token and key give exactly its expected response,
// byte for byte once compacted, key order kept, while the token is young
// enough: signed with the castlabs profile's key, it is one of jwtd's own,
// and lives the profile's ttl (an hour here) from its iat, when jwtd
// recorded it; a token of jwtd's key that jwtd never recorded is not good.
func TestVerifyTokenSeedExample(t *testing.T) {
	ex := seedexample.Load(t)
	var claims struct {
		Iat int64
		JTI string
	}
	if err := json.Unmarshal(ex.Expected, &struct{ Claims any }{&claims}); err != nil || claims.Iat == 0 {
		t.Fatalf("example claims: %v", err)
	}
	issued := time.Unix(claims.Iat, 0)
	h, _, store := testServerAt(t, func() time.Time { return issued.Add(time.Minute) })
	w := do(t, h, "POST", "/verifyToken", "application/json", verifyBody(ex.Token, ex.Key))
	if !strings.Contains(w.Body.String(), `"Signature Verification":false,"Error":"unrecorded`) {
		t.Errorf("never recorded: %s", w.Body)
	}
	later, _, laterStore := testServerAt(t, func() time.Time { return issued.Add(time.Hour + time.Minute) })
	for _, s := range []*sqlite.Store{store, laterStore} {
		rec := &record.Record{JTI: claims.JTI, Profile: "castlabs", Kid: "cl1", Alg: "HS512", Issued: issued,
			Expires: issued.Add(time.Hour), TokenSHA256: token.HashToken(ex.Token)}
		if err := s.Insert(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	w = do(t, later, "POST", "/verifyToken", "application/json", verifyBody(ex.Token, ex.Key))
	if !strings.Contains(w.Body.String(), `"Signature Verification":false,"Error":"expired`) {
		t.Errorf("an hour and a minute after its iat: %s", w.Body)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, ex.Expected); err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"GET", "POST"} {
		w := do(t, h, method, "/verifyToken", "application/json", verifyBody(ex.Token, ex.Key))
		if w.Code != 200 || strings.TrimSpace(w.Body.String()) != want.String() {
			t.Errorf("%s: %d %s\nwant %s", method, w.Code, w.Body, want.String())
		}
	}
	// One character of the key, or of the token's signature, changed.
	for name, body := range map[string]string{
		"key":       verifyBody(ex.Token, "b"+ex.Key[1:]),
		"signature": verifyBody(ex.Token[:len(ex.Token)-3]+"AAA", ex.Key),
	} {
		w := do(t, h, "GET", "/verifyToken", "application/json", body)
		var resp map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &resp)
		if w.Code != 200 || resp["Signature Verification"] != false || resp["Error"] == "" || resp["Error"] == nil {
			t.Errorf("%s changed: %d %s", name, w.Code, w.Body)
		}
	}
}

func TestGenerateToken(t *testing.T) {
	h, _ := testServer(t)
	ex := seedexample.Load(t)
	w := do(t, h, "POST", "/generateToken", "application/json; charset=utf-8", `{"user_data": "this is test3"}`)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var resp map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	tok := resp["JWT Token"]
	if !strings.HasPrefix(tok, "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.") {
		t.Errorf("token %s", tok)
	}
	// It verifies through /verifyToken with the key string.
	w = do(t, h, "GET", "/verifyToken", "application/json", verifyBody(tok, ex.Key))
	if !strings.Contains(w.Body.String(), `"Signature Verification":true`) || !strings.Contains(w.Body.String(), `"data":"this is test3"`) {
		t.Errorf("verify: %s", w.Body)
	}
}

// /verifyToken verifies RS256, PS256, ES256, ES384 and EdDSA tokens with a
// PEM public key or a JWK (as a string or an object), and refuses a key that
// does not fit the token's alg.
func TestVerifyTokenAsymmetric(t *testing.T) {
	h, _ := testServer(t)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	claims := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","exp":4102444800}`))
	for _, tc := range []struct {
		alg  string
		priv any
	}{{"RS256", rk}, {"PS256", rk}, {"ES256", ec256}, {"ES384", ec384}, {"EdDSA", ed}} {
		k, err := keys.New("k", tc.alg, tc.priv)
		if err != nil {
			t.Fatal(err)
		}
		input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"`+tc.alg+`","typ":"JWT"}`)) + "." + claims
		sig, _ := k.Sign(input)
		tok := input + "." + base64.RawURLEncoding.EncodeToString(sig)
		pemKey, _ := keys.MarshalPublicPEM(k.Public())
		jwk, _ := jose.JSONWebKey{Key: k.Public()}.MarshalJSON()

		objBody, _ := json.Marshal(map[string]any{"Token": tok, "Signing_key": json.RawMessage(jwk)})
		for name, body := range map[string]string{
			"PEM":        verifyBody(tok, string(pemKey)),
			"JWK string": verifyBody(tok, string(jwk)),
			"JWK object": string(objBody),
		} {
			w := do(t, h, "POST", "/verifyToken", "application/json", body)
			if w.Code != 200 || !strings.Contains(w.Body.String(), `"Signature Verification":true`) {
				t.Errorf("%s with %s: %d %s", tc.alg, name, w.Code, w.Body)
			}
		}
		// Key confusion: an HS256 token "signed" with this public key's PEM.
		hsInput := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + claims
		hs, _ := keys.New("", "HS256", pemKey)
		hsSig, _ := hs.Sign(hsInput)
		confused := hsInput + "." + base64.RawURLEncoding.EncodeToString(hsSig)
		w := do(t, h, "POST", "/verifyToken", "application/json", verifyBody(confused, string(pemKey)))
		if !strings.Contains(w.Body.String(), `"Signature Verification":false`) {
			t.Errorf("%s: HS256 signed with the public key verified: %s", tc.alg, w.Body)
		}
	}
	// alg none never verifies, whatever the key.
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + claims + ".c2ln"
	w := do(t, h, "GET", "/verifyToken", "application/json", verifyBody(none, strings.Repeat("k", 64)))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Signature Verification":false`) {
		t.Errorf("alg none: %d %s", w.Code, w.Body)
	}
}

// unsigned is an HS256 token with the given claims JSON and a dummy
// signature.
func unsigned(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2ln"
}

// Bad input at every route gets the specified status and the seed's body
// shape, never a 500.
func TestSeedRoutesBadInput(t *testing.T) {
	h, _ := testServer(t)
	ex := seedexample.Load(t)
	big := `{"user_data":"` + strings.Repeat("x", 10<<20) + `"}`
	type want struct {
		code, status int
		desc         string
	}
	for _, tc := range []struct {
		name, method, path, ct, body string
		want                         want
	}{
		{"no content type", "POST", "/generateToken", "", `{"user_data":"x"}`, want{415, 202, "Invalid content type"}},
		{"text/plain", "POST", "/generateToken", "text/plain", `{"user_data":"x"}`, want{415, 202, "Invalid content type"}},
		{"bad media type", "POST", "/generateToken", "application/json; =", `{"user_data":"x"}`, want{415, 202, "Invalid content type"}},
		{"broken JSON", "POST", "/generateToken", "application/json", `{"user_data":`, want{400, 400, "Malformed JSON body"}},
		{"JSON array", "POST", "/generateToken", "application/json", `["x"]`, want{400, 400, "Malformed JSON body"}},
		{"empty body", "POST", "/generateToken", "application/json", ``, want{400, 400, "Malformed JSON body"}},
		{"trailing data", "POST", "/generateToken", "application/json", `{"user_data":"x"} {}`, want{400, 400, "Malformed JSON body"}},
		{"duplicate key", "POST", "/generateToken", "application/json", `{"user_data":"x","user_data":"y"}`, want{400, 400, "duplicate key"}},
		{"user_data number", "POST", "/generateToken", "application/json", `{"user_data":5}`, want{400, 400, "user_data must be a string"}},
		{"user_data object", "POST", "/generateToken", "application/json", `{"user_data":{}}`, want{400, 400, "user_data must be a string"}},
		{"user_data missing", "POST", "/generateToken", "application/json", `{}`, want{400, 400, "Missing user_data"}},
		{"10 MB body", "POST", "/generateToken", "application/json", big, want{413, 413, "larger than"}},
		{"invalid UTF-8", "POST", "/generateToken", "application/json", "{\"user_data\":\"\xff\"}", want{400, 400, "UTF-8"}},

		{"verify no content type", "GET", "/verifyToken", "", verifyBody(ex.Token, ex.Key), want{415, 202, "Invalid content type"}},
		{"verify missing token", "GET", "/verifyToken", "application/json", `{"Signing_key":"k"}`, want{400, 203, "Missing token in GET request body"}},
		{"verify null token", "GET", "/verifyToken", "application/json", `{"Token":null,"Signing_key":"k"}`, want{400, 203, "Missing token in GET request body"}},
		{"verify missing key", "GET", "/verifyToken", "application/json", `{"Token":"a.b.c"}`, want{400, 204, "Missing singing key in GET request body"}},
		{"verify token number", "GET", "/verifyToken", "application/json", `{"Token":1,"Signing_key":"k"}`, want{400, 400, "Token must be a string"}},
		{"verify key number", "GET", "/verifyToken", "application/json", `{"Token":"a.b.c","Signing_key":1}`, want{400, 400, "Signing_key must be"}},
		{"verify garbage token", "GET", "/verifyToken", "application/json", `{"Token":"garbage","Signing_key":"k"}`, want{400, 400, "Malformed token"}},
		{"verify two segments", "POST", "/verifyToken", "application/json", `{"Token":"eyJhbGciOiJIUzI1NiJ9.e30","Signing_key":"k"}`, want{400, 400, "Malformed token"}},
		{"verify payload not JSON", "POST", "/verifyToken", "application/json", `{"Token":"eyJhbGciOiJIUzI1NiJ9.Zm9v.c2ln","Signing_key":"k"}`, want{400, 400, "Malformed token"}},
		{"verify token over 8 KiB", "POST", "/verifyToken", "application/json", verifyBody(strings.Repeat("A", 9<<10)+".e30.c2ln", "k"), want{400, 400, "longer than"}},
		{"verify body over 16 KiB", "POST", "/verifyToken", "application/json", verifyBody(strings.Repeat("A", 100<<10)+".e30.c2ln", "k"), want{413, 413, "larger than 16384 bytes"}},
		{"generate body over 16 KiB", "POST", "/generateToken", "application/json", `{"user_data":"` + strings.Repeat("x", 17<<10) + `"}`, want{413, 413, "larger than 16384 bytes"}},
		{"verify broken JSON", "GET", "/verifyToken", "application/json", `{"Token":`, want{400, 400, "Malformed JSON body"}},
		{"verify key number, no token", "GET", "/verifyToken", "application/json", `{"Signing_key":1}`, want{400, 203, "Missing token in GET request body"}},
		// A bad claim does not stop the claims from being checked whole:
		// nothing unchecked is echoed back.
		{"verify bad exp and a duplicate", "POST", "/verifyToken", "application/json", verifyBody(unsigned(`{"exp":"x","a":1,"a":2}`), "k"), want{400, 400, "duplicate key"}},
		{"verify bad exp and trailing text", "POST", "/verifyToken", "application/json",
			verifyBody(unsigned(`{"exp":"x"},"Signature Verification":true,"z":{"q":0`), "k"), want{400, 400, "Malformed token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, tc.method, tc.path, tc.ct, tc.body)
			var got struct {
				Status      int    `json:"status"`
				Description string `json:"description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%d, body not JSON: %q", w.Code, w.Body)
			}
			if w.Code != tc.want.code || got.Status != tc.want.status || !strings.Contains(got.Description, tc.want.desc) {
				t.Errorf("got %d %+v, want %+v", w.Code, got, tc.want)
			}
		})
	}
}

// The JWKS, with the max-age key management gives (fakeKeys: 90 s).
func TestWellKnownAndHealth(t *testing.T) {
	h, svc := testServer(t)
	w := do(t, h, "GET", "/.well-known/jwks.json", "", "")
	if w.Code != 200 || w.Header().Get("Cache-Control") != "public, max-age=90" || !bytes.Equal(w.Body.Bytes(), svc.JWKS()) {
		t.Errorf("jwks: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if strings.Contains(w.Body.String(), `"oct"`) || strings.Contains(w.Body.String(), `"k"`) {
		t.Errorf("JWKS publishes a secret: %s", w.Body)
	}
	w = do(t, h, "GET", "/healthz", "", "")
	if w.Code != 200 || w.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Errorf("healthz: %d %s", w.Code, w.Body)
	}
	w = do(t, h, "DELETE", "/generateToken", "", "")
	if w.Code != 405 || w.Header().Get("Allow") != "POST" || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("DELETE /generateToken: %d %v", w.Code, w.Header())
	}
	w = do(t, h, "PUT", "/verifyToken", "", "")
	if w.Code != 405 || w.Header().Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT /verifyToken: %d %v", w.Code, w.Header())
	}
	w = do(t, h, "GET", "/nowhere", "", "")
	if w.Code != 404 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /nowhere: %d %v %s", w.Code, w.Header(), w.Body)
	}
	w = do(t, h, "GET", "/v1/../healthz", "", "")
	if (w.Code != 301 && w.Code != 307) || w.Header().Get("Location") != "/healthz" {
		t.Errorf("unclean path: %d %v", w.Code, w.Header())
	}
	if w.Header().Get("X-Request-ID") == "" {
		t.Error("no request ID")
	}
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.Header.Set("X-Request-ID", "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Header().Get("X-Request-ID") != "abc-123" {
		t.Errorf("caller's request ID not kept: %q", rec.Header().Get("X-Request-ID"))
	}
	r.Header.Set("X-Request-ID", "bad id\nwith newline")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if got := rec.Header().Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \n") {
		t.Errorf("unsafe request ID echoed: %q", got)
	}
}
