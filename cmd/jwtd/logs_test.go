package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jwtd/jwtd/internal/seedexample"

	"github.com/jwtd/jwtd/internal/apikey"
)

// A full session of every endpoint, logged at debug level, leaves no
// secret, API key or whole token in the logs or the metrics.
func TestLogsHoldNoSecrets(t *testing.T) {
	dir := t.TempDir()
	ex := seedexample.Load(t)
	avSecret := "appverify-secret-for-the-log-test!"
	avB64 := base64.StdEncoding.EncodeToString([]byte(avSecret))
	if _, _, err := runCLI(t, nil, "", "keys", "generate", "--alg", "ES256", "--out", filepath.Join(dir, "es.pem")); err != nil {
		t.Fatal(err)
	}
	esPEM, _ := os.ReadFile(filepath.Join(dir, "es.pem"))
	issuerKey, introspectKey := "issuer-key-for-the-log-test", "introspect-key-for-the-log-test"
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf(`
log_level: debug
keys:
  - {kid: av1, alg: HS256, secret: %q, encoding: base64}
  - {kid: cl1, alg: HS512, secret: %q}
  - {kid: es1, alg: ES256, private_key_file: es.pem}
profiles:
  appverify: {key: av1}
  castlabs: {key: cl1}
  default: {key: es1}
api_keys:
  - {name: admin, sha256: %q, scopes: [admin]}
  - {name: issuer, sha256: %q, scopes: [issue]}
  - {name: introspector, sha256: %q, scopes: [introspect]}
`, avB64, ex.Key, apikey.Hash(testAdminKey), apikey.Hash(issuerKey), apikey.Hash(introspectKey)))
	base, logs := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))

	var tokens []string
	form := "application/x-www-form-urlencoded"
	_, tok := httpDo(t, "GET", base+"/v1/token/+14155552671/log-1", "", "", "")
	tokens = append(tokens, tok)
	_, gen := httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"log test"}`)
	var g map[string]string
	_ = json.Unmarshal([]byte(gen), &g)
	tokens = append(tokens, g["JWT Token"])
	_, issued := httpDo(t, "POST", base+"/v1/tokens", issuerKey, "application/json", `{"sub":"alice","phone":"+14155552671","xid":"log-2"}`)
	var is map[string]any
	_ = json.Unmarshal([]byte(issued), &is)
	tokens = append(tokens, is["token"].(string))
	for _, tk := range tokens {
		httpDo(t, "POST", base+"/v1/introspect", introspectKey, form, "token="+url.QueryEscape(tk))
		body, _ := json.Marshal(map[string]string{"Token": tk, "Signing_key": ex.Key})
		httpDo(t, "POST", base+"/verifyToken", "", "application/json", string(body))
	}
	// Unhappy paths log too: wrong keys, broken tokens, bad bodies.
	httpDo(t, "POST", base+"/v1/introspect", "wrong-"+introspectKey, form, "token="+tokens[0])
	httpDo(t, "POST", base+"/v1/introspect", introspectKey, form, "token="+tokens[0][:len(tokens[0])-3]+"AAA")
	httpDo(t, "GET", base+"/verifyToken", "", "application/json", `{"Token":"`+tokens[1]+`","Signing_key":"short"}`)
	httpDo(t, "GET", base+"/verifyToken", "", "text/plain", `{"Token":"`+tokens[1]+`"}`)
	httpDo(t, "GET", base+"/v1/tokens/log-1", testAdminKey, "", "")
	httpDo(t, "GET", base+"/v1/tokens?phone=%2B14155552671", testAdminKey, "", "")
	httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"xid":"log-1"}`)
	httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"jti":"`+tokens[0]+`"}`)
	for _, p := range []string{"/.well-known/jwks.json", "/healthz", "/readyz", "/nope"} {
		httpDo(t, "GET", base+p, "", "", "")
	}
	_, metricsText := httpDo(t, "GET", base+"/metrics", "", "", "")
	// A reload, which reads every key again.
	_ = syscall.Kill(os.Getpid(), syscall.SIGHUP)
	waitLog(t, logs, "reloaded keys, profiles and API keys")

	secrets := map[string]string{
		"appverify secret": avSecret, "appverify secret (base64)": avB64, "castlabs key": ex.Key,
		"admin API key": testAdminKey, "issuer API key": issuerKey, "introspect API key": introspectKey,
	}
	for i, line := range strings.Split(strings.TrimSpace(string(esPEM)), "\n") {
		if !strings.HasPrefix(line, "-----") {
			secrets[fmt.Sprintf("ES private key line %d", i)] = line
		}
	}
	for i, tk := range tokens {
		secrets[fmt.Sprintf("token %d", i)] = tk
		secrets[fmt.Sprintf("token %d signature", i)] = tk[strings.LastIndex(tk, ".")+1:]
	}
	logText := logs.String()
	if !strings.Contains(logText, `"level":"DEBUG"`) || !strings.Contains(logText, `"route":"POST /v1/introspect"`) {
		t.Fatalf("the session was not logged:\n%s", logText)
	}
	for name, secret := range secrets {
		if strings.Contains(logText, secret) {
			t.Errorf("the log holds the %s", name)
		}
		if strings.Contains(metricsText, secret) {
			t.Errorf("the metrics hold the %s", name)
		}
	}
	if strings.Contains(metricsText, "4155552671") {
		t.Error("a phone number is a metrics label")
	}
}
