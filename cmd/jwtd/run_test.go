package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/seedexample"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/token"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// castlabsConfig keys the castlabs profile with the seed's key string, as
// an operator replacing the seed's service with its secret does: tokens the
// seed minted are no records of jwtd's, so the profile does not hold its
// key's tokens to records (record: false) while they live.
func castlabsConfig(t *testing.T, dir string) string {
	ex := seedexample.Load(t)
	return writeFile(t, dir, "jwtd.yaml", fmt.Sprintf(`
keys:
  - {kid: cl1, alg: HS512, secret: %q, encoding: raw}
profiles:
  # The seed's example token is from 2022: castlabs tokens live the
  # profile's ttl (24h unless set), and the seed's never expired.
  castlabs: {key: cl1, ttl: 87600h, record: false}
`, ex.Key))
}

// The curl commands of seed 003 section 7, host replaced, work as printed.
func TestSeed003CurlCommands(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed (make test installs it): ", err)
	}
	dir := t.TempDir()
	base, _ := startServe(t, nil, "--config", castlabsConfig(t, dir), "--data-dir", filepath.Join(dir, "data"))
	host := strings.TrimPrefix(base, "http://")
	ex := seedexample.Load(t)

	// 7.1.1
	out, err := exec.Command(curl, "--silent", "--location", "--request", "POST", host+"/generateToken",
		"--header", "Content-Type: application/json",
		"--data-raw", "{\n    \"user_data\": \"this is test3\"\n}").Output()
	if err != nil {
		t.Fatal(err)
	}
	var gen map[string]string
	if err := json.Unmarshal(out, &gen); err != nil || !strings.HasPrefix(gen["JWT Token"], "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9.") {
		t.Fatalf("generateToken: %s (%v)", out, err)
	}

	// 7.2.1, with the document's token (recovered from its OCR text).
	body := fmt.Sprintf("{\n    \"Token\": %q,\n    \"Signing_key\": %q\n}", ex.Token, ex.Key)
	out, err = exec.Command(curl, "--silent", "--location", "--request", "GET", base+"/verifyToken",
		"--header", "Content-Type: application/json", "--data-raw", body).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	_ = json.Compact(&want, ex.Expected)
	if strings.TrimSpace(string(out)) != want.String() {
		t.Errorf("verifyToken:\n got %s\nwant %s", out, want.String())
	}

	// The token generated in 7.1 verifies the same way.
	body = fmt.Sprintf(`{"Token": %q, "Signing_key": %q}`, gen["JWT Token"], ex.Key)
	out, _ = exec.Command(curl, "--silent", "--request", "GET", base+"/verifyToken",
		"--header", "Content-Type: application/json", "--data-raw", body).Output()
	if !strings.Contains(string(out), `"Signature Verification":true`) || !strings.Contains(string(out), `"payload":{"data":"this is test3"`) {
		t.Errorf("generated token: %s", out)
	}
}

// With no configuration, serve makes its keys, keeps them in the record
// store sealed under a master key it makes in the data directory (0600),
// and keeps them across restarts, so tokens stay verifiable.
func TestZeroConfigKeysPersist(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data")}
	firstStart(t, env)
	tok, stderr, err := runCLI(t, env, "", "token", "sign", "--sub", "alice", "--data", `{"role":"ops"}`)
	if err != nil {
		t.Fatalf("sign: %v %s", err, stderr)
	}
	tok = strings.TrimSpace(tok)

	base, _ := startServe(t, env)
	jwks1 := get(t, base+"/.well-known/jwks.json")
	if !strings.Contains(jwks1, `"alg":"ES256"`) || strings.Contains(jwks1, `"oct"`) {
		t.Errorf("JWKS %s", jwks1)
	}
	out, stderr, err := runCLI(t, env, tok+"\n", "token", "verify", "-")
	if out = compact(out); err != nil || !strings.Contains(out, `"active":true`) || !strings.Contains(out, `"sub":"alice"`) {
		t.Errorf("verify after restart: %v %s %s", err, out, stderr)
	}
	// The keys are in the store, sealed under the master key made in the
	// data directory; no key file is written.
	if _, err := os.Stat(filepath.Join(dir, "data", "keys")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a keys directory was made: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, "data", "master.key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("master.key: %v %v", info, err)
	}
}

// The CLI reads the keys the server made, from wherever it is run with the
// server's configuration (a relative data_dir is relative to the file); it
// never makes keys of its own. keys show prints a castlabs key that a
// castlabs client can send as Signing_key.
func TestCLIFindsTheServersKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "jwtd.yaml", "data_dir: ./state\n")
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)
	if _, _, err := runCLI(t, nil, "", "token", "verify", "--config", cfg, "x.y.z"); err == nil ||
		!strings.Contains(err.Error(), filepath.Join(dir, "state", "master.key")) || !strings.Contains(err.Error(), "--config") {
		t.Errorf("verify before the server ever ran: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "state")); len(entries) != 0 {
		t.Errorf("verify made %v", entries)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("verify made %v in the working directory", entries)
	}

	base, _ := startServe(t, nil, "--config", cfg)
	key, stderr, err := runCLI(t, nil, "", "keys", "show", "--config", cfg, "--profile", "castlabs")
	if err != nil || !strings.Contains(stderr, "WARNING") {
		t.Fatalf("keys show: %v %s", err, stderr)
	}
	code, out := httpDo(t, "POST", base+"/generateToken", "", "application/json", `{"user_data":"u"}`)
	var minted struct {
		Token string `json:"JWT Token"`
	}
	if code != 200 || json.Unmarshal([]byte(out), &minted) != nil {
		t.Fatalf("generateToken: %d %s", code, out)
	}
	body, _ := json.Marshal(map[string]string{"Token": minted.Token, "Signing_key": strings.TrimSpace(key)})
	if code, out := httpDo(t, "POST", base+"/verifyToken", "", "application/json", string(body)); code != 200 ||
		!strings.Contains(out, `"Signature Verification":true`) {
		t.Errorf("verifyToken with the key keys show printed: %d %s", code, out)
	}
	out, stderr, err = runCLI(t, nil, "", "token", "verify", "--config", cfg, minted.Token)
	if err != nil || !strings.Contains(out, `"active": true`) {
		t.Errorf("token verify from another directory: %v %s %s", err, out, stderr)
	}
	// The appverify key in the form a TeleSign backend holds it.
	b64, _, err := runCLI(t, nil, "", "keys", "show", "--config", cfg, "--profile", "appverify")
	if raw, derr := base64.StdEncoding.DecodeString(strings.TrimSpace(b64)); err != nil || derr != nil || len(raw) < 32 {
		t.Errorf("appverify key %q: %v %v", b64, err, derr)
	}
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data")}

	// Every command answers --help with its usage, exit status 0.
	for _, args := range [][]string{
		{"--help"}, {"serve", "--help"}, {"token", "--help"}, {"token", "sign", "--help"},
		{"token", "verify", "--help"}, {"token", "decode", "--help"}, {"keys", "--help"}, {"keys", "generate", "--help"},
		{"apikey", "--help"}, {"apikey", "create", "--help"},
	} {
		out, errOut, err := runCLI(t, env, "", args...)
		if err != nil || !strings.Contains(out+errOut, "Usage") {
			t.Errorf("%v: %v %q %q", args, err, out, errOut)
		}
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"token"}, {"token", "frob"}, {"keys", "frob"}, {"serve", "--bogus"}} {
		if _, _, err := runCLI(t, env, "", args...); err != exitCode(2) {
			t.Errorf("%v: got %v, want exit status 2", args, err)
		}
	}
	out, _, err := runCLI(t, env, "", "version")
	if err != nil || !strings.HasPrefix(out, "jwtd ") {
		t.Errorf("version: %q %v", out, err)
	}

	// sign → decode → verify, and a tampered token fails verify with exit 1.
	firstStart(t, env)
	tok, _, err := runCLI(t, env, "", "token", "sign", "--profile", "appverify", "--phone", "+14155552671", "--xid", "tx-9")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	// token sign mints through the server's path: the token is recorded.
	store, err := sqlite.Open(filepath.Join(dir, "data", "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := store.ByXID(context.Background(), "tx-9")
	store.Close()
	if err != nil || len(recs) != 1 || recs[0].TokenSHA256 != token.HashToken(tok) || recs[0].Phone != "+14155552671" {
		t.Errorf("the signed token's record: %+v, %v", recs, err)
	}
	if _, errOut, err := runCLI(t, env, "", "token", "sign", "--profile", "appverify", "--phone", "+14155550000", "--xid", "tx-9"); err == nil ||
		!strings.Contains(errOut+fmt.Sprint(err), "another phone") {
		t.Errorf("the XID of another phone: %v %s", err, errOut)
	}
	out, _, err = runCLI(t, env, "", "token", "decode", tok)
	if out = compact(out); err != nil || !strings.Contains(out, `"phn":"+14155552671"`) || !strings.Contains(out, "not checked") {
		t.Errorf("decode: %v %s", err, out)
	}
	out, _, err = runCLI(t, env, "", "token", "verify", tok)
	if out = compact(out); err != nil || !strings.Contains(out, `"kid":"hs-`) {
		t.Errorf("verify: %v %s", err, out)
	}
	// Revoked, the token no longer verifies: as the server introspects it.
	store, err = sqlite.Open(filepath.Join(dir, "data", "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.RevokeXID(context.Background(), "tx-9", time.Now())
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, env, "", "token", "verify", tok)
	if out = compact(out); err != exitCode(1) || !strings.Contains(out, `"reason":"revoked"`) {
		t.Errorf("verify a revoked token: %v %s", err, out)
	}
	out, _, err = runCLI(t, env, "", "token", "verify", tok[:len(tok)-2]+"AA")
	if out = compact(out); err != exitCode(1) || !strings.Contains(out, `"reason":"bad_signature"`) {
		t.Errorf("tampered: %v %s", err, out)
	}
	if _, _, err := runCLI(t, env, "", "token", "sign", "--profile", "nope"); err == nil {
		t.Error("unknown profile signed")
	}
	if _, _, err := runCLI(t, env, "", "token", "decode", "garbage"); err == nil {
		t.Error("garbage decoded")
	}

	// apikey create prints a key once, and the api_keys entry of its hash.
	key, entry, err := runCLI(t, env, "", "apikey", "create", "--name", "ops", "--scopes", "admin,issue")
	key = strings.TrimSpace(key)
	if err != nil || !strings.HasPrefix(key, "jwtd_") ||
		!strings.Contains(entry, fmt.Sprintf(`{name: ops, sha256: %q, scopes: [admin, issue]}`, apikey.Hash(key))) {
		t.Errorf("apikey create: %v %q %s", err, key, entry)
	}
	if _, errOut, err := runCLI(t, env, "", "apikey", "create", "--name", "ops", "--scopes", "root"); err != exitCode(2) || !strings.Contains(errOut, `scope "root"`) {
		t.Errorf("apikey create with an unknown scope: %v %s", err, errOut)
	}

	// keys generate writes a usable key and a configuration snippet.
	keyFile := filepath.Join(dir, "es.pem")
	_, errOut, err := runCLI(t, env, "", "keys", "generate", "--alg", "ES384", "--kid", "e1", "--out", keyFile)
	if err != nil || !strings.Contains(errOut, `private_key_file: "`+keyFile+`"`) {
		t.Fatalf("keys generate: %v %s", err, errOut)
	}
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", info, err)
	}
	before, _ := os.ReadFile(keyFile)
	_, _, err = runCLI(t, env, "", "keys", "generate", "--alg", "ES384", "--out", keyFile)
	if after, _ := os.ReadFile(keyFile); !bytes.Equal(after, before) {
		t.Error("keys generate overwrote a file")
	}
	if want := keyFile + " exists, and jwtd will not overwrite a key (the one there may still sign or verify tokens): " +
		"give another --out, or remove " + keyFile + " first if you are sure no configuration uses it"; err == nil || err.Error() != want {
		t.Errorf("keys generate over a file: %v, want %s", err, want)
	}
	cfg := writeFile(t, dir, "c.yaml", "keys:\n  - {kid: e1, alg: ES384, private_key_file: es.pem}\nprofiles:\n  p: {key: e1, ttl: 1m}\n")
	tok, errOut, err = runCLI(t, env, "", "token", "sign", "--config", cfg, "--profile", "p")
	if err != nil {
		t.Fatalf("sign with generated key: %v %s", err, errOut)
	}
	if out, _, err := runCLI(t, env, "", "token", "verify", "--config", cfg, strings.TrimSpace(tok)); err != nil {
		t.Errorf("verify with generated key: %v %s", err, out)
	}
	secret, errOut, err := runCLI(t, env, "", "keys", "generate", "--alg", "HS512")
	if err != nil || len(strings.TrimSpace(secret)) != 86 || !strings.Contains(errOut, "encoding: base64url") {
		t.Errorf("HS512 secret: %q %q %v", secret, errOut, err)
	}
	if _, _, err := runCLI(t, env, "", "keys", "generate", "--alg", "none"); err != exitCode(2) {
		t.Errorf("alg none: %v", err)
	}
}

// A weak HMAC key stops the start with a message naming the key and why.
func TestServeRefusesWeakKey(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", "keys:\n  - {kid: weak1, alg: HS256, secret: password}\nprofiles:\n  appverify: {key: weak1}\n")
	_, _, err := runCLI(t, nil, "", "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), `key "weak1"`) || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("got %v", err)
	}
}

// Settings that are checked by building them are reported together, each
// with its key, before anything is opened.
func TestServeReportsSettingsTogether(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", `
phone: {default_region: XX}
ratelimit: {per_ip: "lots", trusted_proxies: ["nope"]}
`)
	_, _, err := runCLI(t, nil, "", "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
	for _, want := range []string{"ratelimit.per_ip", "ratelimit.trusted_proxies", "default_region"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to name %s", err, want)
		}
	}
	if _, statErr := os.Stat(filepath.Join(dir, "data", "jwtd.db")); statErr == nil {
		t.Error("the store was opened for a configuration that cannot serve")
	}
}

// compact removes the indentation of the CLI's JSON output.
func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return s
	}
	return b.String()
}

// A key file others can read is refused, with the fix in the message,
// unless allow_readable_key_files says the platform mounts secrets so; one
// others can write is refused always.
func TestServeChecksKeyFileModes(t *testing.T) {
	dir := t.TempDir()
	secret := writeFile(t, dir, "hs.secret", strings.Repeat("s", 32))
	sign := func(extra string) error {
		cfg := writeFile(t, dir, "c.yaml", "keys:\n  - {kid: hs1, alg: HS256, secret_file: hs.secret}\nprofiles:\n  appverify: {key: hs1}\n"+extra)
		_, _, err := runCLI(t, nil, "", "token", "sign", "--config", cfg, "--profile", "appverify", "--phone", "+14155552671",
			"--data-dir", filepath.Join(dir, "data"))
		return err
	}
	firstStart(t, nil, "--data-dir", filepath.Join(dir, "data"))
	if err := sign(""); err != nil {
		t.Fatalf("0600: %v", err)
	}
	os.Chmod(secret, 0o644)
	if err := sign(""); err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), "allow_readable_key_files") {
		t.Errorf("0644: %v", err)
	}
	if err := sign("allow_readable_key_files: true\n"); err != nil {
		t.Errorf("0644 allowed: %v", err)
	}
	os.Chmod(secret, 0o666)
	if err := sign("allow_readable_key_files: true\n"); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("0666 with readable allowed: %v", err)
	}
}

// Every command-line mistake says what is wrong and how the command is
// used, and exits 2; none is ignored.
func TestCommandLineMistakes(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data")}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"serve", "--port", "8081"}, "unknown flag: --port"},
		{[]string{"serve", "--lisen", "127.0.0.1:9090"}, "unknown flag: --lisen; did you mean --listen?"},
		{[]string{"serve", "-listen", "127.0.0.1:9090"}, "did you mean --listen? (a flag's name takes two dashes)"},
		{[]string{"keys", "show", "--profiel", "castlabs"}, "unknown flag: --profiel; did you mean --profile?"},
		{[]string{"serve", "--listen"}, "flag needs an argument: --listen"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"token", "sign", "--profil", "default"}, "unknown flag: --profil"},
		{[]string{"token", "sign", "--profile", "default", "extra"}, `unexpected argument "extra"`},
		{[]string{"keys", "generate", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"token", "mint"}, `unknown subcommand "mint"`},
		{[]string{"apikey", "delete"}, `unknown subcommand "delete"`},
	} {
		_, stderr, err := runCLI(t, env, "", tc.args...)
		if err != exitCode(2) || !strings.Contains(stderr, tc.says) || !strings.Contains(stderr, "Usage:") {
			t.Errorf("%v: %v\n%s", tc.args, err, stderr)
		}
	}
	busy := freeAddr(t)
	l, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, _, err := runCLI(t, env, "", "serve", "--listen", busy); err == nil || !strings.Contains(err.Error(), "--listen, JWTD_LISTEN") {
		t.Errorf("serve on an address in use: %v", err)
	}
	firstStart(t, env)
	if _, _, err := runCLI(t, env, "", "token", "sign", "--profile", "appverify"); err == nil || !strings.Contains(err.Error(), "phone") {
		t.Errorf("token sign --profile appverify without --phone: %v", err)
	}
	// A mistyped profile is named with the one most likely meant.
	for _, cmd := range [][]string{{"token", "sign"}, {"keys", "show"}} {
		_, _, err := runCLI(t, env, "", append(cmd, "--profile", "defualt")...)
		if want := `unknown profile "defualt": did you mean default? the profiles are appverify, castlabs, default`; err == nil || err.Error() != want {
			t.Errorf("%v --profile defualt: %v, want %s", cmd, err, want)
		}
	}
}

// A JWTD_ variable jwtd does not read is told at start, with the one most
// likely meant: a log line of serve, a warning of the other commands; the
// variables jwtd reads and those of its tests are not.
func TestRunWarnsOfUnreadEnv(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"JWTD_DATA_DIR": dir, "JWTD_LISEN": "127.0.0.1:9090", "JWTD_TEST_REQUIRE_SERVICES": "1"}
	_, logs, stop := startServeFull(t, env)
	stop()
	want := `"level":"WARN","msg":"JWTD_LISEN is set, but jwtd reads no such variable; did you mean JWTD_LISTEN?","variable":"JWTD_LISEN","did_you_mean":"JWTD_LISTEN"`
	if out := logs.String(); !strings.Contains(out, want) || strings.Count(out, "reads no such variable") != 1 {
		t.Errorf("serve's logs lack the one warning %s:\n%s", want, out)
	}
	env = map[string]string{"JWTD_DATA_DIR": dir, "JWTD_DATADIR": dir}
	_, stderr, _ := runCLI(t, env, "", "keys", "list")
	if want := "jwtd: warning: JWTD_DATADIR is set, but jwtd reads no such variable; did you mean JWTD_DATA_DIR?\n"; !strings.HasPrefix(stderr, want) {
		t.Errorf("keys list: %q, want it to start with %q", stderr, want)
	}
}

// On shutdown, "stopped" is the last line: the audit entries still held
// (here a refused API key, counted until the trail flushes) are written,
// and logged, before it.
func TestRunLogsStoppedLast(t *testing.T) {
	base, logs, stop := startServeFull(t, map[string]string{"JWTD_DATA_DIR": t.TempDir()})
	if code, _ := httpDo(t, "GET", base+"/v1/keys", "jwtd_not-a-key", "", ""); code != 401 {
		t.Fatalf("an unknown key: %d", code)
	}
	stop()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) {
		t.Errorf("the last line is %s, not stopped:\n%s", last, logs)
	}
	if !strings.Contains(logs.String(), `"action":"auth.refused"`) {
		t.Errorf("the refusal was not audited:\n%s", logs)
	}
}

// Each command's --help lists the environment variables it reads, with
// JWTD_MASTER_KEY wherever the managed keys are opened, and apikey create
// lists every scope there is.
func TestHelpSaysWhatApplies(t *testing.T) {
	help := func(args ...string) string {
		_, stderr, err := runCLI(t, nil, "", append(args, "--help")...)
		if err != nil {
			t.Fatalf("%v --help: %v", args, err)
		}
		return stderr
	}
	for _, tc := range []struct {
		args []string
		env  string // the Environment: line, "" for none
	}{
		{[]string{"serve"}, "JWTD_CONFIG, JWTD_LISTEN, JWTD_DATA_DIR, JWTD_LOG_LEVEL, JWTD_LEEWAY, JWTD_STORE_URL, JWTD_DEFAULT_REGION, JWTD_RATELIMIT_URL, JWTD_MASTER_KEY"},
		{[]string{"keys", "list"}, "JWTD_CONFIG, JWTD_DATA_DIR, JWTD_STORE_URL, JWTD_MASTER_KEY"},
		{[]string{"keys", "rotate"}, "JWTD_CONFIG, JWTD_DATA_DIR, JWTD_STORE_URL, JWTD_MASTER_KEY"},
		{[]string{"token", "sign"}, "JWTD_CONFIG, JWTD_DATA_DIR, JWTD_STORE_URL, JWTD_DEFAULT_REGION, JWTD_MASTER_KEY"},
		{[]string{"token", "verify"}, "JWTD_CONFIG, JWTD_DATA_DIR, JWTD_LEEWAY, JWTD_STORE_URL, JWTD_MASTER_KEY"},
		{[]string{"token", "decode"}, ""},
		{[]string{"keys", "generate"}, ""},
		{[]string{"apikey", "create"}, "JWTD_CONFIG, JWTD_DATA_DIR"},
	} {
		out := help(tc.args...)
		var got string
		for line := range strings.Lines(out) {
			if rest, ok := strings.CutPrefix(line, "Environment: "); ok {
				got = strings.TrimSpace(rest)
			}
		}
		if got != tc.env {
			t.Errorf("%v --help: environment %q, want %q", tc.args, got, tc.env)
		}
		if strings.Contains(out, "generated keys") {
			t.Errorf("%v --help still says the data directory holds generated keys:\n%s", tc.args, out)
		}
	}
	out := help("apikey", "create")
	for _, scope := range apikey.Scopes() {
		if strings.Count(out, scope) < 2 { // the synopsis and --scopes
			t.Errorf("apikey create --help lacks scope %s:\n%s", scope, out)
		}
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Under make run (no configuration file, the admin key made on first
// start), apikey create prints an api_keys block that keeps that admin key:
// started with the block as its configuration, jwtd accepts both keys.
// Once api_keys are configured, it prints the new entry alone.
func TestAPIKeyCreateKeepsTheAdminKey(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data")}
	_, logs, stop := startServeFull(t, env)
	admin := printedAdminKey(t, logs.String())
	stop()
	key, stderr, err := runCLI(t, env, "", "apikey", "create", "--name", "callbacks", "--scopes", "outcome")
	key = strings.TrimSpace(key)
	_, block, found := strings.Cut(stderr, "\napi_keys:\n")
	if err != nil || !found || strings.Count(block, "  - {name:") != 2 || !strings.Contains(block, "{name: admin,") {
		t.Fatalf("apikey create without api_keys: %v\n%s", err, stderr)
	}
	cfg := writeFile(t, dir, "jwtd.yaml", "api_keys:\n"+block)
	base, _ := startServe(t, env, "--config", cfg)
	for k, want := range map[string]string{admin: `"scopes":["admin","issue","introspect","outcome"]`, key: `"scopes":["outcome"]`} {
		if code, out := httpDo(t, "GET", base+"/v1/whoami", k, "", ""); code != 200 || !strings.Contains(out, want) {
			t.Errorf("whoami with %.12s…: %d %s", k, code, out)
		}
	}
	_, stderr, err = runCLI(t, env, "", "apikey", "create", "--config", cfg, "--name", "more", "--scopes", "issue")
	if err != nil || strings.Contains(stderr, "name: admin") || !strings.Contains(stderr, "  - {name: more,") {
		t.Errorf("apikey create with api_keys configured: %v\n%s", err, stderr)
	}
}

// A record store that cannot be reached is named (without its password)
// with what to check.
func TestStoreUnreachableSaysWhere(t *testing.T) {
	err := storeUnreachable("mongodb://jwtd:s3cret@db1:27017/jwtd", errors.New("server selection error"))
	for _, want := range []string{"store.url mongodb://jwtd:xxxxx@db1:27017/jwtd", "server selection error", "does db1:27017 resolve", "--store-url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the password is shown: %v", err)
	}
}
