package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
)

// The attacks of the third hardening round (issue 22), each against a
// running jwtd.

const issueKey = "issue-key-for-hardening-tests"

// An anonymous burst on the seed route spends the phone's anonymous
// bucket only: a keyed mint for the same phone still succeeds, and the
// anonymous callers stay limited (the SMS-pumping protection holds).
func TestAnonymousBurstLeavesKeyedMintsAlone(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf("api_keys:\n  - {name: crm, sha256: %q, scopes: [issue]}\n", apikey.Hash(issueKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	spellings := []string{"+14155552680", "+1 415 555 2680", "+1-415-555-2680", "+1 (415) 555-2680", "+1.415.555.2680"}
	for i := range 10 {
		code, body := httpDo(t, "GET", fmt.Sprintf("%s/v1/token/%s/pv-%d", base, url.PathEscape(spellings[i%len(spellings)]), i), "", "", "")
		if code != 200 {
			t.Fatalf("anonymous %d (%s): %d %s", i+1, spellings[i%len(spellings)], code, body)
		}
	}
	if code, body := httpDo(t, "GET", base+"/v1/token/+14155552680/pv-10", "", "", ""); code != 429 || !strings.Contains(body, "per_phone") {
		t.Errorf("the 11th anonymous: %d %s, want 429 per_phone", code, body)
	}
	mint := `{"profile":"default","phone":"+14155552680","sub":"alice"}`
	if code, body := httpDo(t, "POST", base+"/v1/tokens", issueKey, "application/json", mint); code != 201 {
		t.Errorf("keyed mint after the anonymous burst: %d %s, want 201", code, body)
	}
	if code, body := httpDo(t, "GET", base+"/v1/token/+14155552680/pv-11", "", "", ""); code != 429 {
		t.Errorf("anonymous after the keyed mint: %d %s, want 429", code, body)
	}
}

// modeOf is a file's permission bits and sticky bit.
func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode() & (fs.ModePerm | fs.ModeSticky)
}

// Every file and directory that holds a secret, or decides who is admin,
// is checked at start and never changed: a loose one is refused with the
// chmod (or chown) that fixes it, and is left as it was; a symbolic link
// where jwtd keeps its own file is refused, its target untouched, even by
// a command that only reads. What jwtd makes is 0600 in a 0700 directory.
func TestLooseFilesRefusedNeverChanged(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	firstStart(t, nil, "--data-dir", data)
	for path, want := range map[string]fs.FileMode{
		data: 0o700, filepath.Join(data, "master.key"): 0o600,
		filepath.Join(data, "admin-api-key.json"): 0o600, filepath.Join(data, "jwtd.db"): 0o600,
	} {
		if got := modeOf(t, path); got != want {
			t.Errorf("%s was made %v, want %v", path, got, want)
		}
	}
	serve := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", data}

	refused := func(what, path string, mode fs.FileMode, says ...string) {
		t.Helper()
		before := modeOf(t, path)
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		out := failedStart(t, serve)
		for _, s := range says {
			if !strings.Contains(out, s) {
				t.Errorf("%s at %v: the refusal does not say %q:\n%s", what, mode, s, out)
			}
		}
		if got := modeOf(t, path); got != mode {
			t.Errorf("%s: mode changed from %v to %v", what, mode, got)
		}
		os.Chmod(path, before)
	}
	masterKey := filepath.Join(data, "master.key")
	admin := filepath.Join(data, "admin-api-key.json")
	refused("master.key", masterKey, 0o666, "writable by group or others", "chmod 600 "+masterKey)
	refused("master.key", masterKey, 0o640, "readable by group or others", "chmod 600 "+masterKey)
	refused("admin-api-key.json", admin, 0o666, "writable by group or others", "chmod go-w "+admin)
	refused("data directory", data, 0o777, "chmod 700 "+data)
	refused("data directory", data, 0o777|fs.ModeSticky, "chmod 700 "+data)
	refused("jwtd.db", filepath.Join(data, "jwtd.db"), 0o666, "chmod go-w "+filepath.Join(data, "jwtd.db"))
	if os.Geteuid() == 0 { // root can give a file away
		os.Chown(admin, 65534, 65534)
		if out := failedStart(t, serve); !strings.Contains(out, "belongs to uid 65534") || !strings.Contains(out, "chown 0 "+admin) {
			t.Errorf("another user's admin-api-key.json:\n%s", out)
		}
		os.Chown(admin, 0, 0)
	}
	// The admin key's hash may be readable (it is no secret), and the
	// directory listable.
	os.Chmod(admin, 0o644)
	os.Chmod(data, 0o755)
	firstStart(t, nil, "--data-dir", data)
	if modeOf(t, admin) != 0o644 || modeOf(t, data) != 0o755 {
		t.Errorf("a start changed modes: %v %v", modeOf(t, admin), modeOf(t, data))
	}

	// A configured master key file others can write or read.
	mk := writeFile(t, dir, "master.b64", newMasterKey()+"\n")
	cfg := writeFile(t, dir, "mk.yaml", "key_store: {master_key_file: master.b64}\n")
	os.Chmod(mk, 0o666)
	if out := failedStart(t, []string{"serve", "--listen", "127.0.0.1:0", "--config", cfg, "--data-dir", filepath.Join(dir, "d2")}); !strings.Contains(out, "chmod 600 "+mk) {
		t.Errorf("a 0666 master_key_file:\n%s", out)
	}
	if got := modeOf(t, mk); got != 0o666 {
		t.Errorf("master_key_file became %v", got)
	}

	// master.key a link to someone's file: keys list refuses it, and the
	// file keeps its mode.
	victim := writeFile(t, dir, "victim.txt", "a file of someone else\n")
	os.Chmod(victim, 0o644)
	saved := masterKey + ".saved"
	os.Rename(masterKey, saved)
	if err := os.Symlink(victim, masterKey); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, nil, "", "keys", "list", "--data-dir", data)
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("keys list with master.key a link: %v", err)
	}
	if got := modeOf(t, victim); got != 0o644 {
		t.Errorf("keys list changed the link's target to %v", got)
	}
	if out := failedStart(t, serve); !strings.Contains(out, "symbolic link") {
		t.Errorf("serve with master.key a link:\n%s", out)
	}
	if got := modeOf(t, victim); got != 0o644 {
		t.Errorf("serve changed the link's target to %v", got)
	}
	os.Remove(masterKey)
	os.Rename(saved, masterKey)
	// A read-only command changes no mode either.
	os.Chmod(masterKey, 0o644)
	if _, _, err := runCLI(t, nil, "", "keys", "list", "--data-dir", data); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("keys list with a 0644 master.key: %v", err)
	}
	if got := modeOf(t, masterKey); got != 0o644 {
		t.Errorf("keys list changed master.key to %v", got)
	}
}

// holdIdle opens n keep-alive connections to addr from 127.0.0.1, each
// asking /healthz once and then idle, as the attack held them; it returns
// them open.
func holdIdle(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		// Not every answer is awaited: a connection the server has already
		// closed to make room answers nothing, and that is what is tested.
		c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		c.SetDeadline(time.Time{})
	}
	return conns
}

// otherClientHTTP is an HTTP client whose connections come from 127.0.0.2.
var otherClientHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
	DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}

// otherClient GETs url from 127.0.0.2.
func otherClient(t *testing.T, url string) string {
	t.Helper()
	resp, err := otherClientHTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// fromOtherClient times /healthz on a new connection from 127.0.0.2: the
// best of three, so that one scheduling hiccup on a loaded machine is not
// taken for a wait (a client kept out waits seconds, not milliseconds).
func fromOtherClient(t *testing.T, base string) time.Duration {
	t.Helper()
	best := time.Hour
	for range 3 {
		start := time.Now()
		resp, err := otherClientHTTP.Get(base + "/healthz")
		took := time.Since(start)
		if err != nil {
			t.Fatalf("/healthz from 127.0.0.2: %v after %v", err, took)
		}
		resp.Body.Close()
		best = min(best, took)
	}
	return best
}

// One address holding as many idle keep-alive connections as the server
// takes does not keep another client out: past its share its own idle
// connections are closed; and when the total is reached by idle
// connections, the longest idle is closed to make room.
func TestOneAddressCannotHoldTheServer(t *testing.T) {
	for _, tc := range []struct{ name, config string }{
		{"per-client share (default)", "http: {max_connections: 40}\n"},
		{"total reached", "http: {max_connections: 40, max_connections_per_client: 40}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base, logs := startServe(t, nil, "--config", writeFile(t, dir, "c.yaml", tc.config), "--data-dir", filepath.Join(dir, "data"))
			http.DefaultClient.CloseIdleConnections()
			holdIdle(t, strings.TrimPrefix(base, "http://"), 40)
			took := fromOtherClient(t, base)
			t.Logf("%s: /healthz from another address, with 40 idle connections from 127.0.0.1: %v", tc.name, took)
			if took > 100*time.Millisecond {
				t.Errorf("/healthz from another address took %v, want within 100ms", took)
			}
			if !strings.Contains(logs.String(), "connection limits") {
				t.Errorf("no log line on shed connections:\n%s", logs)
			}
		})
	}

	// An address whose connections are all busy has its new ones refused
	// at once, while another client is served.
	dir := t.TempDir()
	base, _ := startServe(t, nil, "--config", writeFile(t, dir, "c.yaml", "http: {max_connections: 40, max_connections_per_client: 3}\n"),
		"--data-dir", filepath.Join(dir, "data"))
	http.DefaultClient.CloseIdleConnections()
	addr := strings.TrimPrefix(base, "http://")
	// From 127.0.0.3, which holds nothing else (startServe's polling
	// connection from 127.0.0.1 may not have gone idle yet).
	busy := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 3)}}
	for range 3 { // a request begun and never finished: busy
		c, err := busy.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\n")
	}
	time.Sleep(100 * time.Millisecond) // for the server to read them
	c, err := busy.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || os.IsTimeout(err) {
		t.Errorf("a 4th connection from a busy address: read %d, %v; want it closed at once", n, err)
	}
	if took := fromOtherClient(t, base); took > 100*time.Millisecond {
		t.Errorf("/healthz from another address took %v", took)
	}
	if !strings.Contains(otherClient(t, base+"/metrics"), `jwtd_connections_shed_total{reason="client_refused"}`) {
		t.Error("the refusal is not counted in /metrics")
	}
}

// The README's step that makes .env for compose makes it 0600 whatever
// the umask, git ignores it, and .dockerignore keeps it, with .git, bin/
// and jwtd-data/, out of the build context.
func TestComposeEnvStepKeepsTheMasterKeyPrivate(t *testing.T) {
	root, _ := filepath.Abs("../..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var step string
	for _, c := range readmeCommands(string(readme)) {
		if strings.Contains(c, "> .env") {
			step = c
		}
	}
	if step == "" {
		t.Fatal("the README has no step that makes .env")
	}
	dir := t.TempDir()
	copyTracked(t, root, dir)
	for _, c := range [][]string{{"git", "init", "-q"}, {"bash", "-c", "umask 022; " + step}} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", c, err, out)
		}
	}
	if got := modeOf(t, filepath.Join(dir, ".env")); got != 0o600 {
		t.Errorf("%s made .env %v, want 0600", step, got)
	}
	check := exec.Command("git", "check-ignore", "-q", ".env")
	check.Dir = dir
	if err := check.Run(); err != nil {
		t.Errorf("git check-ignore .env: %v (not ignored)", err)
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{".env", ".git", "bin", "jwtd-data"} {
		ignored := false
		for line := range strings.Lines(string(ignore)) {
			line = strings.TrimSpace(line)
			if ok, _ := filepath.Match(strings.TrimSuffix(line, "/"), path); ok && !strings.HasPrefix(line, "#") {
				ignored = true
			}
		}
		if !ignored {
			t.Errorf(".dockerignore does not keep %s out of the build context", path)
		}
	}
}

// With seed000.require_caller, seed 000's route answers an anonymous
// caller 401 (so it can neither bind an XID nor learn whose an XID is), a
// key without the issue scope 403, and a key with it a token; without
// the option the route stays anonymous, as in the seed.
func TestSeed000CanRequireACaller(t *testing.T) {
	dir := t.TempDir()
	keys := fmt.Sprintf("api_keys:\n  - {name: crm, sha256: %q, scopes: [issue]}\n  - {name: ops, sha256: %q, scopes: [admin]}\n",
		apikey.Hash(issueKey), apikey.Hash(testAdminKey))
	base, _ := startServe(t, nil, "--config", writeFile(t, dir, "on.yaml", keys+"seed000: {require_caller: true}\n"),
		"--data-dir", filepath.Join(dir, "on"))
	u := base + "/v1/token/+14155552681/owned-xid"
	if code, body := httpDo(t, "GET", u, issueKey, "", ""); code != 200 || strings.Count(body, ".") != 2 {
		t.Fatalf("with an issue key: %d %s", code, body)
	}
	for _, other := range []string{"+14155552681", "+14155552682"} { // the owner, and another phone
		req, _ := http.NewRequest("GET", base+"/v1/token/"+other+"/owned-xid", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || !strings.Contains(string(body), "API key") {
			t.Errorf("anonymous, %s: %d %s %q, want 401 whoever owns the XID", other, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if code, body := httpDo(t, "GET", u, testAdminKey, "", ""); code != 403 || !strings.Contains(body, "issue scope") {
		t.Errorf("a key without the issue scope: %d %s", code, body)
	}
	off, _ := startServe(t, nil, "--config", writeFile(t, dir, "off.yaml", keys), "--data-dir", filepath.Join(dir, "off"))
	if code, body := httpDo(t, "GET", off+"/v1/token/+14155552681/tx-1", "", "", ""); code != 200 {
		t.Errorf("anonymous without the option: %d %s", code, body)
	}
}

// The smaller items: a ttl jwtd cannot honour is refused, free text with
// control or bidi characters is refused, /metrics can live on a listener
// of its own, and a revocation through one instance is refused by
// another at once, as the README says.
func TestHardeningSmallItems(t *testing.T) {
	dir := t.TempDir()
	metricsAddr := freeAddr(t)
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf("metrics: {listen: %q}\n", metricsAddr)+
		fmt.Sprintf("api_keys:\n  - {name: ops, sha256: %q, scopes: [admin, issue, introspect, outcome]}\n", apikey.Hash(testAdminKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))

	t.Run("ttl", func(t *testing.T) {
		for ttl, want := range map[string]int{`1e-10`: 400, `0.5`: 400, `1.5`: 400, `0`: 400, `-5`: 400, `1e2`: 400, `"500ms"`: 400,
			`"1.5s"`: 400, `"0s"`: 400, `60`: 201, `"90s"`: 201, `1`: 201} {
			code, body := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"a","ttl":`+ttl+`}`)
			if code != want || want == 400 && !strings.Contains(body, "whole") {
				t.Errorf("ttl %s: %d %s, want %d", ttl, code, body, want)
			}
		}
	})

	t.Run("free text", func(t *testing.T) {
		if code, body := httpDo(t, "GET", base+"/v1/token/+14155552690/tx-text", "", "", ""); code != 200 {
			t.Fatalf("mint: %d %s", code, body)
		}
		outcome := base + "/v1/transactions/tx-text/outcome"
		for _, bad := range []string{`a\u0000b`, `a\u001b[31mred`, `evil\u202egnp.exe`, `\u2066x`, `c1\u0085`} {
			for _, field := range []string{"description", "source"} {
				code, body := httpDo(t, "POST", outcome, testAdminKey, "application/json", `{"status":"verified","`+field+`":"`+bad+`"}`)
				if code != 400 || !strings.Contains(body, field+" holds the") || !strings.Contains(body, "plain text") {
					t.Errorf("%s %q: %d %s", field, bad, code, body)
				}
			}
			code, body := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"`+bad+`"}`)
			if code != 400 || !strings.Contains(body, "sub holds the") {
				t.Errorf("sub %q: %d %s", bad, code, body)
			}
		}
		if code, body := httpDo(t, "POST", outcome, testAdminKey, "application/json", `{"status":"verified","description":"Zürich ✓","source":"cb"}`); code/100 != 2 {
			t.Errorf("plain text refused: %d %s", code, body)
		}
	})

	t.Run("metrics listener", func(t *testing.T) {
		if code, _ := httpDo(t, "GET", base+"/metrics", "", "", ""); code != 404 {
			t.Errorf("/metrics on the API port with metrics.listen set: %d", code)
		}
		if code, body := httpDo(t, "GET", "http://"+metricsAddr+"/metrics", "", "", ""); code != 200 || !strings.Contains(body, "jwtd_tokens_issued_total") {
			t.Errorf("/metrics on metrics.listen: %d %.200s", code, body)
		}
		if code, _ := httpDo(t, "GET", "http://"+metricsAddr+"/v1/tokens/tx-text", testAdminKey, "", ""); code != 404 {
			t.Errorf("the API on the metrics listener: %d", code)
		}
	})

	t.Run("revocation between instances", func(t *testing.T) {
		dir := t.TempDir()
		cfg := castlabsConfig(t, dir)
		data := filepath.Join(dir, "data")
		a, logs := startServe(t, nil, "--config", cfg, "--data-dir", data)
		admin := printedAdminKey(t, logs.String())
		b, _ := startServe(t, nil, "--config", cfg, "--data-dir", data)
		code, out := httpDo(t, "POST", a+"/v1/tokens", admin, "application/json", `{"profile":"default","sub":"alice"}`)
		var minted struct{ Token, JTI string }
		if code != 201 || json.Unmarshal([]byte(out), &minted) != nil {
			t.Fatalf("mint through a: %d %s", code, out)
		}
		introspect := func(base, tok string) (int, string) {
			return httpDo(t, "POST", base+"/v1/introspect", admin, "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode())
		}
		if code, body := introspect(b, minted.Token); code != 200 || !strings.Contains(body, `"active":true`) {
			t.Fatalf("b before the revocation: %d %s", code, body)
		}
		if code, body := httpDo(t, "POST", a+"/v1/revoke", admin, "application/json", fmt.Sprintf(`{"jti":%q}`, minted.JTI)); code/100 != 2 {
			t.Fatalf("revoke through a: %d %s", code, body)
		}
		// The store is read on every verification: the very next answer
		// of the other instance refuses.
		if code, body := introspect(b, minted.Token); code != 200 || !strings.Contains(body, `"active":false`) || !strings.Contains(body, "revoked") {
			t.Errorf("b's first introspection after the revocation: %d %s, want inactive, revoked", code, body)
		}
	})
}
