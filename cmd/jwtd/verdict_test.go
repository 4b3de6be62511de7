package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtd/jwtd/internal/apikey"
)

// verdictServer serves jwtd with short castlabs lives and fast key syncs,
// so that a rotation deletes the old castlabs key within seconds.
type verdictServer struct {
	base, cfg string
}

func startVerdictServer(t *testing.T, storeURL string) verdictServer {
	t.Helper()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "jwtd.yaml", fmt.Sprintf(`
data_dir: %q
store: {url: %q}
leeway: 0s
key_store: {sync_interval: 200ms, jwks_max_age: 0s, master_key_file: master.key}
phone: {default_region: US}
ratelimit: {routes: {token: [], issue: [], generate: []}}
profiles:
  castlabs: {ttl: 3s}
api_keys:
  - {name: test, sha256: %q, scopes: [admin, issue, introspect]}
`, filepath.Join(dir, "data"), storeURL, apikey.Hash(testAdminKey)))
	writeFile(t, dir, "master.key", newMasterKey()+"\n")
	base, _ := startServe(t, nil, "--config", cfg)
	return verdictServer{base: base, cfg: cfg}
}

func (v verdictServer) generate(t *testing.T, data string) (tok, jti string) {
	t.Helper()
	code, out := httpDo(t, "POST", v.base+"/generateToken", "", "application/json", fmt.Sprintf(`{"user_data":%q}`, data))
	var gen struct {
		Token string `json:"JWT Token"`
	}
	if code != 200 || json.Unmarshal([]byte(out), &gen) != nil {
		t.Fatalf("generateToken: %d %s", code, out)
	}
	return gen.Token, claimsOf(t, gen.Token)["jti"].(string)
}

// verifyToken asks /verifyToken with a key and returns its answer.
func (v verdictServer) verifyToken(t *testing.T, tok string, key any) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"Token": tok, "Signing_key": key})
	return httpDo(t, "POST", v.base+"/verifyToken", "", "application/json", string(body))
}

func (v verdictServer) introspect(t *testing.T, tok string) string {
	t.Helper()
	code, out := httpDo(t, "POST", v.base+"/v1/introspect", testAdminKey, "application/x-www-form-urlencoded", "token="+url.QueryEscape(tok))
	if code != 200 {
		t.Fatalf("introspect: %d %s", code, out)
	}
	return out
}

// cliVerdict is jwtd token verify's reason ("" when active).
func (v verdictServer) cliVerdict(t *testing.T, tok string) string {
	t.Helper()
	out, stderr, err := runCLI(t, nil, "", "token", "verify", "--config", v.cfg, tok)
	var got struct {
		Active bool
		Reason string
	}
	if jerr := json.Unmarshal([]byte(out), &got); jerr != nil || got.Active != (err == nil) {
		t.Fatalf("token verify: %v %q %s", err, out, stderr)
	}
	return got.Reason
}

func claimsOf(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	if err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("claims of %q: %v", tok, err)
	}
	return claims
}

// hs512 signs claims as the castlabs layout does, with any secret.
func hs512(secret []byte, claims string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(`{"typ":"JWT","alg":"HS512"}`)) + "." + b64([]byte(claims))
	m := hmac.New(sha512.New, secret)
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

// Every hole of a token's verdict, tried against a real server on both
// stores: a forged token with a real jti, a padded HMAC secret, a revoked
// transaction, a private key, and the tokens of a castlabs key that a
// rotation deleted. No path answers active for any of them.
func TestOneVerdict(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	for name, storeURL := range storeURLs(t) {
		t.Run(name, func(t *testing.T) { testOneVerdict(t, storeURL(t)) })
	}
}

func testOneVerdict(t *testing.T, storeURL string) {
	v := startVerdictServer(t, storeURL)
	secret, stderr, err := runCLI(t, nil, "", "keys", "show", "--config", v.cfg, "--profile", "castlabs")
	if err != nil {
		t.Fatalf("keys show: %v %s", err, stderr)
	}
	secret = strings.TrimSpace(secret)

	// 1. A forged token with a real jti: introspection, the CLI and
	// /verifyToken with jwtd's castlabs key all answer forged.
	t1, jti1 := v.generate(t, "alice: USER")
	forged := hs512([]byte(secret), fmt.Sprintf(`{"iat":%d,"jti":%q,"payload":{"data":"alice: ADMIN","date":"2026-12-07"},"exp":4102444800}`,
		time.Now().Unix(), jti1))
	if out := v.introspect(t, forged); !strings.Contains(out, `"active":false,"reason":"forged"`) {
		t.Errorf("introspect of the forged token: %s", out)
	}
	if got := v.cliVerdict(t, forged); got != "forged" {
		t.Errorf("token verify of the forged token: %q", got)
	}
	if _, out := v.verifyToken(t, forged, secret); !strings.Contains(out, `"Signature Verification":false,"Error":"forged`) {
		t.Errorf("verifyToken of the forged token: %s", out)
	}
	if _, out := v.verifyToken(t, t1, secret); !strings.Contains(out, `"Signature Verification":true`) {
		t.Errorf("verifyToken of the token jwtd minted: %s", out)
	}

	// 3. A zero-padded HMAC secret is the same key: a revoked appverify
	// token answers revoked with it, as with the exact secret.
	code, av := httpDo(t, "GET", v.base+"/v1/token/+14155552690/rx-1", "", "", "")
	if code != 200 {
		t.Fatalf("seed 000 token: %d %s", code, av)
	}
	if code, out := httpDo(t, "POST", v.base+"/v1/revoke", testAdminKey, "application/json", `{"xid":"rx-1"}`); code != 200 || !strings.Contains(out, `"revoked":1`) {
		t.Fatalf("revoke xid: %d %s", code, out)
	}
	avSecretB64, _, err := runCLI(t, nil, "", "keys", "show", "--config", v.cfg, "--profile", "appverify")
	avSecret, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(avSecretB64))
	if err != nil || derr != nil {
		t.Fatalf("appverify key: %v %v", err, derr)
	}
	padded := append(append([]byte(nil), avSecret...), make([]byte, 16)...)
	oct := func(k []byte) map[string]string {
		return map[string]string{"kty": "oct", "alg": "HS256", "k": base64.RawURLEncoding.EncodeToString(k)}
	}
	for name, key := range map[string]any{"the secret": oct(avSecret), "the secret padded with zero bytes": oct(padded)} {
		if _, out := v.verifyToken(t, av, key); !strings.Contains(out, `"Error":"revoked`) {
			t.Errorf("revoked appverify token with %s: %s", name, out)
		}
	}

	// 4. The revoked transaction is closed on every minting route, and
	// Get Status says so.
	if code, out := httpDo(t, "GET", v.base+"/v1/token/+14155552690/rx-1", "", "", ""); code != 409 || !strings.Contains(out, "revoked") {
		t.Errorf("a new seed 000 token for the revoked XID: %d %s", code, out)
	}
	if code, out := httpDo(t, "POST", v.base+"/v1/tokens", testAdminKey, "application/json",
		`{"profile":"appverify","phone":"+14155552690","xid":"rx-1"}`); code != 409 || !strings.Contains(out, "Transaction revoked") {
		t.Errorf("a new native token for the revoked XID: %d %s", code, out)
	}
	if code, out := httpDo(t, "GET", v.base+"/v1/tokens/rx-1", testAdminKey, "", ""); code != 200 || !strings.Contains(out, `"closed":"`) {
		t.Errorf("Get Status of the revoked transaction: %d %s", code, out)
	}
	if code, out := httpDo(t, "GET", v.base+"/v1/token/+14155552690/rx-2", "", "", ""); code != 200 {
		t.Errorf("another XID of the phone: %d %s", code, out)
	}

	// 5. A private key is refused, and the caller told to keep it.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privJWK, _ := jose.JSONWebKey{Key: ec, Algorithm: "ES256"}.MarshalJSON()
	var jwk map[string]any
	_ = json.Unmarshal(privJWK, &jwk)
	if code, out := v.verifyToken(t, t1, jwk); code != 400 || !strings.Contains(out, "private key") || !strings.Contains(out, "keep") {
		t.Errorf("a private JWK: %d %s", code, out)
	}

	// 2. The rotation replay: tokens of a castlabs key jwtd deleted,
	// expired or revoked, answer so, and forgeries with it are refused.
	_, jti2 := v.generate(t, "bob")
	t2 := func() string { tok, _ := v.generate(t, "carol"); return tok }()
	if code, out := httpDo(t, "POST", v.base+"/v1/revoke", testAdminKey, "application/json", fmt.Sprintf(`{"jti":%q}`, claimsOf(t, t2)["jti"])); code != 200 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	oldKid := castlabsKid(t, v)
	if code, out := httpDo(t, "POST", v.base+"/v1/keys/rotate", testAdminKey, "application/json", `{"profile":"castlabs"}`); code != 202 {
		t.Fatalf("rotate: %d %s", code, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for castlabsHas(t, v, oldKid) {
		if time.Now().After(deadline) {
			t.Fatalf("the old castlabs key %s was not deleted", oldKid)
		}
		time.Sleep(200 * time.Millisecond)
	}
	now := time.Now().Unix()
	for name, tc := range map[string]struct{ tok, want string }{
		"expired T1":                 {t1, "expired"},
		"revoked T2":                 {t2, "expired"}, // expired before it could be deleted: its first reason
		"a new iat on a real jti":    {hs512([]byte(secret), fmt.Sprintf(`{"iat":%d,"jti":%q,"payload":{"data":"x"}}`, now, jti2)), "forged"},
		"a new iat on a made-up jti": {hs512([]byte(secret), fmt.Sprintf(`{"iat":%d,"jti":"made-up","payload":{"data":"x"}}`, now)), "unrecorded"},
		"no jti":                     {hs512([]byte(secret), fmt.Sprintf(`{"iat":%d,"payload":{"data":"x"}}`, now)), "unrecorded"},
	} {
		if _, out := v.verifyToken(t, tc.tok, secret); !strings.Contains(out, `"Signature Verification":false,"Error":"`+tc.want) {
			t.Errorf("%s with the deleted key: %s, want %s", name, out, tc.want)
		}
		if out := v.introspect(t, tc.tok); !strings.Contains(out, `"active":false`) {
			t.Errorf("%s introspected: %s", name, out)
		}
	}
}

// castlabsKid is the castlabs profile's current kid, from GET /v1/keys.
func castlabsKid(t *testing.T, v verdictServer) string {
	t.Helper()
	for _, k := range listKeysHTTP(t, v) {
		if k.Profile == "castlabs" && k.State == "current" {
			return k.Kid
		}
	}
	t.Fatal("no current castlabs key")
	return ""
}

func castlabsHas(t *testing.T, v verdictServer, kid string) bool {
	for _, k := range listKeysHTTP(t, v) {
		if k.Kid == kid {
			return true
		}
	}
	return false
}

func listKeysHTTP(t *testing.T, v verdictServer) []struct{ Profile, Kid, State string } {
	t.Helper()
	code, out := httpDo(t, "GET", v.base+"/v1/keys", testAdminKey, "", "")
	var got struct {
		Keys []struct{ Profile, Kid, State string }
	}
	if code != 200 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("GET /v1/keys: %d %s", code, out)
	}
	return got.Keys
}
