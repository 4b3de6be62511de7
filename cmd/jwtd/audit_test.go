package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
)

// auditConfig: managed default keys, a profile with a secret (castlabs),
// an admin key "test", a key "reader" without admin, one chain per
// instance name.
func auditConfig(t *testing.T, dir string, b managedBackend, extra string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	store := ""
	if b.storeURL != "" {
		store = fmt.Sprintf("store: {url: %q}\n", b.storeURL)
	}
	return writeFile(t, dir, "jwtd.yaml", fmt.Sprintf(`%s%s
profiles:
  default: {managed: {alg: ES256, rotate_every: 720h}}
ratelimit: {per_ip: "100000 per second", per_phone: "100000 per second"}
api_keys:
  - {name: test, sha256: %q, scopes: [admin, issue, introspect, outcome]}
  - {name: reader, sha256: %q, scopes: [introspect]}
`, store, extra, apikey.Hash(testAdminKey), apikey.Hash("reader-key")))
}

// cliEnv is the environment of a jwtd command beside a server: its
// configuration, data directory and variables ("K=V").
func cliEnv(cfgPath, data string, vars []string) map[string]string {
	env := map[string]string{"JWTD_CONFIG": cfgPath, "JWTD_DATA_DIR": data}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// exported runs jwtd audit export with env and returns the entries.
func exported(t *testing.T, env map[string]string) []audit.Entry {
	t.Helper()
	out, stderr, err := runCLI(t, env, "", "audit", "export", "--format", "jsonl")
	if err != nil {
		t.Fatalf("audit export: %v\n%s", err, stderr)
	}
	var es []audit.Entry
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		es = append(es, e)
	}
	return es
}

func count(es []audit.Entry, action, actor string) []audit.Entry {
	var out []audit.Entry
	for _, e := range es {
		if e.Action == action && e.Actor == actor {
			out = append(out, e)
		}
	}
	return out
}

// Every audited action leaves exactly one entry with its actor, on both
// stores; the chains verify; an entry changed or deleted in the store is
// found by jwtd audit verify; a master key that does not open is recorded.
func TestAuditTrail(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	eachAuditBackend(t, func(t *testing.T, b managedBackend, dir, data, cfgPath string) {
		env := cliEnv(cfgPath, data, b.env)
		cmd, base, logs, done := startProcessEnv(t, b.env, "--config", cfgPath, "--data-dir", data)

		// Anonymous seed tokens are records, not audit entries.
		if code, out := httpDo(t, "GET", base+"/v1/token/+14155550100/tx-seed", "", "", ""); code != 200 {
			t.Fatalf("seed token: %d %s", code, out)
		}
		code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"alice","xid":"tx-a1"}`)
		if code != 201 {
			t.Fatalf("mint: %d %s", code, out)
		}
		var minted struct{ JTI string }
		_ = json.Unmarshal([]byte(out), &minted)
		if code, out := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"xid":"tx-a1"}`); code != 200 {
			t.Fatalf("revoke: %d %s", code, out)
		}
		if code, out := httpDo(t, "POST", base+"/v1/transactions/tx-a1/outcome", testAdminKey, "application/json", `{"status":"verified"}`); code != 201 {
			t.Fatalf("outcome: %d %s", code, out)
		}
		if code, out := httpDo(t, "POST", base+"/v1/keys/rotate", testAdminKey, "application/json", `{"profile":"default"}`); code != 202 {
			t.Fatalf("rotate: %d %s", code, out)
		}
		for range 3 { // refused: counted, one entry per key name and address
			if code, _ := httpDo(t, "GET", base+"/v1/audit", "wrong-key", "", ""); code != 401 {
				t.Fatalf("wrong key: %d", code)
			}
		}
		if code, _ := httpDo(t, "GET", base+"/v1/audit", "reader-key", "", ""); code != 403 {
			t.Fatalf("reader on /v1/audit: %d", code)
		}
		// The CLI: a rotation and the showing of a secret.
		if _, stderr, err := runCLI(t, env, "", "keys", "rotate", "--profile", "castlabs"); err != nil {
			t.Fatalf("keys rotate: %v\n%s", err, stderr)
		}
		if _, stderr, err := runCLI(t, env, "", "keys", "show", "--profile", "castlabs"); err != nil {
			t.Fatalf("keys show: %v\n%s", err, stderr)
		}
		// A reload adding an API key.
		cfg := mustRead(t, cfgPath) + "  - {name: added, sha256: \"" + apikey.Hash("added-key") + "\", scopes: [issue]}\n"
		writeFile(t, dir, "jwtd.yaml", cfg)
		_ = cmd.Process.Signal(syscall.SIGHUP)
		waitLog(t, logs, "reloaded keys, profiles and API keys")
		waitLog(t, logs, `"action":"apikeys.reload"`)

		// GET /v1/audit answers, newest first, filtered.
		code, out = httpDo(t, "GET", base+"/v1/audit?actor=test&action=token.revoke", testAdminKey, "", "")
		var page struct{ Entries []audit.Entry }
		if err := json.Unmarshal([]byte(out), &page); code != 200 || err != nil || len(page.Entries) != 1 ||
			page.Entries[0].Target != "xid:tx-a1" || page.Entries[0].Detail != "count=1" || page.Entries[0].RequestID == "" {
			t.Errorf("GET /v1/audit?actor=test&action=token.revoke: %d %s", code, out)
		}

		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done
		es := exported(t, env)
		for _, want := range []struct {
			action, actor string
			n             int
		}{
			{audit.ActionMint, "test", 1}, {audit.ActionRevoke, "test", 1}, {audit.ActionOutcome, "test", 1},
			{audit.ActionKeyRotate, "test", 1}, {audit.ActionKeyRotate, "cli", 1}, {audit.ActionKeyShow, "cli", 1},
			{audit.ActionConfigReload, "jwtd", 1}, {audit.ActionAPIKeys, "jwtd", 1},
			{audit.ActionAuthRefused, "unknown", 1}, {audit.ActionAuthRefused, "reader", 1},
		} {
			if got := count(es, want.action, want.actor); len(got) != want.n {
				t.Errorf("%s by %s: %d entries, want %d: %+v", want.action, want.actor, len(got), want.n, got)
			}
		}
		if got := count(es, audit.ActionMint, "test"); len(got) == 1 && got[0].Target != "jti:"+minted.JTI+" xid:tx-a1" {
			t.Errorf("mint target: %q", got[0].Target)
		}
		if got := count(es, audit.ActionAuthRefused, "unknown"); len(got) == 1 && got[0].Detail != "count=3" {
			t.Errorf("refusals: %+v", got[0])
		}
		if got := count(es, audit.ActionAPIKeys, "jwtd"); len(got) == 1 && got[0].Detail != "added=added removed=" {
			t.Errorf("API keys reload: %q", got[0].Detail)
		}
		if len(count(es, audit.ActionKeyState, "jwtd")) == 0 {
			t.Error("no key state change recorded after a rotation")
		}
		whole := fmt.Sprint(es)
		if strings.Contains(whole, testAdminKey) || strings.Contains(whole, "eyJ") {
			t.Error("an entry holds an API key or a token")
		}
		if out, _, err := runCLI(t, env, "", "audit", "verify"); err != nil || !strings.Contains(out, "chain node-a") {
			t.Fatalf("verify of an untouched trail: %v\n%s", err, out)
		}

		// Changed in the store: found, naming the entry.
		revoke := count(es, audit.ActionRevoke, "test")[0]
		deleted := count(es, audit.ActionOutcome, "test")[0]
		tamper(t, b, data, revoke.Seq, deleted.Seq)
		out, _, err := runCLI(t, env, "", "audit", "verify")
		if err == nil || !strings.Contains(out, fmt.Sprintf(`BROKEN: audit chain "node-a" broken at seq %d`, revoke.Seq)) {
			t.Errorf("verify after tampering: %v\n%s", err, out)
		}

		// A master key that does not open the stored keys: the start
		// is refused, and recorded.
		wrong := []string{"JWTD_MASTER_KEY=" + newMasterKey()}
		failedStart(t, []string{"serve", "--listen", "127.0.0.1:0", "--config", cfgPath, "--data-dir", data}, wrong...)
		if got := count(exported(t, env), audit.ActionKeyOpenFail, "jwtd"); len(got) != 1 {
			t.Errorf("master key that does not open: %d entries", len(got))
		}
	})
}

// eachAuditBackend runs test on SQLite and on MongoDB, each with a
// directory of its own, a data directory in it, and auditConfig's
// configuration for instance node-a, and extra settings if any.
func eachAuditBackend(t *testing.T, test func(t *testing.T, b managedBackend, dir, data, cfgPath string), extra ...string) {
	for _, b := range managedBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := auditConfig(t, dir, b, "\naudit: {instance: node-a}\n"+strings.Join(extra, "\n"))
			test(t, b, dir, filepath.Join(dir, "data"), cfg)
		})
	}
}

// Seed 000's route with seed000.require_caller mints with an API key: the
// token leaves exactly one token.mint entry, the key's name its actor,
// which GET /v1/audit finds by the token's jti (its target names the XID
// too); a caller without a key is refused, and counted.
func TestAuditSeedRouteWithCaller(t *testing.T) {
	eachAuditBackend(t, func(t *testing.T, b managedBackend, _, data, cfgPath string) {
		cmd, base, _, done := startProcessEnv(t, b.env, "--config", cfgPath, "--data-dir", data)
		if code, out := httpDo(t, "GET", base+"/v1/token/+14155550100/tx-caller", "", "", ""); code != 401 {
			t.Fatalf("seed token without a key: %d %s", code, out)
		}
		code, tok := httpDo(t, "GET", base+"/v1/token/+14155550100/tx-caller", testAdminKey, "", "")
		if code != 200 {
			t.Fatalf("seed token with a key: %d %s", code, tok)
		}
		jti := jtiOf(t, tok)
		code, out := httpDo(t, "GET", base+"/v1/audit?target=jti:"+jti, testAdminKey, "", "")
		var page struct{ Entries []audit.Entry }
		if err := json.Unmarshal([]byte(out), &page); code != 200 || err != nil || len(page.Entries) != 1 ||
			page.Entries[0].Target != "jti:"+jti+" xid:tx-caller" {
			t.Errorf("GET /v1/audit?target=jti:%s: %d %s", jti, code, out)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM) // refusals are flushed on the way out
		<-done

		es := exported(t, cliEnv(cfgPath, data, b.env))
		if mints := count(es, audit.ActionMint, "test"); len(mints) != 1 || mints[0].Target != "jti:"+jti+" xid:tx-caller" ||
			mints[0].RequestID == "" || mints[0].Result != audit.ResultOK {
			t.Errorf("token.mint entries by test: %+v, want one for jti %s", mints, jti)
		}
		if n := len(count(es, audit.ActionMint, "")) + len(count(es, audit.ActionMint, "none")); n != 0 {
			t.Errorf("%d token.mint entries without an actor", n)
		}
		if got := count(es, audit.ActionAuthRefused, "none"); len(got) != 1 || got[0].Detail != "count=1" {
			t.Errorf("refused without a key: %+v, want one entry of count=1", got)
		}
	}, "seed000: {require_caller: true}")
}

// jwtd keys reseal, the process, with a new master key first and the old
// one second: the keys are sealed under the new one (they open under it
// alone, and no longer under the old one alone; a server started on it
// verifies what the keys signed before), and the reseal leaves exactly one
// audit entry with actor cli, in the instance's chain, which verifies.
func TestAuditKeysReseal(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	eachAuditBackend(t, func(t *testing.T, b managedBackend, _, data, cfgPath string) {
		cmd, base, _, done := startProcessEnv(t, b.env, "--config", cfgPath, "--data-dir", data)
		kid, tok := mintDefault(t, base)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-done

		oldMaster := masterKeyOf(t, b, data)
		newMaster := newMasterKey()
		withMaster := func(m string) map[string]string {
			env := cliEnv(cfgPath, data, nil)
			env["JWTD_MASTER_KEY"] = m
			return env
		}
		out, errOut, err := runProcess(t, withMaster(newMaster+","+oldMaster), "keys", "reseal")
		var n int
		if _, serr := fmt.Sscanf(out, "resealed %d keys", &n); err != nil || serr != nil || n < 1 {
			t.Fatalf("jwtd keys reseal: %v\n%s%s", err, out, errOut)
		}

		list, errOut, err := runProcess(t, withMaster(newMaster), "keys", "list")
		if err != nil || !strings.Contains(list, kid) {
			t.Errorf("keys list under the new master key alone: %v\n%s%s", err, list, errOut)
		}
		if out, errOut, err := runProcess(t, withMaster(oldMaster), "keys", "list"); err == nil {
			t.Errorf("keys list under the old master key alone, after the reseal, succeeded:\n%s%s", out, errOut)
		}
		_, base, _, _ = startProcessEnv(t, []string{"JWTD_MASTER_KEY=" + newMaster}, "--config", cfgPath, "--data-dir", data)
		if code, out := introspect(t, base, tok); !strings.Contains(out, `"active":true`) {
			t.Errorf("a token signed before the reseal, on a server given the new master key alone: %d %s", code, out)
		}

		es := exported(t, withMaster(newMaster))
		var cli []audit.Entry
		for _, e := range es {
			if e.Actor == audit.ActorCLI {
				cli = append(cli, e)
			}
		}
		if len(cli) != 1 || cli[0].Action != audit.ActionKeyReseal || cli[0].Chain != "node-a" || cli[0].Target != "key_store" ||
			cli[0].Result != audit.ResultOK || cli[0].Detail != fmt.Sprintf("count=%d", n) {
			t.Errorf("entries of actor cli: %+v, want one key.reseal of count=%d", cli, n)
		}
		if out, _, err := runCLI(t, withMaster(newMaster), "", "audit", "verify"); err != nil {
			t.Errorf("verify: %v\n%s", err, out)
		}
	})
}

// tamper edits the entry at seq and deletes the one at del, with the
// sqlite3 CLI or a MongoDB update.
func tamper(t *testing.T, b managedBackend, data string, seq, del int64) {
	t.Helper()
	if b.storeURL == "" {
		sql := fmt.Sprintf(`UPDATE audit SET detail = 'count=0' WHERE chain = 'node-a' AND seq = %d; DELETE FROM audit WHERE chain = 'node-a' AND seq = %d;`, seq, del)
		if out, err := exec.Command("sqlite3", filepath.Join(data, "jwtd.db"), sql).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v %s", err, out)
		}
		return
	}
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(b.storeURL))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx) //nolint:errcheck
	db := client.Database(b.storeURL[strings.LastIndex(b.storeURL, "/")+1:])
	c := db.Collection("audit")
	if _, err := c.UpdateOne(ctx, bson.D{{Key: "chain", Value: "node-a"}, {Key: "seq", Value: seq}}, bson.D{{Key: "$set", Value: bson.D{{Key: "detail", Value: "count=0"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteOne(ctx, bson.D{{Key: "chain", Value: "node-a"}, {Key: "seq", Value: del}}); err != nil {
		t.Fatal(err)
	}
}

// Two instances on one store mint at once, each in its chain, and a third
// process shares a chain's name: every chain verifies and holds every
// entry.
func TestAuditTwoInstances(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	for _, b := range managedBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			var env map[string]string
			var bases []string
			for i, name := range []string{"node-a", "node-b", "node-b"} {
				cfgPath := auditConfig(t, filepath.Join(dir, fmt.Sprint(i)), b, "\naudit: {instance: "+name+"}")
				env = cliEnv(cfgPath, data, b.env)
				_, base, _, _ := startProcessEnv(t, b.env, "--config", cfgPath, "--data-dir", data)
				bases = append(bases, base)
			}
			const each = 40
			var wg sync.WaitGroup
			for _, base := range bases {
				for w := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range each / 4 {
							code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", fmt.Sprintf(`{"profile":"default","sub":"w%d-%d"}`, w, i))
							if code != 201 {
								t.Errorf("mint: %d %s", code, out)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			time.Sleep(300 * time.Millisecond) // entries are queued, not waited for, without audit.required
			out, _, err := runCLI(t, env, "", "audit", "verify")
			if err != nil {
				t.Fatalf("verify: %v\n%s", err, out)
			}
			es := exported(t, env)
			per := map[string]int{}
			for _, e := range count(es, audit.ActionMint, "test") {
				per[e.Chain]++
			}
			if per["node-a"] != each || per["node-b"] != 2*each {
				t.Errorf("mint entries per chain: %v, want node-a %d, node-b %d\n%s", per, each, 2*each, out)
			}
			// A key's change of state is recorded by the instance that
			// wrote it, once, not by every instance that applies it.
			changes := map[string]int{}
			for _, e := range count(es, audit.ActionKeyState, "jwtd") {
				changes[e.Target+" "+e.Detail]++
			}
			if len(changes) < 3 {
				t.Errorf("key state entries %v, want the first key of each built-in profile", changes)
			}
			for change, n := range changes {
				if n != 1 {
					t.Errorf("%s recorded %d times", change, n)
				}
			}
		})
	}
}

// With audit.required, an action whose entry cannot be written is
// refused (503): the one under way when the store stops taking entries is
// answered 503 and its entry is written once it takes them again; the
// next are refused before they are applied. Anonymous seed tokens go on.
func TestAuditRequired(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := auditConfig(t, dir, managedBackend{name: "sqlite"}, "\naudit: {instance: node-a, required: true}")
	env := cliEnv(cfgPath, data, nil)
	_, base, _, _ := startProcess(t, "--config", cfgPath, "--data-dir", data)
	for _, xid := range []string{"tx-r1", "tx-r2"} {
		if code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"a","xid":"`+xid+`"}`); code != 201 {
			t.Fatalf("mint: %d %s", code, out)
		}
	}
	db := filepath.Join(data, "jwtd.db")
	sqlite3 := func(sql string) {
		if out, err := exec.Command("sqlite3", db, sql).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v %s", err, out)
		}
	}
	status := func(xid string) string {
		_, out := httpDo(t, "GET", base+"/v1/tokens/"+xid, testAdminKey, "", "")
		var tx struct{ Records []struct{ Status string } }
		_ = json.Unmarshal([]byte(out), &tx)
		if len(tx.Records) != 1 {
			t.Fatalf("GET /v1/tokens/%s: %s", xid, out)
		}
		return tx.Records[0].Status
	}
	// The store refuses audit entries, and only them.
	sqlite3(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused by the test'); END;`)
	if code, out := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"xid":"tx-r1"}`); code != 503 || !strings.Contains(out, "audit") {
		t.Errorf("revoke while entries cannot be written: %d %s, want 503", code, out)
	}
	if code, out := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"xid":"tx-r2"}`); code != 503 {
		t.Errorf("second revoke: %d %s, want 503", code, out)
	}
	if code, out := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"b"}`); code != 503 {
		t.Errorf("keyed mint: %d %s, want 503", code, out)
	}
	if st := status("tx-r2"); st != "active" {
		t.Errorf("a refused revocation was applied: %s", st)
	}
	if code, out := httpDo(t, "GET", base+"/v1/token/+14155550100/tx-seed", "", "", ""); code != 200 {
		t.Errorf("seed token while the trail cannot write: %d %s", code, out)
	}
	sqlite3(`DROP TRIGGER refuse_audit;`)
	waitFor(t, "the trail writing again", 10*time.Second, func() bool {
		code, _ := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"xid":"tx-r2"}`)
		return code == 200
	})
	if st := status("tx-r2"); st != "revoked" {
		t.Errorf("tx-r2 after the trail recovered: %s", st)
	}
	es := exported(t, env)
	revokes := map[string]string{}
	for _, e := range count(es, audit.ActionRevoke, "test") {
		revokes[e.Target] += e.Detail + ";"
	}
	if revokes["xid:tx-r1"] != "count=1;" || revokes["xid:tx-r2"] != "count=1;" {
		t.Errorf("revocation entries: %v, want one of each with count=1", revokes)
	}
	if _, _, err := runCLI(t, env, "", "audit", "verify"); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// jwtd backup under load on the phone route: the copy passes
// integrity_check and holds every record acknowledged before the backup
// began; after a restore, jwtd audit replay revokes again what was
// revoked since.
func TestBackupUnderLoad(t *testing.T) {
	t.Parallel() // its own processes, ports and files
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := auditConfig(t, dir, managedBackend{name: "sqlite"}, "")
	env := cliEnv(cfgPath, data, nil)
	_, base, _, _ := startProcess(t, "--config", cfgPath, "--data-dir", data)
	load := startPhoneLoad(t, base, 8, 5*time.Second)
	time.Sleep(time.Second)
	before := load.acknowledged()
	backup := filepath.Join(dir, "backup.db")
	out, stderr, err := runCLI(t, env, "", "backup", backup)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	time.Sleep(300 * time.Millisecond)
	load.finish()
	if !strings.Contains(out, "jwtd audit replay") {
		t.Errorf("backup output does not say how to replay: %s", out)
	}
	if res, err := exec.Command("sqlite3", backup, "PRAGMA integrity_check;").CombinedOutput(); err != nil || strings.TrimSpace(string(res)) != "ok" {
		t.Fatalf("integrity_check of the backup: %v %s", err, res)
	}
	if len(before) == 0 {
		t.Fatal("no load acknowledged before the backup")
	}
	checkRecorded(t, backup, before)
	if fi, err := os.Stat(backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode: %v %v", fi.Mode(), err)
	}

	// Revoke after the backup, export the trail, restore, replay.
	code, minted := httpDo(t, "POST", base+"/v1/tokens", testAdminKey, "application/json", `{"profile":"default","sub":"late","xid":"tx-late"}`)
	if code != 201 {
		t.Fatal(minted)
	}
	_ = minted
	if code, out := httpDo(t, "POST", base+"/v1/revoke", testAdminKey, "application/json", `{"jti":"`+before[0]+`"}`); code != 200 {
		t.Fatalf("revoke: %d %s", code, out)
	}
	var trail string
	waitFor(t, "the revocation's entry", 10*time.Second, func() bool { // entries are queued, not waited for
		trail, _, err = runCLI(t, env, "", "audit", "export", "--since", "1h")
		return err == nil && strings.Contains(trail, `"action":"token.revoke"`)
	})
	exportFile := writeFile(t, dir, "trail.jsonl", trail)
	restored := map[string]string{"JWTD_CONFIG": cfgPath, "JWTD_STORE_URL": "sqlite://" + backup}
	out, stderr, err = runCLI(t, restored, "", "audit", "replay", "--since", "1h", exportFile)
	if err != nil || !strings.Contains(out, "1 tokens revoked again") {
		t.Errorf("replay: %v %s %s", err, out, stderr)
	}
	res, _ := exec.Command("sqlite3", backup, "SELECT count(*) FROM tokens WHERE revoked IS NOT NULL AND jti = '"+before[0]+"';").CombinedOutput()
	if strings.TrimSpace(string(res)) != "1" {
		t.Errorf("the revocation made after the backup is not in the restored store: %s", res)
	}
}

// acknowledged is the jtis of the tokens handed out so far.
func (l *phoneLoad) acknowledged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.jtis...)
}
