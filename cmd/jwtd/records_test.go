package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/testservice"
)

const testAdminKey = "test-admin-key"

// recordsConfig has a base64-encoded appverify key (as TeleSign API keys
// come) and a known admin key; storeURL empty means the embedded default.
func recordsConfig(t *testing.T, dir, storeURL string) (path, appverifyKeyB64 string) {
	appverifyKeyB64 = base64.StdEncoding.EncodeToString([]byte("telesign-api-key-0123456789abcdef!"))
	path = writeFile(t, dir, "jwtd.yaml", fmt.Sprintf(`%s
store: {url: %q}
phone: {default_region: US}
ratelimit: {routes: {token: [], issue: [], generate: []}}   # load tests; limits have their own
keys:
  - {kid: av1, alg: HS256, secret: %q, encoding: base64}
profiles:
  appverify: {key: av1, issuer: your_telesign_customer_id}
api_keys:
  - {name: test, sha256: %q, scopes: [admin, issue, introspect]}
`, masterKeySetting(t, dir), storeURL, appverifyKeyB64, apikey.Hash(testAdminKey)))
	return path, appverifyKeyB64
}

// storeURLs are the stores the end-to-end record tests run on: the
// embedded SQLite file, and a database of its own on the shared FerretDB.
func storeURLs(t *testing.T) map[string]func(t *testing.T) string {
	return map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "" },
		"mongodb": func(t *testing.T) string {
			var b [6]byte
			_, _ = rand.Read(b[:])
			return strings.TrimSuffix(testservice.MongoURL(t), "/") + "/jwtde2e_" + hex.EncodeToString(b[:])
		},
	}
}

// A token from /v1/token/{phone}/{xid} verifies with PyJWT (Debian's
// python3-jwt) given the base64-decoded key, with its claims in the seed's
// order and jti last.
func TestPyJWTVerifiesAppVerifyToken(t *testing.T) {
	dir := t.TempDir()
	cfg, keyB64 := recordsConfig(t, dir, "")
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	code, tok := httpDo(t, "GET", base+"/v1/token/"+url.PathEscape("+1 (415) 555-2671")+"/tx-py", "", "", "")
	if code != 200 {
		t.Fatalf("%d %s", code, tok)
	}
	script := `
import base64, json, sys, jwt
token, key = sys.argv[1], base64.b64decode(sys.argv[2])
claims = jwt.decode(token, key, algorithms=["HS256"])
header = jwt.get_unverified_header(token)
print(json.dumps({"header": header, "keys": list(claims), "claims": claims}))
`
	out, err := exec.Command("/usr/bin/python3", "-c", script, tok, keyB64).CombinedOutput()
	if err != nil {
		t.Fatalf("PyJWT refused the token: %v\n%s", err, out)
	}
	var got struct {
		Header map[string]string
		Keys   []string
		Claims map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if strings.Join(got.Keys, ",") != "iss,iat,exp,phn,xid,jti" {
		t.Errorf("claim order %v", got.Keys)
	}
	iat, exp := got.Claims["iat"].(float64), got.Claims["exp"].(float64)
	now := float64(time.Now().Unix())
	if exp-iat != 90 || now-iat < 9 || now-iat > 12 {
		t.Errorf("iat %v exp %v now %v", iat, exp, now)
	}
	if got.Claims["phn"] != "+14155552671" || got.Claims["iss"] != "your_telesign_customer_id" || got.Header["alg"] != "HS256" {
		t.Errorf("claims %v header %v", got.Claims, got.Header)
	}
}

// Get Status, revocation and introspection hold across a restart.
func TestRecordsSurviveRestart(t *testing.T) {
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) { testRecordsSurviveRestart(t, url(t)) })
	}
}

func testRecordsSurviveRestart(t *testing.T, storeURL string) {
	dir := t.TempDir()
	cfg, _ := recordsConfig(t, dir, storeURL)
	args := []string{"--config", cfg, "--data-dir", filepath.Join(dir, "data")}
	base, stop := startServeStoppable(t, nil, args...)
	_, t1 := httpDo(t, "GET", base+"/v1/token/4155552671/tx-r", "", "", "")
	_, t2 := httpDo(t, "GET", base+"/v1/token/4155552671/tx-r", "", "", "")
	if code, body := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"jti":"`+jtiOf(t, t1)+`"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, body)
	}
	stop()

	base, _ = startServeStoppable(t, nil, args...)
	code, body := httpDo(t, "GET", base+"/v1/tokens/tx-r", testAdminKey, "", "")
	var status struct {
		Records []struct{ JTI, Status string }
	}
	_ = json.Unmarshal([]byte(body), &status)
	if code != 200 || len(status.Records) != 2 || status.Records[0].JTI != jtiOf(t, t2) ||
		status.Records[0].Status != "active" || status.Records[1].Status != "revoked" {
		t.Errorf("get status after restart: %d %s", code, body)
	}
	for tok, want := range map[string]string{t1: `{"active":false,"reason":"revoked"}`, t2: `"active":true`} {
		_, body := httpDo(t, "POST", base+"/v1/introspect", testAdminKey, "application/x-www-form-urlencoded", "token="+tok)
		if !strings.Contains(body, want) {
			t.Errorf("introspect after restart: %s, want %s", body, want)
		}
	}
	if code, body := httpDo(t, "GET", base+"/v1/tokens?phone=%2B14155552671", testAdminKey, "", ""); code != 200 || strings.Count(body, `"jti"`) != 2 {
		t.Errorf("list by phone after restart: %d %s", code, body)
	}
	if code, _ := httpDo(t, "GET", base+"/readyz", "", "", ""); code != 200 {
		t.Errorf("readyz: %d", code)
	}
}

func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a token: %q", tok)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ JTI string }
	if err := json.Unmarshal(b, &c); err != nil || c.JTI == "" {
		t.Fatalf("claims %s: %v", b, err)
	}
	return c.JTI
}

// Durability: many concurrent clients mint tokens from the built binary,
// which is killed with SIGKILL mid-load; after a restart every token that
// was answered 200 has its record. On both stores.
func TestDurabilityUnderSIGKILL(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	for name, url := range storeURLs(t) {
		t.Run(name, func(t *testing.T) { testDurability(t, url(t), syscall.SIGKILL) })
	}
}

// SIGTERM mid-load: jwtd stops accepting, finishes what it has, exits 0,
// and nothing it acknowledged is lost.
func TestNothingLostOnSIGTERM(t *testing.T) {
	testDurability(t, "", syscall.SIGTERM)
}

func testDurability(t *testing.T, storeURL string, sig syscall.Signal) {
	dir := t.TempDir()
	cfg, _ := recordsConfig(t, dir, storeURL)
	args := []string{"--config", cfg, "--data-dir", filepath.Join(dir, "data")}
	cmd, base, _, exited := startProcess(t, args...)

	type ack struct{ xid, jti string }
	var mu sync.Mutex
	var acks []ack
	acked := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	var signalled atomic.Bool
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				xid := fmt.Sprintf("d-%d-%d", g, i)
				resp, err := client.Get(fmt.Sprintf("%s/v1/token/+1415555%04d/%s", base, g, xid))
				if err != nil {
					return // killed
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					if signalled.Load() {
						return
					}
					continue
				}
				mu.Lock()
				acks = append(acks, ack{xid, jtiOf(t, string(body))})
				mu.Unlock()
			}
		}()
	}
	// The signal comes mid-load: after 1.5 s and at least 200 tokens
	// acknowledged (a busy machine takes longer to reach them), the 32
	// clients still asking.
	start := time.Now()
	for time.Since(start) < 1500*time.Millisecond || acked() < 200 {
		if time.Since(start) > time.Minute {
			t.Fatalf("only %d tokens were acknowledged in a minute", acked())
		}
		time.Sleep(10 * time.Millisecond)
	}
	signalled.Store(true)
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if sig == syscall.SIGTERM {
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("exit after SIGTERM: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no exit after SIGTERM")
		}
	}

	// Restart on the crashed store, then read every acknowledged token's
	// record from the store itself (by jti: the primary key on both).
	base, _ = startServe(t, nil, args...)
	if code, _ := httpDo(t, "GET", base+"/readyz", "", "", ""); code != 200 {
		t.Fatalf("readyz after restart: %d", code)
	}
	store, err := openStore(context.Background(), &config.Config{
		DataDir: filepath.Join(dir, "data"), Store: config.Store{URL: storeURL, MaxBatch: 1},
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	found := 0
	for _, a := range acks {
		r, err := store.ByJTI(context.Background(), a.jti)
		if err == nil && r.XID == a.xid {
			found++
		} else {
			t.Errorf("acknowledged token %s (xid %s) has no record after the crash: %+v %v", a.jti, a.xid, r, err)
		}
	}
	t.Logf("durability: %d tokens acknowledged before %v, %d records found after restart", len(acks), sig, found)
}

// Scale-out: two jwtd processes share one MongoDB-protocol server
// and the same keys; a token minted through one is found, revoked and
// introspected through the other.
func TestTwoInstancesShareMongo(t *testing.T) {
	dir := t.TempDir()
	cfg, _ := recordsConfig(t, dir, storeURLs(t)["mongodb"](t))
	a, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "a"))
	b, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "b"))

	code, tok := httpDo(t, "GET", a+"/v1/token/+14155552671/shared-1", "", "", "")
	if code != 200 {
		t.Fatalf("mint through a: %d %s", code, tok)
	}
	code, body := httpDo(t, "GET", b+"/v1/tokens/shared-1", testAdminKey, "", "")
	if code != 200 || !strings.Contains(body, jtiOf(t, tok)) {
		t.Fatalf("get status through b: %d %s", code, body)
	}
	if code, body := httpDo(t, "POST", b+"/v1/introspect", testAdminKey, "application/x-www-form-urlencoded", "token="+tok); !strings.Contains(body, `"active":true`) {
		t.Errorf("introspect through b before revocation: %d %s", code, body)
	}
	// The XID is bound to its phone across instances too.
	if code, body := httpDo(t, "GET", b+"/v1/token/+14155550000/shared-1", "", "", ""); code != 409 {
		t.Errorf("the other phone through b: %d %s", code, body)
	}
	if code, body := httpDo(t, "POST", b+"/v1/revoke", testAdminKey, "application/json", `{"xid":"shared-1"}`); code != 200 {
		t.Fatalf("revoke through b: %d %s", code, body)
	}
	code, body = httpDo(t, "POST", a+"/v1/introspect", testAdminKey, "application/x-www-form-urlencoded", "token="+tok)
	if code != 200 || body != "{\"active\":false,\"reason\":\"revoked\"}\n" {
		t.Errorf("introspect through a after revocation through b: %d %s", code, body)
	}
	for _, base := range []string{a, b} {
		if code, _ := httpDo(t, "GET", base+"/readyz", "", "", ""); code != 200 {
			t.Errorf("%s/readyz: %d", base, code)
		}
	}
}
