package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jwtd/jwtd/internal/token"
)

// tokenText is a token in an answer, which changes from run to run.
var tokenText = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*`)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the answers")

// answer is one request and what jwtd answers it: status, the headers a
// client acts on, and the body.
type answer struct {
	name                        string
	h                           http.Handler
	method, path, key, ct, body string
}

// answerHeaders are the headers written down with each answer.
var answerHeaders = []string{"Allow", "Cache-Control", "Content-Type", "Ratelimit", "Ratelimit-Policy", "Retry-After", "Www-Authenticate"}

func (a answer) write(t *testing.T, out *bytes.Buffer) {
	t.Helper()
	w := doAuth(t, a.h, a.method, a.path, a.key, a.ct, a.body)
	fmt.Fprintf(out, "### %s: %s %s\n%d\n", a.name, a.method, a.path, w.Code)
	for _, name := range answerHeaders {
		if v := w.Header().Values(name); len(v) > 0 {
			fmt.Fprintf(out, "%s: %s\n", name, strings.Join(v, ", "))
		}
	}
	body := tokenText.ReplaceAllString(w.Body.String(), "<token>")
	out.WriteString(body)
	if !strings.HasSuffix(body, "\n") {
		out.WriteString("\n")
	}
}

// Every refusal the API answers, byte for byte: statuses, error titles and
// details, seed 003's codes and texts, and the headers that go with them
// (Retry-After, RateLimit, WWW-Authenticate, Allow). Clients of the seeds
// and of /v1 read these; go test -run TestErrorAnswers -update rewrites
// testdata/error-answers.golden after a change meant to show in it.
func TestErrorAnswers(t *testing.T) {
	h, _, store := testServerWithStore(t)
	for _, path := range []string{"/v1/token/+14155552671/tx-a", "/v1/token/+14155552671/tx-open"} {
		if w := do(t, h, "GET", path, "", ""); w.Code != 200 {
			t.Fatalf("mint: %d %s", w.Code, w.Body)
		}
	}
	jti := records(t, h, "tx-a")[0].(map[string]any)["jti"].(string)
	if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-a"}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	privatePEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))

	// Servers with one part missing or failing.
	svc := testServerSvc(t)
	noAudit := NewServer(testDeps(t, svc, nil, nil, nil), Options{})
	certs := NewServer(testDeps(t, svc, store, nil, nil), Options{RequireClientCert: true, Seed000RequireCaller: true})
	keysDown := testDeps(t, svc, store, nil, nil)
	keysDown.Keys = failingKeys{}
	limitsDown := testDeps(t, svc, store, nil, nil)
	limitsDown.LimitStore = failingPing{}
	closed := testStore(t)
	closed.Close()
	storeDown := testDeps(t, svc, closed, nil, nil)
	storeDown.Audit = nil
	small := NewServer(testDeps(t, svc, store, nil, nil), Options{MaxBodyBytes: 64})
	limited := limitedTestServer(t, "2 per hour", "100 per hour", defaultRoutes)
	perPhone := limitedTestServer(t, "100 per hour", "1 per hour", defaultRoutes)

	big := `{"user_data":"` + strings.Repeat("x", 20000) + `"}`
	var out bytes.Buffer
	for _, a := range []answer{
		// Seed 003.
		{"generate: content type", h, "POST", "/generateToken", "", "text/plain", `{"user_data":"x"}`},
		{"generate: malformed JSON", h, "POST", "/generateToken", "", "application/json", `{"user_data":`},
		{"generate: not an object", h, "POST", "/generateToken", "", "application/json", `[1]`},
		{"generate: user_data not a string", h, "POST", "/generateToken", "", "application/json", `{"user_data":1}`},
		{"generate: no user_data", h, "POST", "/generateToken", "", "application/json", `{"other":"x"}`},
		{"generate: body too large", h, "POST", "/generateToken", "", "application/json", big},
		{"generate: token too large", h, "POST", "/generateToken", "", "application/json", `{"user_data":"` + strings.Repeat("x", 9000) + `"}`},
		{"generate: GET", h, "GET", "/generateToken", "", "", ""},
		{"verify: content type", h, "POST", "/verifyToken", "", "", `{}`},
		{"verify: no Token", h, "GET", "/verifyToken", "", "application/json", `{"Signing_key":"k"}`},
		{"verify: Token not a string", h, "GET", "/verifyToken", "", "application/json", `{"Token":1,"Signing_key":"k"}`},
		{"verify: no key", h, "GET", "/verifyToken", "", "application/json", `{"Token":"a.b.c"}`},
		{"verify: key a number", h, "GET", "/verifyToken", "", "application/json", `{"Token":"a.b.c","Signing_key":1}`},
		{"verify: malformed token", h, "GET", "/verifyToken", "", "application/json", `{"Token":"a.b","Signing_key":"k"}`},
		{"verify: claims not an object", h, "GET", "/verifyToken", "", "application/json", `{"Token":"eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln","Signing_key":"k"}`},
		{"verify: private key", h, "GET", "/verifyToken", "", "application/json", verifyBody("eyJhbGciOiJFUzI1NiJ9.e30.c2ln", privatePEM)},

		// Seed 000.
		{"phone token: POST", h, "POST", "/v1/token/+14155552671/tx-b", "", "", ""},
		{"phone token: bad phone", h, "GET", "/v1/token/hello/tx-b", "", "", ""},
		{"phone token: bad XID", h, "GET", "/v1/token/+14155552671/a%20b", "", "", ""},
		{"phone token: XID of another phone", h, "GET", "/v1/token/+14155550000/tx-open", "", "", ""},
		{"phone token: closed transaction", h, "GET", "/v1/token/+14155552671/tx-a", "", "", ""},
		{"phone token: no caller", certs, "GET", "/v1/token/+14155552671/tx-c", "", "", ""},
		{"phone token: caller without the scope", certs, "GET", "/v1/token/+14155552671/tx-c", adminKey, "", ""},

		// Authentication.
		{"no key", h, "GET", "/v1/tokens/tx-a", "", "", ""},
		{"unknown key", h, "GET", "/v1/tokens/tx-a", "nope", "", ""},
		{"key without the scope", h, "GET", "/v1/tokens/tx-a", issuerKey, "", ""},
		{"key without the outcome scope", h, "POST", "/v1/transactions/tx-a/outcome", adminKey, "application/json", `{"code":2401}`},
		{"client certificate required", certs, "GET", "/v1/tokens/tx-a", adminKey, "", ""},
		{"whoami without a key", h, "GET", "/v1/whoami", "", "", ""},

		// POST /v1/tokens.
		{"issue: content type", h, "POST", "/v1/tokens", issuerKey, "text/plain", `{}`},
		{"issue: unknown member", h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","x":1}`},
		{"issue: bad ttl", h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","ttl":0.5}`},
		{"issue: bad phone", h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"appverify","phone":"12"}`},
		{"issue: unknown profile", h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"nope"}`},
		{"issue: ttl too long", h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","ttl":"2h"}`},
		{"issue: closed transaction", h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"appverify","phone":"+14155552671","xid":"tx-a"}`},
		{"issue: body too large", small, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","sub":"` + strings.Repeat("s", 100) + `"}`},

		// Get Status and listings.
		{"transaction: unknown", h, "GET", "/v1/tokens/tx-none", adminKey, "", ""},
		{"transaction: bad XID", h, "GET", "/v1/tokens/a%20b", adminKey, "", ""},
		{"by phone: space", h, "GET", "/v1/tokens?phone=%2014155552671", adminKey, "", ""},
		{"by phone: bad phone", h, "GET", "/v1/tokens?phone=hello", adminKey, "", ""},
		{"by phone: no phone", h, "GET", "/v1/tokens", adminKey, "", ""},
		{"by phone: limit", h, "GET", "/v1/tokens?phone=%2B14155552671&limit=0", adminKey, "", ""},
		{"by phone: cursor", h, "GET", "/v1/tokens?phone=%2B14155552671&cursor=nonsense", adminKey, "", ""},

		// POST /v1/revoke.
		{"revoke: neither", h, "POST", "/v1/revoke", adminKey, "application/json", `{}`},
		{"revoke: both", h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"a","xid":"b"}`},
		{"revoke: long jti", h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"` + strings.Repeat("j", 129) + `"}`},
		{"revoke: bad XID", h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"a b"}`},
		{"revoke: unknown jti", h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"nope"}`},
		{"revoke: unknown XID", h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-none"}`},
		{"revoke: jti revoked already", h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"` + jti + `"}`},
		{"revoke: XID revoked already", h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-a"}`},
		{"revoke: unknown member", h, "POST", "/v1/revoke", adminKey, "application/json", `{"jti":"a","all":true}`},

		// POST /v1/introspect.
		{"introspect: content type", h, "POST", "/v1/introspect", introspectKey, "application/json", `{}`},
		{"introspect: malformed form", h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", "token=%zz"},
		{"introspect: no token", h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", "x=1"},
		{"introspect: malformed token", h, "POST", "/v1/introspect", introspectKey, "application/x-www-form-urlencoded", "token=a.b"},

		// Outcomes.
		{"outcome: unknown XID", h, "POST", "/v1/transactions/tx-none/outcome", outcomeKey, "application/json", `{"code":2401}`},
		{"outcome: bad XID", h, "POST", "/v1/transactions/a%20b/outcome", outcomeKey, "application/json", `{"code":2401}`},
		{"outcome: bad code", h, "POST", "/v1/transactions/tx-a/outcome", outcomeKey, "application/json", `{"code":7}`},
		{"outcome: code against status", h, "POST", "/v1/transactions/tx-a/outcome", outcomeKey, "application/json", `{"status":"failed","code":2401}`},
		{"outcome: unknown member", h, "POST", "/v1/transactions/tx-a/outcome", outcomeKey, "application/json", `{"code":2401,"x":1}`},

		// Audit, keys, discovery, health, routes.
		{"audit: since", h, "GET", "/v1/audit?since=yesterday", adminKey, "", ""},
		{"audit: until", h, "GET", "/v1/audit?until=tomorrow", adminKey, "", ""},
		{"audit: limit", h, "GET", "/v1/audit?limit=501", adminKey, "", ""},
		{"audit: cursor", h, "GET", "/v1/audit?cursor=nonsense", adminKey, "", ""},
		{"audit: none kept", noAudit, "GET", "/v1/audit", adminKey, "", ""},
		{"rotate: no profile", h, "POST", "/v1/keys/rotate", adminKey, "application/json", `{}`},
		{"rotate: under way", h, "POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"busy"}`},
		{"rotate: not managed", h, "POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"appverify"}`},
		{"rotate: unknown profile", h, "POST", "/v1/keys/rotate", adminKey, "application/json", `{"profile":"nope"}`},
		{"discovery: no issuer", h, "GET", "/.well-known/openid-configuration", "", "", ""},
		{"discovery: unknown issuer", h, "GET", "/.well-known/oauth-authorization-server/nobody", "", "", ""},
		{"readyz: keys", NewServer(keysDown, Options{}), "GET", "/readyz", "", "", ""},
		{"readyz: limits", NewServer(limitsDown, Options{}), "GET", "/readyz", "", "", ""},
		{"readyz: store", NewServer(storeDown, Options{}), "GET", "/readyz", "", "", ""},
		{"store down: Get Status", NewServer(storeDown, Options{}), "GET", "/v1/tokens/tx-a", adminKey, "", ""},
		{"store down: revoke", NewServer(storeDown, Options{}), "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-a"}`},
		{"no route", h, "GET", "/nowhere", "", "", ""},
		{"no such method", h, "DELETE", "/v1/tokens", adminKey, "", ""},

		// Rate limits: the seed 003 route counts a request before it reads
		// its body, and answers in the seed's shape.
		{"limited: generate 1", limited.h, "POST", "/generateToken", "", "application/json", `{"user_data":`},
		{"limited: generate 2", limited.h, "POST", "/generateToken", "", "application/json", `{"user_data":"x"}`},
		{"limited: generate 3", limited.h, "POST", "/generateToken", "", "application/json", `{"user_data":"x"}`},
		{"limited: generate 4, malformed", limited.h, "POST", "/generateToken", "", "application/json", `{"user_data":`},
		{"limited: phone 1", perPhone.h, "GET", "/v1/token/+14155552671/tx-l1", "", "", ""},
		{"limited: phone 2", perPhone.h, "GET", "/v1/token/+14155552671/tx-l2", "", "", ""},
	} {
		a.write(t, &out)
	}

	golden := filepath.Join("testdata", "error-answers.golden")
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		got, wantLines := strings.Split(out.String(), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(got), len(wantLines)) {
			g, w := at(got, i), at(wantLines, i)
			if g != w {
				t.Fatalf("answers differ from %s at line %d:\n got: %s\nwant: %s\n(go test -run TestErrorAnswers -update rewrites it)", golden, i+1, g, w)
			}
		}
	}
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return "<end>"
}

// testServerSvc is the token service of testServer.
func testServerSvc(t *testing.T) *token.Service {
	_, svc := testServer(t)
	return svc
}

type failingKeys struct{ fakeKeys }

func (failingKeys) Ready() error { return errors.New("keys cannot be opened") }

type failingPing struct{}

func (failingPing) Ping(context.Context) error { return errors.New("no answer") }
