package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
)

// SIGHUP reloads keys without dropping the listener; removing a key that
// signs now is refused and the running keys stay.
func TestSIGHUPReload(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.pem", "b.pem"} {
		if _, _, err := runCLI(t, nil, "", "keys", "generate", "--alg", "ES256", "--out", filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := writeFile(t, dir, "c.yaml", `
keys:
  - {kid: a, alg: ES256, private_key_file: a.pem}
profiles:
  default: {key: a}
`)
	cmd, base, logs, _ := startProcess(t, "--config", cfgPath, "--data-dir", filepath.Join(dir, "data"))
	if jwks := get(t, base+"/.well-known/jwks.json"); !strings.Contains(jwks, `"kid":"a"`) || strings.Contains(jwks, `"kid":"b"`) {
		t.Fatalf("JWKS before: %s", jwks)
	}

	// Publish b before it signs.
	writeFile(t, dir, "c.yaml", `
keys:
  - {kid: a, alg: ES256, private_key_file: a.pem}
  - {kid: b, alg: ES256, private_key_file: b.pem, publish_only: true}
profiles:
  default: {key: a}
`)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "reloaded keys, profiles and API keys")
	if jwks := get(t, base+"/.well-known/jwks.json"); !strings.Contains(jwks, `"kid":"b"`) {
		t.Fatalf("JWKS after publishing b: %s", jwks)
	}

	// Dropping a, which signs, is refused; a keeps serving.
	writeFile(t, dir, "c.yaml", `
keys:
  - {kid: b, alg: ES256, private_key_file: b.pem}
profiles:
  default: {key: b}
`)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "reload refused")
	if !strings.Contains(logs.String(), `\"a\" signs now`) {
		t.Errorf("refusal does not say why:\n%s", logs)
	}
	if jwks := get(t, base+"/.well-known/jwks.json"); !strings.Contains(jwks, `"kid":"a"`) {
		t.Errorf("a was dropped: %s", jwks)
	}

	// A setting a reload does not apply, but the next start would refuse,
	// is refused too.
	writeFile(t, dir, "c.yaml", `
keys:
  - {kid: a, alg: ES256, private_key_file: a.pem}
  - {kid: b, alg: ES256, private_key_file: b.pem}
profiles:
  default: {key: a}
ratelimit: {per_ip: "often"}
`)
	logs.Reset()
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "reload refused")
	if !strings.Contains(logs.String(), "ratelimit.per_ip") {
		t.Errorf("refusal does not name the setting:\n%s", logs)
	}
}

// SIGTERM: stop accepting, finish in-flight requests, exit 0.
func TestSIGTERMGraceful(t *testing.T) {
	dir := t.TempDir()
	cmd, _, logs, done := startProcess(t, "--data-dir", dir)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stop line:\n%s", logs)
	}
}

// SIGHUP reloads the API keys: a key taken out of the file stops working
// without a restart, and a key put in starts.
func TestSIGHUPReloadsAPIKeys(t *testing.T) {
	dir := t.TempDir()
	config := func(key string) string {
		return fmt.Sprintf("api_keys:\n  - {name: ops, sha256: %q, scopes: [admin]}\n", apikey.Hash(key))
	}
	cfgPath := writeFile(t, dir, "c.yaml", config("old-key"))
	cmd, base, logs, _ := startProcess(t, "--config", cfgPath, "--data-dir", filepath.Join(dir, "data"))
	status := func(key string) int {
		req, _ := http.NewRequest("GET", base+"/v1/tokens/tx-none", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("old-key"); got != 404 {
		t.Fatalf("old key before the reload: %d, want 404 (authorized, unknown XID)", got)
	}
	writeFile(t, dir, "c.yaml", config("new-key"))
	_ = cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, logs, "reloaded keys, profiles and API keys")
	if got := status("old-key"); got != 401 {
		t.Errorf("old key after the reload: %d, want 401", got)
	}
	if got := status("new-key"); got != 404 {
		t.Errorf("new key after the reload: %d, want 404", got)
	}
}
