package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/testservice"
)

// managedBackend is one record store the managed-key tests run on: the
// flags and environment every instance on it gets.
type managedBackend struct {
	name     string
	storeURL string   // "" for the embedded SQLite file, in a data directory the instances share
	env      []string // JWTD_MASTER_KEY for MongoDB
}

// managedBackends are SQLite always, and MongoDB when the test services
// run: without them the MongoDB half is a skipped subtest (a failure under
// JWTD_TEST_REQUIRE_SERVICES=1) and the SQLite half still runs.
func managedBackends(t *testing.T) []managedBackend {
	t.Helper()
	backends := []managedBackend{{name: "sqlite"}}
	if os.Getenv("JWTD_TEST_MONGO_URL") == "" {
		t.Run("mongodb", func(t *testing.T) { testservice.MongoURL(t) })
		return backends
	}
	return append(backends, mongoBackend(t))
}

// mongoBackend is a database of its own on the shared FerretDB, with a
// master key.
func mongoBackend(t *testing.T) managedBackend {
	t.Helper()
	return managedBackend{name: "mongodb", storeURL: storeURLs(t)["mongodb"](t), env: []string{"JWTD_MASTER_KEY=" + newMasterKey()}}
}

// masterKeyOf is the master key of b's instances: the one in its
// environment, or the one the embedded store's first start made in the
// data directory.
func masterKeyOf(t *testing.T, b managedBackend, data string) string {
	t.Helper()
	if m := strings.TrimPrefix(strings.Join(b.env, ""), "JWTD_MASTER_KEY="); m != "" {
		return m
	}
	file, err := os.ReadFile(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatalf("the embedded store's master key was not made in the data directory: %v", err)
	}
	return strings.TrimSpace(string(file))
}

func newMasterKey() string {
	b := make([]byte, keys.MasterKeySize)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// masterKeySetting writes a new master key to dir/master.key and returns
// the configuration line that names it: what every instance on one
// MongoDB needs.
func masterKeySetting(t *testing.T, dir string) string {
	t.Helper()
	writeFile(t, dir, "master.key", newMasterKey()+"\n")
	return "key_store: {master_key_file: master.key}"
}

// managedConfig rotates the default profile's key every rotateEvery, with
// a JWKS max-age of a second, and lets the test mint freely.
func managedConfig(t *testing.T, dir string, b managedBackend, rotateEvery string) string {
	t.Helper()
	store := ""
	if b.storeURL != "" {
		store = fmt.Sprintf("store: {url: %q}\n", b.storeURL)
	}
	return writeFile(t, dir, "jwtd.yaml", fmt.Sprintf(`%sleeway: 1s
key_store: {sync_interval: 250ms, jwks_max_age: 1s}
profiles:
  default: {managed: {alg: ES256, rotate_every: %s}, ttl: 8s}
ratelimit: {per_ip: "100000 per second", per_phone: "100000 per second"}
api_keys:
  - {name: test, sha256: %q, scopes: [admin, issue, introspect]}
`, store, rotateEvery, apikey.Hash(testAdminKey)))
}

// cachingVerifier is a relying party as the issue describes it: it
// fetches the JWKS from any instance, caches it for the max-age the
// answer gives, and never fetches early, not even for an unknown kid.
type cachingVerifier struct {
	set     jose.JSONWebKeySet
	expires time.Time
}

func (v *cachingVerifier) verify(base, tok string) error {
	if time.Now().After(v.expires) {
		resp, err := http.Get(base + "/.well-known/jwks.json")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		maxAge, err := strconv.Atoi(strings.TrimPrefix(resp.Header.Get("Cache-Control"), "public, max-age="))
		if err != nil {
			return fmt.Errorf("Cache-Control %q", resp.Header.Get("Cache-Control"))
		}
		v.set = jose.JSONWebKeySet{}
		if err := json.NewDecoder(resp.Body).Decode(&v.set); err != nil {
			return err
		}
		v.expires = time.Now().Add(time.Duration(maxAge) * time.Second)
	}
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return err
	}
	kid := jws.Signatures[0].Header.KeyID
	found := v.set.Key(kid)
	if len(found) == 0 {
		return fmt.Errorf("unknown kid %q in a JWKS cached until %s", kid, v.expires.Format(time.StampMilli))
	}
	_, err = jws.Verify(found[0])
	return err
}

// Two instances on one store with no keys configured share their keys;
// with a key rotated every few seconds and a JWKS max-age of one, a
// client that caches the JWKS for its max-age verifies every token minted
// on either, and introspection on the other instance finds each active,
// for half a minute and across several rotations.
func TestManagedKeysAcrossInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("half a minute of rotations")
	}
	for _, b := range managedBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := managedConfig(t, dir, b, "4s")
			var wg sync.WaitGroup
			bases := make([]string, 2)
			for i := range bases {
				wg.Go(func() {
					data := filepath.Join(dir, "data") // one directory: SQLite instances share the file
					if b.storeURL != "" {
						data = filepath.Join(dir, fmt.Sprint("data", i)) // MongoDB instances share nothing else
					}
					_, bases[i], _, _ = startProcessEnv(t, b.env, "--config", cfg, "--data-dir", data)
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}

			type minted struct {
				tok, appverify string
				at             time.Time
				on             int
			}
			var pending []minted
			verifier := &cachingVerifier{}
			kids := map[string]bool{}
			failures, checks := 0, 0
			check := func(m minted, again bool) {
				checks++
				other := bases[1-m.on]
				if err := verifier.verify(bases[(m.on+len(pending))%2], m.tok); err != nil {
					failures++
					t.Errorf("token minted on %d at %s (checked again: %v): %v", m.on, m.at.Format(time.StampMilli), again, err)
				}
				for _, tok := range []string{m.tok, m.appverify} {
					code, out := introspect(t, other, tok)
					if code != 200 || !strings.Contains(out, `"active":true`) {
						failures++
						t.Errorf("introspection on the other instance of a token minted on %d at %s (again: %v): %d %s", m.on, m.at.Format(time.StampMilli), again, code, out)
					}
				}
			}
			deadline := time.Now().Add(30 * time.Second)
			for i := 0; time.Now().Before(deadline) && failures < 5; i++ {
				on := i % 2
				code, out := httpDo(t, "POST", bases[on]+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"alice"}`)
				if code != 201 {
					t.Fatalf("mint on %d: %d %s", on, code, out)
				}
				var issued struct{ Token string }
				_ = json.Unmarshal([]byte(out), &issued)
				code, av := httpDo(t, "GET", fmt.Sprintf("%s/v1/token/+14155552671/tx-%d-%d", bases[on], i, on), "", "", "")
				if code != 200 {
					t.Fatalf("appverify mint on %d: %d %s", on, code, av)
				}
				m := minted{tok: issued.Token, appverify: strings.TrimSpace(av), at: time.Now(), on: on}
				jws, _ := jose.ParseSignedCompact(m.tok, []jose.SignatureAlgorithm{jose.ES256})
				kids[jws.Signatures[0].Header.KeyID] = true
				check(m, false)
				// Every token again when it is near its end (ttl 8s): its
				// key may have retired since, and must still verify.
				pending = append(pending, m)
				for len(pending) > 0 && time.Since(pending[0].at) > 6*time.Second {
					check(pending[0], true)
					pending = pending[1:]
				}
				time.Sleep(50 * time.Millisecond)
			}
			if len(kids) < 5 {
				t.Errorf("tokens were signed by %d keys in half a minute of 4-second rotations; want at least 5", len(kids))
			}
			t.Logf("%s: %d checks (a cached-JWKS verification and two introspections on the other instance each) of tokens signed by %d keys; %d failed",
				b.name, checks, len(kids), failures)
		})
	}
}

// keyList is GET /v1/keys.
func keyList(t *testing.T, base string) []keys.Info {
	t.Helper()
	code, out := httpDo(t, "GET", base+"/v1/keys", testAdminKey, "", "")
	if code != 200 {
		t.Fatalf("GET /v1/keys: %d %s", code, out)
	}
	var list struct{ Keys []keys.Info }
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	return list.Keys
}

func findKey(list []keys.Info, profile, state string) (keys.Info, bool) {
	for _, k := range list {
		if k.Profile == profile && k.State == state {
			return k, true
		}
	}
	return keys.Info{}, false
}

// A process killed in the middle of a rotation (a next key published, not
// yet signing) continues it after a restart: the same next key signs at
// the time it was given, and what the old key signed still verifies. Then
// the master key: a wrong one refuses the start, jwtd keys reseal moves
// every key to a new one, the old one can be dropped, and an instance
// still on the old one stops being ready.
func TestManagedKeysRestartAndMasterKeys(t *testing.T) {
	for _, b := range managedBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := managedConfig(t, dir, b, "720h")
			data := filepath.Join(dir, "data")
			args := []string{"--config", cfg, "--data-dir", data}
			cmd, base, _, done := startProcessEnv(t, b.env, args...)

			code, out := httpDo(t, "POST", base+"/v1/keys/rotate", testAdminKey, "application/json", `{"profile":"default"}`)
			if code != 202 {
				t.Fatalf("rotate: %d %s", code, out)
			}
			before := keyList(t, base)
			next, ok := findKey(before, "default", "next")
			old, _ := findKey(before, "default", "current")
			if !ok || !next.Activates.After(time.Now()) {
				t.Fatalf("after the rotation started, no next key that signs later: %+v", before)
			}
			if code, out := httpDo(t, "POST", base+"/v1/keys/rotate", testAdminKey, "application/json", `{"profile":"default"}`); code != 409 {
				t.Errorf("a second rotation while one is under way: %d %s", code, out)
			}
			_, oldToken := mintDefault(t, base)
			_ = cmd.Process.Kill()
			<-done

			_, base, logs, _ := startProcessEnv(t, b.env, args...)
			after := keyList(t, base)
			if k, ok := findKey(after, "default", "next"); !ok || k.Kid != next.Kid || !k.Activates.Equal(*next.Activates) {
				t.Fatalf("after the restart the rotation did not continue where it was: %+v", after)
			}
			waitFor(t, "the next key to sign", 10*time.Second, func() bool {
				kid, _ := mintDefault(t, base)
				return kid == next.Kid
			})
			if time.Now().Before(*next.Activates) {
				t.Errorf("the next key signed before its activation time %s", next.Activates)
			}
			if k, ok := findKey(keyList(t, base), "default", "retired"); !ok || k.Kid != old.Kid {
				t.Errorf("the old key did not retire: %+v", keyList(t, base))
			}
			if code, out := introspect(t, base, oldToken); !strings.Contains(out, `"active":true`) {
				t.Errorf("a token the old key signed before the restart: %d %s", code, out)
			}
			waitLog(t, logs, "managed key activated")
			waitLog(t, logs, "managed key retired")

			// The master key in use, and a new one.
			oldMaster := masterKeyOf(t, b, data)
			newMaster := newMasterKey()
			withMaster := func(m string) map[string]string {
				return map[string]string{"JWTD_CONFIG": cfg, "JWTD_DATA_DIR": data, "JWTD_MASTER_KEY": m}
			}

			// A wrong master key refuses to start, and says what to do.
			wrong := failedStart(t, append(strings.Fields("serve --listen 127.0.0.1:0"), args...), "JWTD_MASTER_KEY="+newMaster)
			if !strings.Contains(wrong, "sealed under a master key jwtd was not given") || !strings.Contains(wrong, "Give jwtd the master key") {
				t.Errorf("a start with a wrong master key:\n%s", wrong)
			}

			// Reseal under the new one, the old one second.
			out, errOut, err := runCLI(t, withMaster(newMaster+","+oldMaster), "", "keys", "reseal")
			if err != nil || !strings.Contains(out, "resealed") {
				t.Fatalf("reseal: %v\n%s%s", err, out, errOut)
			}
			// The running instance holds only the old one: it keeps its
			// keys in memory but is no longer ready.
			waitFor(t, "the instance on the old master key to be unready", 10*time.Second, func() bool {
				return status(base+"/readyz") == 503
			})
			waitLog(t, logs, "managed keys not synced")

			// The new one alone now opens every key.
			list, errOut, err := runCLI(t, withMaster(newMaster), "", "keys", "list")
			if err != nil || !strings.Contains(list, next.Kid) || !strings.Contains(list, "current") || strings.Contains(list, "PRIVATE") {
				t.Fatalf("keys list under the new master key alone: %v\n%s%s", err, list, errOut)
			}
			args2 := append(args, "--data-dir", filepath.Join(dir, "data2"))
			if b.storeURL == "" { // the SQLite file is in the first data directory
				args2 = args
			}
			cmd2, base2, logs2, _ := startProcessEnv(t, []string{"JWTD_MASTER_KEY=" + newMaster}, args2...)
			if status(base2+"/readyz") != 200 {
				t.Errorf("an instance on the new master key is not ready")
			}
			if code, out := introspect(t, base2, oldToken); !strings.Contains(out, `"active":true`) {
				t.Errorf("after the reseal, a token of the retired key: %d %s", code, out)
			}
			// The instance left on the old master key, unready, still signs
			// with the keys it holds, which the others verify.
			if _, tok := mintDefault(t, base); !strings.Contains(fmt.Sprint(introspect(t, base2, tok)), `"active":true`) {
				t.Errorf("a token from the instance that cannot sync does not verify on the others")
			}
			// SIGHUP with managed keys: a new rotation period applies, the
			// keys stay.
			writeFile(t, dir, "jwtd.yaml", strings.Replace(mustRead(t, cfg), "rotate_every: 720h", "rotate_every: 48h", 1))
			_ = cmd2.Process.Signal(syscall.SIGHUP)
			waitLog(t, logs2, "reloaded keys, profiles and API keys")
			if kid, _ := mintDefault(t, base2); kid != next.Kid {
				t.Errorf("after a reload, the default profile signs with %q, want %q", kid, next.Kid)
			}
		})
	}
}

// mintDefault mints a default-profile token and returns its kid.
func mintDefault(t *testing.T, base string) (kid, tok string) {
	t.Helper()
	code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"alice"}`)
	if code != 201 {
		t.Fatalf("mint: %d %s", code, out)
	}
	var issued struct{ Token string }
	_ = json.Unmarshal([]byte(out), &issued)
	jws, err := jose.ParseSignedCompact(issued.Token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID, issued.Token
}

// With MongoDB and managed keys, a master key is required, and the error
// says how to make one.
func TestMongoDBRequiresMasterKey(t *testing.T) {
	b := mongoBackend(t)
	dir := t.TempDir()
	out := failedStart(t, strings.Fields("serve --listen 127.0.0.1:0 --data-dir "+filepath.Join(dir, "data")+" --store-url "+b.storeURL))
	if !strings.Contains(out, "JWTD_MASTER_KEY") || !strings.Contains(out, "head -c 32 /dev/urandom | base64") {
		t.Errorf("MongoDB without a master key:\n%s", out)
	}
}

// failedStart runs the binary with args and environment variables
// ("K=V"), which must exit with an error within 20 s, and returns what it
// printed.
func failedStart(t *testing.T, args []string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, processBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Errorf("jwtd %s did not fail (%v):\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// introspect asks base's /v1/introspect about tok.
func introspect(t *testing.T, base, tok string) (int, string) {
	t.Helper()
	return httpDo(t, "POST", base+"/v1/introspect", testAdminKey, "application/x-www-form-urlencoded", url.Values{"token": {tok}}.Encode())
}

// The keys an earlier jwtd generated in the data directory move into the
// key store on the first start after an upgrade: the default profile's
// key keeps its kid, and the seed layouts' secrets, which their clients
// hold, are the same.
func TestKeysOfAnEarlierJwtdAreKept(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pem := filepath.Join(data, "keys", "default-es256.pem")
	if err := os.MkdirAll(filepath.Dir(pem), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, nil, "", "keys", "generate", "--alg", "ES256", "--out", pem); err != nil {
		t.Fatal(err)
	}
	secret := strings.Repeat("s", 32)
	castlabs := strings.Repeat("0123456789abcdef", 8) // 128 hex digits: the text is the key
	writeFile(t, filepath.Join(data, "keys"), "appverify-hs256.secret", base64.RawURLEncoding.EncodeToString([]byte(secret))+"\n")
	writeFile(t, filepath.Join(data, "keys"), "castlabs-hs512.secret", base64.RawURLEncoding.EncodeToString([]byte(castlabs))+"\n")
	kept, err := keys.LoadKept(keys.Kept{Dir: data, Name: "default", Alg: "ES256"})
	if err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"JWTD_DATA_DIR": data}
	for start := range 2 {
		base, logs, stop := startServeFull(t, env)
		if !strings.Contains(get(t, base+"/.well-known/jwks.json"), `"kid":"`+kept.Kid()+`"`) {
			t.Errorf("start %d: the JWKS lacks the kept key %q", start, kept.Kid())
		}
		if moved := strings.Count(logs.String(), "moved a key an earlier jwtd kept"); moved != 3*(1-start) {
			t.Errorf("start %d: %d keys moved, want %d", start, moved, 3*(1-start))
		}
		for profile, want := range map[string]string{"appverify": base64.StdEncoding.EncodeToString([]byte(secret)), "castlabs": castlabs} {
			if out, _, err := runCLI(t, env, "", "keys", "show", "--profile", profile); err != nil || strings.TrimSpace(out) != want {
				t.Errorf("start %d: %s's secret is %q (%v), want the kept %q", start, profile, out, err, want)
			}
		}
		stop()
	}
}

// Managed settings that cannot be kept safely are refused at start, with
// the setting named.
func TestManagedSettingsRefused(t *testing.T) {
	dir := t.TempDir()
	for yaml, want := range map[string]string{
		"keys: [{kid: a, alg: HS256, secret: " + strings.Repeat("a", 32) + "}]\nprofiles: {default: {key: a, managed: {alg: ES256}}}": "profiles.default: give key",
		"profiles: {mobile: {managed: {alg: ES256, rotate_every: 1m}}}":                                                               "profiles.mobile.managed: rotate_every (1m0s) is shorter than the time a key is published before it signs (5m50s)",
		"profiles: {mobile: {managed: {alg: none}}}":                                                                                  `profiles.mobile.managed: alg "none" is not supported`,
		"key_store: {sync_interval: 1ms}":                                                                                             "key_store: sync_interval must be at least 100ms",
		"key_store: {master_key_file: nope.key}":                                                                                      "key_store.master_key_file",
	} {
		cfg := writeFile(t, dir, "jwtd.yaml", yaml)
		_, _, err := runCLI(t, map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data")}, "", "serve", "--config", cfg, "--listen", "127.0.0.1:0")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n→ %v\nwant %q", yaml, err, want)
		}
	}
	if _, _, err := runCLI(t, map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data"), "JWTD_MASTER_KEY": "short"}, "", "serve", "--listen", "127.0.0.1:0"); err == nil ||
		!strings.Contains(err.Error(), "JWTD_MASTER_KEY: master key 1 is not 32 bytes") {
		t.Errorf("a master key of the wrong size: %v", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// In one process (so that -race sees it): syncs every 100 ms, rotations
// by hand, the JWKS, key listings and minting all at once, for three
// seconds; every token minted introspects active.
func TestManagedKeysUnderConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "jwtd.yaml", fmt.Sprintf(`leeway: 0s
key_store: {sync_interval: 100ms, jwks_max_age: 0s}
profiles:
  default: {managed: {alg: ES256, rotate_every: 1s}, ttl: 5s}
ratelimit: {routes: {token: [], issue: [], generate: [], verify: []}}
api_keys:
  - {name: test, sha256: %q, scopes: [admin, issue, introspect]}
`, apikey.Hash(testAdminKey)))
	base, _ := startServe(t, map[string]string{"JWTD_DATA_DIR": filepath.Join(dir, "data")}, "--config", cfg)
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var mu sync.Mutex
	kids := map[string]bool{}
	for worker := range 4 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				switch worker {
				case 0:
					if code, out := httpDo(t, "POST", base+"/v1/keys/rotate", testAdminKey, "application/json", `{"profile":"castlabs"}`); code != 202 && code != 409 {
						t.Errorf("rotate: %d %s", code, out)
					}
				case 1:
					if code, out := httpDo(t, "GET", base+"/.well-known/jwks.json", "", "", ""); code != 200 || !strings.Contains(out, `"ES256"`) {
						t.Errorf("jwks: %d %s", code, out)
					}
					keyList(t, base)
				default:
					kid, tok := mintDefault(t, base)
					if code, out := introspect(t, base, tok); !strings.Contains(out, `"active":true`) {
						t.Errorf("a token of %s: %d %s", kid, code, out)
					}
					mu.Lock()
					kids[kid] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(kids) < 2 {
		t.Errorf("tokens were signed by %d keys in three seconds of 1-second rotations", len(kids))
	}
}
