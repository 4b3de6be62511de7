package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/audit/audittest"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/record/recordtest"
	"github.com/jwtd/jwtd/internal/token"
)

// openTemp opens a store on a file in a temporary directory, closed when
// the test ends.
func openTemp(tb testing.TB) *Store {
	tb.Helper()
	s, err := Open(filepath.Join(tb.TempDir(), "jwtd.db"), Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	recordtest.Run(t, func(t *testing.T) recordtest.Store {
		s, err := Open(filepath.Join(t.TempDir(), "jwtd.db"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The key manager on a SQLite file; no key is in the clear in the
// keyrings table.
func TestManagedKeys(t *testing.T) {
	s := openTemp(t)
	recordtest.ManagedKeys(t, s, func() [][]byte { return storedKeyrings(t, s.Path()) })
}

// storedKeyrings reads the keyrings table of the file as stored.
func storedKeyrings(t *testing.T, path string) [][]byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT keys FROM keyrings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		out = append(out, raw)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// BenchmarkSync is one sync of three managed profiles with nothing to
// change: what every instance does every key_store.sync_interval.
func BenchmarkSync(b *testing.B) {
	s := openTemp(b)
	recordtest.BenchmarkSync(b, s)
}

// Records committed before Close are there when the file is opened again.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jwtd.db")
	s, err := Open(path, Options{GroupOptions: record.GroupOptions{Linger: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := s.Insert(context.Background(), &record.Record{JTI: "j", Profile: "p", Kid: "k", Alg: "HS256", Issued: now, Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.ByJTI(context.Background(), "j"); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkGroupCommit measures inserts with 1, 16 and 256 concurrent
// writers on a real file with synchronous=FULL, and reports records/s and
// commits/s (how well concurrent requests share a commit).
func BenchmarkGroupCommit(b *testing.B) {
	recordtest.BenchmarkGroupCommit(b, func(b *testing.B) recordtest.StatsStore {
		s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// A file written by the first schema (jti primary key, hex token hashes, an
// (xid, issued) index) opens, keeps its records and takes new ones.
func TestMigrateFromVersion0(t *testing.T) {
	hash := token.HashToken("old-token")
	path := oldFile(t, `
CREATE TABLE tokens (
	jti TEXT PRIMARY KEY, profile TEXT NOT NULL, kid TEXT NOT NULL, alg TEXT NOT NULL,
	xid TEXT NOT NULL DEFAULT '', phone TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '',
	issued INTEGER NOT NULL, expires INTEGER NOT NULL, revoked INTEGER,
	client_ip TEXT NOT NULL DEFAULT '', token_sha256 TEXT NOT NULL DEFAULT '', token TEXT NOT NULL DEFAULT '');
CREATE INDEX tokens_xid ON tokens (xid, issued DESC, jti DESC) WHERE xid != '';
CREATE INDEX tokens_phone ON tokens (phone, issued DESC, jti DESC) WHERE phone != '';
CREATE INDEX tokens_expires ON tokens (expires);
INSERT INTO tokens (jti, profile, kid, alg, xid, phone, issued, expires, token_sha256)
	VALUES ('old', 'appverify', 'av1', 'HS256', 'tx-old', '+14155552671', 1, 9000000000000000000, ?),
	       ('odd', 'appverify', 'av1', 'HS256', '', '', 2, 9000000000000000000, 'not-a-hash');`, hash)

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	got, err := s.ByJTI(ctx, "old")
	if err != nil || got.TokenSHA256 != hash || got.XID != "tx-old" {
		t.Fatalf("the old record: %+v, %v", got, err)
	}
	if got, err := s.ByJTI(ctx, "odd"); err != nil || got.TokenSHA256 != "not-a-hash" {
		t.Errorf("a hash that is not hex: %+v, %v", got, err)
	}
	now := time.Now().UTC()
	err = s.Insert(ctx, &record.Record{JTI: "new", Profile: "appverify", Kid: "av1", Alg: "HS256",
		XID: "tx-old", Phone: "+14155550000", Issued: now, Expires: now.Add(time.Minute)})
	if !errors.Is(err, record.ErrXIDConflict) {
		t.Errorf("the old record's XID with another phone: %v, want a conflict", err)
	}
	checkSchemaVersion(t, s)
}

// A version 1 file (the tokens table as it is, no outcomes) gains the
// outcomes and probe tables and takes outcomes for its records.
func TestMigrateFromVersion1(t *testing.T) {
	v1 := schema[:strings.Index(schema, "CREATE TABLE IF NOT EXISTS outcomes")] + "PRAGMA user_version = 1;"
	now := time.Now().UTC()
	path := oldFile(t, v1+`INSERT INTO tokens (jti, profile, kid, alg, xid, phone, issued, expires, token_sha256)
		VALUES ('v1', 'appverify', 'av1', 'HS256', 'tx-v1', '+14155552671', ?, ?, x'00')`, now.UnixNano(), now.Add(time.Minute).UnixNano())

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	o := &record.Outcome{XID: "tx-v1", Status: record.Verified, UpdatedOn: now, Recorded: now}
	if err := s.AddOutcome(ctx, o); err != nil {
		t.Fatalf("an outcome for a version 1 record: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Error(err)
	}
	checkSchemaVersion(t, s)
}

// A file of the schema before the audit table (version 3) opens, keeps
// its records and keyrings, and takes audit entries.
func TestMigrateToAuditTable(t *testing.T) {
	v3 := schema[:strings.Index(schema, "CREATE TABLE IF NOT EXISTS audit")] + "PRAGMA user_version = 3;"
	now := time.Now().UTC()
	path := oldFile(t, v3+`INSERT INTO tokens (jti, profile, kid, alg, issued, expires, token_sha256) VALUES ('v3', 'default', 'k', 'ES256', ?, ?, x'00');
		INSERT INTO keyrings (profile, version, keys) VALUES ('default', 3, '[]');`, now.UnixNano(), now.Add(time.Minute).UnixNano())
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.ByJTI(ctx, "v3"); err != nil {
		t.Errorf("the version 3 record: %v", err)
	}
	if ring, err := s.Keyring(ctx, "default"); err != nil || ring.Version != 3 {
		t.Errorf("the version 3 keyring: %+v %v", ring, err)
	}
	tr := audit.NewTrail(s, audit.Options{Chain: "c", Required: true})
	if err := tr.Record(ctx, audit.Entry{Actor: "a", Action: audit.ActionRevoke}); err != nil {
		t.Errorf("an audit entry in a migrated file: %v", err)
	}
	tr.Close()
	checkSchemaVersion(t, s)
}

// A version 4 file, whose audit table was WITHOUT ROWID with hex hashes,
// a version 5 file, a rowid table with UNIQUE (chain, seq), and a version
// 6 file, keyed by chain and sequence number without runs, open with
// their entries as they were: the chains verify, read back the same, and
// go on from their heads, each entry's rowid its chain's number and
// sequence number.
func TestMigrateAuditTable(t *testing.T) {
	before := schema[:strings.Index(schema, "CREATE TABLE IF NOT EXISTS audit")]
	for _, tc := range []struct {
		version int
		table   string
		hash    string // how an entry's hex hash is written
	}{
		{4, `CREATE TABLE audit (
	chain TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, instance TEXT NOT NULL, actor TEXT NOT NULL,
	action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', result TEXT NOT NULL, request_id TEXT NOT NULL DEFAULT '',
	client_ip TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '', prev TEXT NOT NULL DEFAULT '', hash TEXT NOT NULL,
	PRIMARY KEY (chain, seq)
) WITHOUT ROWID;
CREATE INDEX audit_time ON audit (time, chain, seq);
CREATE INDEX audit_actor ON audit (actor, time);
CREATE INDEX audit_target ON audit (target, time) WHERE target != '';`, "'%s'"},
		{5, `CREATE TABLE audit (
	chain TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, instance TEXT NOT NULL, actor TEXT NOT NULL,
	action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', result TEXT NOT NULL, request_id TEXT NOT NULL DEFAULT '',
	client_ip TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '', prev BLOB NOT NULL DEFAULT '', hash BLOB NOT NULL,
	UNIQUE (chain, seq)
);
CREATE INDEX audit_time ON audit (time, chain, seq);
CREATE INDEX audit_actor ON audit (actor, time) WHERE action != 'token.mint';
CREATE INDEX audit_target ON audit (target, time) WHERE action != 'token.mint';`, "coalesce(unhex('%s'), '')"},
		{6, `CREATE TABLE audit_chains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE audit (
	id INTEGER PRIMARY KEY, chain TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, instance TEXT NOT NULL,
	actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', result TEXT NOT NULL,
	request_id TEXT NOT NULL DEFAULT '', client_ip TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',
	prev BLOB NOT NULL DEFAULT '', hash BLOB NOT NULL
);
CREATE INDEX audit_time ON audit (time, chain, seq);
CREATE INDEX audit_actor ON audit (actor, time) WHERE action != 'token.mint';
CREATE INDEX audit_target ON audit (target, time) WHERE action != 'token.mint';`, "coalesce(unhex('%s'), '')"},
	} {
		t.Run(fmt.Sprintf("version %d", tc.version), func(t *testing.T) {
			script := before + tc.table + fmt.Sprintf("\nPRAGMA user_version = %d;\n", tc.version)
			var written []audit.Entry
			heads := map[string]audit.Entry{}
			for i, c := range []string{"node-b", "node-a", "node-b", "node-a", "node-a"} {
				e := audit.Entry{Time: time.Unix(1765000000, int64(i)).UTC(), Instance: c, Actor: "ops", Action: audit.ActionRevoke,
					Target: fmt.Sprintf("xid:%d", i), Result: audit.ResultOK, Detail: "count=1"}
				e.Link(c, heads[c])
				written, heads[c] = append(written, e), e
				values := fmt.Sprintf("'%s', %d, %d, '%s', 'ops', '%s', '%s', 'ok', '', '', 'count=1', "+tc.hash+", "+tc.hash,
					e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Action, e.Target, e.Prev, e.Hash)
				if tc.version == 6 {
					script += fmt.Sprintf("INSERT OR IGNORE INTO audit_chains (name) VALUES ('%s');\n", c)
					values = fmt.Sprintf("(SELECT id FROM audit_chains WHERE name = '%s') << 44 | %d, ", c, e.Seq) + values
				}
				script += "INSERT INTO audit VALUES (" + values + ");\n"
			}
			s, err := Open(oldFile(t, script), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			checkSchemaVersion(t, s)
			if reps, err := audit.Verify(ctx, s); err != nil || len(reps) != 2 {
				t.Fatalf("verify after the migration: %+v %v", reps, err)
			}
			got, err := s.AuditList(ctx, audit.Query{Order: audit.Oldest})
			if err != nil || len(got) != len(written) {
				t.Fatalf("entries %+v %v", got, err)
			}
			for i := range got {
				if got[i] != written[i] {
					t.Errorf("entry %d read back as %+v, written %+v", i, got[i], written[i])
				}
			}
			var blobs, keyed int
			if err := s.read.QueryRow(`SELECT count(*) FROM audit WHERE typeof(hash) = 'blob'`).Scan(&blobs); err != nil || blobs != len(written) {
				t.Errorf("%d hashes stored as bytes, %v", blobs, err)
			}
			err = s.read.QueryRow(`SELECT count(*) FROM audit WHERE id = (SELECT id FROM audit_chains WHERE name = chain) << 44 | seq`).Scan(&keyed)
			if err != nil || keyed != len(written) {
				t.Errorf("%d entries keyed by chain and sequence number, %v", keyed, err)
			}
			tr := audit.NewTrail(s, audit.Options{Chain: "node-a", Required: true})
			if err := tr.Record(ctx, audit.Entry{Actor: "a", Action: audit.ActionConfigReload}); err != nil {
				t.Fatal(err)
			}
			tr.Close()
			if h, err := s.AuditHead(ctx, "node-a"); err != nil || h.Seq != 4 || h.Prev != written[4].Hash {
				t.Errorf("the head after the migration: %+v %v", h, err)
			}
			if _, err := audit.Verify(ctx, s); err != nil {
				t.Error(err)
			}
		})
	}
}

// oldFile writes a database file as another jwtd left it, by running
// script, and returns its path.
func oldFile(t *testing.T, script string, args ...any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jwtd.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(script, args...); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkSchemaVersion checks that an opened file is at this jwtd's schema.
func checkSchemaVersion(t *testing.T, s *Store) {
	t.Helper()
	var version int
	if err := s.read.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != schemaVersion {
		t.Errorf("user_version %d, %v", version, err)
	}
}

// A file from a newer jwtd is refused, not rewritten.
func TestRefusesNewerSchema(t *testing.T) {
	newer := schemaVersion + 1
	path := oldFile(t, fmt.Sprintf(`CREATE TABLE tokens (jti TEXT); PRAGMA user_version = %d`, newer))
	if s, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("schema version %d", newer)) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("opened a version %d file: %v", newer, err)
	}
}

// Batches larger than the largest prepared INSERT are written in chunks,
// every record of them.
func TestLargeBatches(t *testing.T) {
	var largest atomic.Int64
	observe := func(records int, _ time.Duration, _ error) {
		if int64(records) > largest.Load() {
			largest.Store(int64(records))
		}
	}
	s, err := Open(filepath.Join(t.TempDir(), "jwtd.db"), Options{GroupOptions: record.GroupOptions{MaxBatch: 1000, Linger: 200 * time.Millisecond, Observe: observe}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now().UTC()
	const n = 700
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Insert(ctx, &record.Record{JTI: fmt.Sprintf("j%03d", i), Profile: "p", Kid: "k", Alg: "HS256",
				XID: fmt.Sprintf("x%d", i%50), Phone: fmt.Sprintf("+1415555%04d", i%50), Issued: now, Expires: now.Add(time.Minute),
				TokenSHA256: token.HashToken(fmt.Sprint(i))})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	if commits, records := s.Stats(); records != n || largest.Load() <= 256 {
		t.Errorf("%d records in %d commits, the largest %d; want one over 256", records, commits, largest.Load())
	}
	var count int
	if err := s.read.QueryRow(`SELECT count(*) FROM tokens`).Scan(&count); err != nil || count != n {
		t.Errorf("%d rows, %v", count, err)
	}
}

func TestAuditConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Store {
		return openTemp(t)
	})
}

// Audit entries the store refuses (here a trigger) leave their batch's
// records written: the results of records with an entry say it was not
// (audit.ErrNotWritten), the others' are as they would be; once the store
// takes entries again, a record's entry goes in with it.
func TestEntriesRefusedRecordsWritten(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	now := time.Now().UTC()
	newRecord := func(jti string, audited bool) *record.Record {
		r := &record.Record{JTI: jti, Profile: "default", Kid: "k1", Alg: "ES256", Issued: now, Expires: now.Add(time.Hour)}
		if audited {
			r.Audit = &audit.Entry{Chain: "c", Instance: "c", Time: now, Actor: "issuer", Action: audit.ActionMint,
				Target: "jti:" + jti, Result: audit.ResultOK}
		}
		return r
	}
	if err := s.Insert(ctx, newRecord("taken", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.Exec(`CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	results, err := s.commit([]*record.Record{newRecord("audited", true), newRecord("plain", false), newRecord("taken", true)})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(results[0], audit.ErrNotWritten) || results[1] != nil || !errors.Is(results[2], record.ErrDuplicate) {
		t.Errorf("results %v, want [ErrNotWritten, nil, ErrDuplicate]", results)
	}
	for _, jti := range []string{"audited", "plain"} {
		if _, err := s.ByJTI(ctx, jti); err != nil {
			t.Errorf("record %s: %v", jti, err)
		}
	}
	if h, err := s.AuditHead(ctx, "c"); err != nil || h.Seq != 0 {
		t.Errorf("head after refused entries: %+v %v", h, err)
	}
	if _, err := s.write.Exec(`DROP TRIGGER refuse_audit`); err != nil {
		t.Fatal(err)
	}
	r := newRecord("later", true)
	if err := s.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	if h, err := s.AuditHead(ctx, "c"); err != nil || h != *r.Audit || h.Seq != 1 {
		t.Errorf("head %+v %v, want the entry written with its record %+v", h, err, *r.Audit)
	}
}

// Keyed mints' entries that follow one another with one time, instance
// and result take a row for up to 256 of them (a run); any other entry
// takes a row of its own. Appended in runs of every length about 256,
// and broken by each thing a run shares, they read back entry for entry,
// in the rows expected, the audit_entries view lists them as the store
// does, and the chain verifies.
func TestAuditRunsAppended(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var entries []audit.Entry
	wantRows := 0
	type kind struct {
		at                       int // milliseconds after now
		instance, action, result string
	}
	appendBatch := func(kinds ...kind) {
		t.Helper()
		from := len(entries)
		for _, k := range kinds {
			i := len(entries)
			e := audit.Entry{Time: now.Add(time.Duration(k.at) * time.Millisecond), Instance: k.instance, Actor: fmt.Sprintf("key-%d", i%3),
				Action: k.action, Target: fmt.Sprintf("jti:%04d", i), Result: k.result, RequestID: fmt.Sprintf("req-%d", i),
				ClientIP: "192.0.2.7", Detail: fmt.Sprintf("profile=p%d \"q\" <%d>", i%2, i)}
			prev := audit.Entry{}
			if i > 0 {
				prev = entries[i-1]
			}
			e.Link("host", prev)
			entries = append(entries, e)
		}
		if n, err := s.AppendAudit(ctx, entries[from:]); err != nil || n != len(kinds) {
			t.Fatalf("AppendAudit: %d %v", n, err)
		}
	}
	run := func(at, n int) []kind {
		wantRows += (n + maxRun - 1) / maxRun
		return slices.Repeat([]kind{{at, "host", audit.ActionMint, audit.ResultOK}}, n)
	}
	for at, n := range []int{1, 2, 3, 255, 256, 257, 2*256 + 7} {
		appendBatch(run(at, n)...)
	}
	// Mixed: each entry breaks the run before it.
	appendBatch(slices.Concat(run(10, 3), []kind{{10, "host", audit.ActionRevoke, audit.ResultOK}}, run(10, 2),
		[]kind{{10, "other-host", audit.ActionMint, audit.ResultOK}}, run(10, 1), []kind{{10, "host", audit.ActionMint, "failed"}},
		run(11, 2), run(10, 4))...)
	wantRows += 3
	got, err := s.AuditList(ctx, audit.Query{Chain: "host", Order: audit.BySeq})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(entries) {
		t.Fatalf("%d entries read back, want %d", len(got), len(entries))
	}
	for i := range entries {
		if got[i] != entries[i] {
			t.Errorf("entry %d read back as\n%+v, want\n%+v", i, got[i], entries[i])
		}
	}
	var rows, runs int
	if err := s.read.QueryRow(`SELECT count(*), count(more) FROM audit`).Scan(&rows, &runs); err != nil || rows != wantRows || runs == 0 {
		t.Errorf("%d rows, %d of them runs (%v), want %d rows", rows, runs, err, wantRows)
	}
	checkView(t, s, entries)
	if reps, err := audit.Verify(ctx, s); err != nil || len(reps) != 1 || reps[0].Entries != int64(len(entries)) {
		t.Errorf("verify: %+v %v", reps, err)
	}
}

// checkView checks that the audit_entries view lists entries, and no
// other, as the store reads them.
func checkView(t *testing.T, s *Store, entries []audit.Entry) {
	t.Helper()
	rows, err := s.read.Query(`SELECT ` + auditColumns + ` FROM audit_entries ORDER BY chain, seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var ns int64
		if err := rows.Scan(&e.Chain, &e.Seq, &ns, &e.Instance, &e.Actor, &e.Action, &e.Target, &e.Result, &e.RequestID,
			&e.ClientIP, &e.Detail, &e.Prev, &e.Hash); err != nil {
			t.Fatal(err)
		}
		e.Time = time.Unix(0, ns).UTC()
		got = append(got, e)
	}
	if err := rows.Err(); err != nil || !slices.Equal(got, entries) {
		t.Errorf("audit_entries lists %d entries (%v), want the %d the store reads; first that differs:\n%v", len(got), err, len(entries),
			firstDiff(got, entries))
	}
}

func firstDiff(got, want []audit.Entry) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%+v\nwant\n%+v", got[i], want[i])
		}
	}
	return "(one is a prefix of the other)"
}

// A commit's keyed mints, minted at different times, are stamped with the
// last one's and take one row. Every listing reads them back as they were
// linked, in pages that cut the run or not; the head is the run's last
// entry; a purge that cuts the run keeps the rest of it; and verify finds
// an entry of the run changed, the run cut short, and a run that is not
// the list jwtd writes, each at its entry.
func TestAuditRunOfACommit(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	tr := audit.NewTrail(s, audit.Options{Chain: "n", Required: true})
	defer tr.Close()
	record1 := func(target string) {
		t.Helper()
		if err := tr.Record(ctx, audit.Entry{Actor: "ops", Action: audit.ActionRevoke, Target: target}); err != nil {
			t.Fatal(err)
		}
	}
	record1("xid:1")
	now := time.Now().UTC()
	batch := make([]*record.Record, 20)
	for i := range batch {
		jti := fmt.Sprintf("j%02d", i)
		e := tr.Stamp(audit.Entry{Actor: []string{"a", "b"}[i%2], Action: audit.ActionMint, Target: audit.MintTarget(jti, ""),
			RequestID: "r" + jti, ClientIP: "192.0.2.1", Detail: "profile=default"})
		e.Time = now.Add(time.Duration(i) * time.Microsecond)
		batch[i] = &record.Record{JTI: jti, Profile: "default", Kid: "k", Alg: "ES256", Issued: now, Expires: now.Add(time.Minute),
			TokenSHA256: fmt.Sprintf("%064x", i), Audit: &e}
	}
	results, err := s.commit(batch)
	if err != nil || errors.Join(results...) != nil {
		t.Fatal(err, results)
	}
	for _, r := range batch {
		if !r.Audit.Time.Equal(now.Add(19 * time.Microsecond)) {
			t.Errorf("entry %d stamped %v, want the last mint's time", r.Audit.Seq, r.Audit.Time)
		}
		tr.Committed(*r.Audit)
	}
	record1("xid:2")
	all, err := s.AuditList(ctx, audit.Query{Chain: "n", Order: audit.BySeq})
	if err != nil || len(all) != 22 {
		t.Fatalf("%d entries, %v", len(all), err)
	}
	for i, r := range batch {
		if all[i+1] != *r.Audit {
			t.Errorf("entry %d read back as\n%+v, want\n%+v", i+1, all[i+1], *r.Audit)
		}
	}
	var rows, runs int
	if err := s.read.QueryRow(`SELECT count(*), count(more) FROM audit`).Scan(&rows, &runs); err != nil || rows != 3 || runs != 1 {
		t.Errorf("%d rows, %d runs (%v), want 3 rows, one a run", rows, runs, err)
	}
	checkView(t, s, all)
	// The view as an operator reads it, with the sqlite3 CLI (make test
	// installs it) beside the open store.
	out, err := exec.Command("sqlite3", "-readonly", "-json", s.Path(),
		`SELECT chain, seq, actor, target, prev, hash FROM audit_entries ORDER BY chain, seq`).Output()
	if err != nil {
		t.Fatalf("sqlite3 -readonly -json: %v (make test installs the sqlite3 CLI: apt-get install sqlite3)", err)
	}
	var cli []audit.Entry
	if err := json.Unmarshal(out, &cli); err != nil || len(cli) != len(all) {
		t.Fatalf("sqlite3 listed %d entries (%v), want %d:\n%s", len(cli), err, len(all), out)
	}
	for i, e := range cli {
		if w := all[i]; e.Chain != w.Chain || e.Seq != w.Seq || e.Actor != w.Actor || e.Target != w.Target || e.Prev != w.Prev || e.Hash != w.Hash {
			t.Errorf("sqlite3 lists %+v, want %+v", e, w)
		}
	}

	// Listings against the entries sorted, every page size.
	byTime := slices.Clone(all)
	slices.SortStableFunc(byTime, func(a, b audit.Entry) int { return a.Time.Compare(b.Time) })
	for _, q := range []audit.Query{{}, {Order: audit.Oldest}, {Actor: "b"}, {Actor: "a", Order: audit.Oldest}, {Target: "jti:j07"},
		{Action: audit.ActionMint, Order: audit.Oldest}, {Action: audit.ActionRevoke}, {Since: now.Add(time.Second)}} {
		var want []audit.Entry
		for _, e := range byTime {
			if (q.Actor == "" || e.Actor == q.Actor) && (q.Action == "" || e.Action == q.Action) &&
				(q.Target == "" || audit.TargetMatches(q.Target, e.Target)) && (q.Since.IsZero() || !e.Time.Before(q.Since)) {
				want = append(want, e)
			}
		}
		if q.Order == audit.Newest {
			slices.Reverse(want)
		}
		for _, limit := range []int{1, 3, 7, 100} {
			q := q
			q.Limit = limit
			var got []audit.Entry
			for range 30 {
				p, err := audit.List(ctx, s, q)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, p.Entries...)
				if q.After = p.Next; q.After == "" {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: %d entries, want %d: %s", q, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	for after := range int64(23) {
		got, err := s.AuditList(ctx, audit.Query{Chain: "n", Order: audit.BySeq, AfterSeq: after, Limit: 5})
		if want := all[min(after, 22):min(after+5, 22)]; err != nil || !slices.Equal(got, want) {
			t.Errorf("after seq %d: %v %v, want %v", after, got, err, want)
		}
	}
	if h, err := s.AuditHead(ctx, "n"); err != nil || h != all[21] {
		t.Errorf("head %+v %v", h, err)
	}

	// Changed in the store: each found at its entry, then put back.
	var more string
	if err := s.read.QueryRow(`SELECT more FROM audit WHERE more IS NOT NULL`).Scan(&more); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		set    string
		seq    int64
		reason string
	}{
		{`json_set(more, '$[4][1]', 'jti:forged')`, 7, "does not match its hash"},
		{`json_set(more, '$[4][5]', '` + strings.Repeat("0", 64) + `')`, 7, "does not match its hash"},
		{`json_remove(more, '$[18]')`, 21, "missing"},
		{`NULL`, 3, "missing"},
		{`'[["a"]]'`, 3, "not six strings"},
		{`json_set(more, '$[3][1]', 7)`, 6, "not six strings"},
		{`'not json'`, 3, "not a list"},
	} {
		if _, err := s.write.Exec(`UPDATE audit SET more = ` + tc.set + ` WHERE more IS NOT NULL`); err != nil {
			t.Fatal(err)
		}
		_, err := audit.Verify(ctx, s)
		var b *audit.Break
		if !errors.As(err, &b) || b.Seq != tc.seq || !strings.Contains(b.Reason, tc.reason) {
			t.Errorf("more = %s: verify %v, want a break at %d (%s)", tc.set, err, tc.seq, tc.reason)
		}
		if _, err := s.write.Exec(`UPDATE audit SET more = ? WHERE seq = 2`, more); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Fatal(err)
	}

	// A purge to the middle of the run deletes the entries before it and
	// keeps the rest, a row of its own; one row a call.
	for _, want := range []int{1, 5} {
		if n, err := s.PurgeAudit(ctx, "n", 7, 1); err != nil || n != want {
			t.Errorf("purge: %d %v, want %d", n, err, want)
		}
	}
	if n, err := s.PurgeAudit(ctx, "n", 7, 1); err != nil || n != 0 {
		t.Errorf("purge again: %d %v, want 0", n, err)
	}
	got, err := s.AuditList(ctx, audit.Query{Chain: "n", Order: audit.BySeq})
	if err != nil || !slices.Equal(got, all[6:]) {
		t.Errorf("after the purge: %v %v, want %v", got, err, all[6:])
	}
	checkView(t, s, all[6:])
	var b *audit.Break
	if _, err := audit.Verify(ctx, s); !errors.As(err, &b) || b.Seq != 6 || !strings.Contains(b.Reason, "no purge entry") {
		t.Errorf("verify after an unclaimed purge: %v", err)
	}
}

// openTwo opens two stores on one file (two processes), closed when the
// test ends.
func openTwo(t *testing.T) (*Store, *Store) {
	t.Helper()
	a := openTemp(t)
	b, err := Open(a.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// mintBatch is n records of keyed mints whose entries are of chain,
// minted a nanosecond apart.
func mintBatch(prefix string, n int, chain string) []*record.Record {
	now := time.Now().UTC()
	out := make([]*record.Record, n)
	for i := range out {
		jti := fmt.Sprintf("%s-%d", prefix, i)
		out[i] = &record.Record{JTI: jti, Profile: "default", Kid: "k1", Alg: "ES256", Issued: now, Expires: now.Add(time.Hour),
			Audit: &audit.Entry{Chain: chain, Instance: chain, Time: now.Add(time.Duration(i)), Actor: "issuer", Action: audit.ActionMint,
				Target: "jti:" + jti, Result: audit.ResultOK}}
	}
	return out
}

// commitOK commits b on s, every record and entry written.
func commitOK(t *testing.T, s *Store, b []*record.Record) {
	t.Helper()
	res, err := s.commit(b)
	if err != nil || errors.Join(res...) != nil {
		t.Fatal(err, res)
	}
}

// Runs of every length about 256 in three chains whose times tie within
// and across them, with revocations and failed mints between: every
// listing, each order and filter, whole and in pages that cut runs,
// lists what a model of the entries does, and a listing by sequence
// number from every entry of a chain does too.
func TestAuditListingsOfRuns(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	rng := rand.New(rand.NewPCG(1, 3))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var all []audit.Entry
	for _, c := range []string{"b", "a", "c"} {
		head, at := audit.Entry{}, base
		for batch := range 5 {
			var es []audit.Entry
			n := []int{1, 2, 3, 5, 40, 255, 256, 257, 300}[rng.IntN(9)]
			if rng.IntN(3) == 0 {
				n = 1 + rng.IntN(4)
			}
			at = at.Add(time.Duration(rng.IntN(3)) * time.Second)
			for i := range n {
				e := audit.Entry{Time: at, Instance: c, Actor: []string{"x", "y", "z"}[rng.IntN(3)], Action: audit.ActionMint,
					Target: audit.MintTarget(fmt.Sprintf("%s%d-%d", c, batch, i), fmt.Sprintf("tx%d", rng.IntN(4))), Result: audit.ResultOK,
					RequestID: "r", Detail: "profile=p"}
				if rng.IntN(12) == 0 {
					e.Action, e.Actor, e.Target = audit.ActionRevoke, "x", fmt.Sprintf("xid:tx%d", rng.IntN(4))
				}
				if rng.IntN(40) == 0 {
					e.Result = audit.ResultFailed
				}
				e.Link(c, head)
				es, head = append(es, e), e
			}
			if _, err := s.AppendAudit(ctx, es); err != nil {
				t.Fatal(err)
			}
			all = append(all, es...)
		}
	}
	var runs int
	if err := s.read.QueryRow(`SELECT count(more) FROM audit`).Scan(&runs); err != nil || runs < 20 {
		t.Fatalf("%d runs (%v), want many", runs, err)
	}
	byTime := slices.Clone(all)
	slices.SortFunc(byTime, func(a, b audit.Entry) int {
		return cmp.Or(a.Time.Compare(b.Time), strings.Compare(a.Chain, b.Chain), cmp.Compare(a.Seq, b.Seq))
	})
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	for i, f := range []audit.Query{{}, {Actor: "x"}, {Chain: "a"}, {Since: at(10)}, {Actor: "y", Action: audit.ActionMint}, {Action: audit.ActionRevoke},
		{Action: audit.ActionMint}, {Target: "xid:tx1"}, {Target: "jti:a3-1"}, {Target: "jti:a3-1 xid:tx1"}, {Target: "jti:a3"},
		{Until: at(12)}, {Since: at(5), Until: at(20), Actor: "z"}, {Chain: "b", Actor: "x"},
		{Chain: "c", Since: at(7)}, {Actor: "x", Action: audit.ActionRevoke}} {
		var want []audit.Entry
		for _, e := range byTime {
			if (f.Chain == "" || e.Chain == f.Chain) && (f.Actor == "" || e.Actor == f.Actor) && (f.Action == "" || e.Action == f.Action) &&
				(f.Target == "" || audit.TargetMatches(f.Target, e.Target)) && (f.Since.IsZero() || !e.Time.Before(f.Since)) &&
				(f.Until.IsZero() || e.Time.Before(f.Until)) {
				want = append(want, e)
			}
		}
		for _, order := range []audit.Order{audit.Newest, audit.Oldest, audit.BySeq} {
			if order == audit.BySeq && f.Chain == "" {
				continue
			}
			w := slices.Clone(want)
			switch order {
			case audit.Newest:
				slices.Reverse(w)
			case audit.BySeq:
				slices.SortFunc(w, func(a, b audit.Entry) int { return cmp.Compare(a.Seq, b.Seq) })
			}
			limits := []int{0, 256}
			if i < 4 { // pages of 7 too, for the listings of the most entries
				limits = append(limits, 7)
			}
			for _, limit := range limits {
				q := f
				q.Order, q.Limit = order, limit
				var got []audit.Entry
				for pages := 0; ; pages++ {
					if pages > len(all) {
						t.Fatalf("%+v: more pages than entries", q)
					}
					es, err := s.AuditList(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, es...)
					if limit == 0 || len(es) < limit {
						break
					}
					q.After, q.AfterSeq = audit.Cursor(es[len(es)-1]), es[len(es)-1].Seq
				}
				if !slices.Equal(got, w) {
					t.Errorf("%+v: %d entries, want %d: %s", q, len(got), len(w), firstDiff(got, w))
				}
			}
		}
	}
	var chainA []audit.Entry
	for _, e := range all {
		if e.Chain == "a" {
			chainA = append(chainA, e)
		}
	}
	for after := int64(-1); after <= int64(len(chainA))+1; after++ {
		got, err := s.AuditList(ctx, audit.Query{Chain: "a", Order: audit.BySeq, AfterSeq: after, Limit: 5})
		lo := min(max(after, 0), int64(len(chainA)))
		if want := chainA[lo:min(lo+5, int64(len(chainA)))]; err != nil || !slices.Equal(got, want) {
			t.Fatalf("after seq %d: %d entries %v, want %d", after, len(got), err, len(want))
		}
	}
	if h, err := s.AuditHead(ctx, "a"); err != nil || h != chainA[len(chainA)-1] {
		t.Errorf("head of a: %+v %v", h, err)
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Fatal(err)
	}
}

// A store whose kept head is stale after another store on the file wrote
// a run and purged to the middle of it (the rowid of the run's first
// entry free again) links its next commit after the other's last entry,
// not after its own kept head.
func TestAuditStaleHeadAfterPurgeCut(t *testing.T) {
	ctx := context.Background()
	a, b := openTwo(t)
	commitOK(t, a, mintBatch("a", 10, "host")) // 1 to 10; a keeps 10
	commitOK(t, b, mintBatch("b", 10, "host")) // 11 to 20, one row at 11
	if n, err := b.PurgeAudit(ctx, "host", 15, 200); err != nil || n != 14 {
		t.Fatalf("purge: %d %v, want 14", n, err)
	}
	batch := mintBatch("c", 6, "host")
	commitOK(t, a, batch)
	if first := batch[0].Audit.Seq; first != 21 {
		t.Errorf("the stale store linked its run from seq %d, want 21", first)
	}
	got, err := a.AuditList(ctx, audit.Query{Chain: "host", Order: audit.BySeq})
	if err != nil || len(got) != 12 || got[0].Seq != 15 || got[11].Seq != 26 {
		t.Fatalf("entries %d from %d (%v), want 15 to 26", len(got), got[0].Seq, err)
	}
	var br *audit.Break // the chain is whole but for its unclaimed start
	if _, err := audit.Verify(ctx, a); !errors.As(err, &br) || br.Seq != 14 || !strings.Contains(br.Reason, "no purge entry") {
		t.Errorf("verify: %v, want only the unclaimed start", err)
	}
}

// Keyed mints' commits and the same store's trail write one chain at
// once (an instance's mints and its revocations): every mint's entry is
// written, and the chain verifies. And a head kept that went stale
// without another connection's commit to show it (kept out of order) is
// found at the commit's first row taken, read again, and forgotten: the
// commit and the ones after it write their entries.
func TestAuditTrailBesideCommits(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	tr := audit.NewTrail(s, audit.Options{Chain: "m", Required: true})
	defer tr.Close()
	now := time.Now().UTC()
	stop := make(chan struct{})
	trailDone := make(chan int)
	go func() {
		n := 0
		for ; ; n++ {
			select {
			case <-stop:
				trailDone <- n
				return
			default:
			}
			if err := tr.Record(ctx, audit.Entry{Actor: "ops", Action: audit.ActionRevoke, Target: fmt.Sprintf("xid:%d", n)}); err != nil {
				t.Error(err)
			}
		}
	}()
	var wg sync.WaitGroup
	const minters, each = 8, 150
	for w := range minters {
		wg.Go(func() {
			for i := range each {
				jti := fmt.Sprintf("j-%d-%d", w, i)
				e := tr.Stamp(audit.Entry{Actor: "issuer", Action: audit.ActionMint, Target: "jti:" + jti})
				r := &record.Record{JTI: jti, Profile: "default", Kid: "k1", Alg: "ES256", Issued: now, Expires: now.Add(time.Hour), Audit: &e}
				if err := s.Insert(ctx, r); err != nil {
					t.Errorf("mint %s: %v", jti, err)
					return
				}
				tr.Committed(*r.Audit)
			}
		})
	}
	wg.Wait()
	close(stop)
	revocations := <-trailDone
	if reps, err := audit.Verify(ctx, s); err != nil || len(reps) != 1 || reps[0].Entries != int64(minters*each+revocations) {
		t.Errorf("verify: %+v %v, want %d entries", reps, err, minters*each+revocations)
	}

	stale, _ := s.keptHead("m")
	commitOK(t, s, mintBatch("a", 3, "m"))
	s.keepHeads(map[string]chainHead{"m": stale})
	for i := range 3 {
		batch := mintBatch(fmt.Sprint("b", i), 2, "m")
		commitOK(t, s, batch)
		if want := stale.Seq + 4 + 2*int64(i); batch[0].Audit.Seq != want {
			t.Errorf("commit %d after a stale head: linked from %d, want %d", i, batch[0].Audit.Seq, want)
		}
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Error(err)
	}
}

// A retention purge goes past a chain it cannot read (its first run
// changed in the store) and purges the others, and says which it could
// not.
func TestAuditPurgePastUnreadableChain(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	commitOK(t, s, mintBatch("a", 5, "a"))
	commitOK(t, s, mintBatch("b", 5, "b"))
	commitOK(t, s, mintBatch("b2", 1, "b"))
	if _, err := s.write.Exec(`UPDATE audit SET more = 'not json' WHERE chain = 'a'`); err != nil {
		t.Fatal(err)
	}
	tr := audit.NewTrail(s, audit.Options{Chain: "p", Required: true, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	defer tr.Close()
	n, err := audit.Purge(ctx, s, tr, time.Now().Add(time.Minute))
	var br *audit.Break
	if n != 5 || !errors.As(err, &br) || br.Chain != "a" || !strings.Contains(err.Error(), `purging chain "a"`) {
		t.Errorf("purge: %d %v, want b's 5 purged and a's break", n, err)
	}
	if got, err := s.AuditList(ctx, audit.Query{Chain: "b", Order: audit.BySeq}); err != nil || len(got) != 1 || got[0].Seq != 6 {
		t.Errorf("b after the purge: %+v %v, want its head alone", got, err)
	}
}

// A retention purge whose first entry kept is a chain's head, the last of
// a run, cuts the run there (the purging instance's chain the same or
// another); the chains verify and the view lists what is left.
func TestAuditPurgeToHeadInRun(t *testing.T) {
	ctx := context.Background()
	for _, purger := range []string{"n", "p"} {
		s := openTemp(t)
		commitOK(t, s, mintBatch("x", 5, "n"))
		commitOK(t, s, mintBatch("y", 300, "n")) // rows at 6 (256 entries) and 262 (44)
		tr := audit.NewTrail(s, audit.Options{Chain: purger, Required: true, Now: func() time.Time { return time.Now().Add(time.Hour) }})
		n, err := audit.Purge(ctx, s, tr, time.Now().Add(time.Minute)) // keeps the head alone: seq 305
		tr.Close()
		if err != nil || n != 304 {
			t.Errorf("purged by %s: %d %v, want 304", purger, n, err)
		}
		if _, err := audit.Verify(ctx, s); err != nil {
			t.Errorf("purged by %s: %v", purger, err)
		}
		got, err := s.AuditList(ctx, audit.Query{Chain: "n", Order: audit.BySeq})
		if err != nil || len(got) == 0 || got[0].Seq != 305 {
			t.Fatalf("purged by %s: %+v %v, want n from its head", purger, got, err)
		}
		var left []audit.Entry
		for _, c := range []string{"n", "p"} {
			es, err := s.AuditList(ctx, audit.Query{Chain: c, Order: audit.BySeq})
			if err != nil {
				t.Fatal(err)
			}
			left = append(left, es...)
		}
		checkView(t, s, left)
	}
}

// A run changed in the store so that it cannot be read is a broken chain
// to every reader and writer: a commit writes its records and refuses
// their entries (the trail retries them, or a required trail refuses the
// mint), an append and a listing through it fail, each naming the break;
// the head row put back from a backup with the sqlite3 command the docs
// give, the chain goes on; a purge past a broken row deletes it.
func TestAuditUnreadableRun(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	commitOK(t, s, mintBatch("x", 5, "n")) // a row at 1
	commitOK(t, s, mintBatch("y", 3, "n")) // a row at 6, the head
	backup := filepath.Join(t.TempDir(), "jwtd-backup.db")
	if err := s.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if _, err := s.write.Exec(`UPDATE audit SET more = 'not json'`); err != nil {
		t.Fatal(err)
	}
	other, err := Open(s.Path(), Options{}) // no head kept
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var br *audit.Break
	res, err := other.commit(mintBatch("z", 2, "n"))
	if err != nil || len(res) != 2 || !errors.Is(res[0], audit.ErrNotWritten) || !errors.As(res[0], &br) || br.Seq != 7 {
		t.Errorf("commit after the head row broke: %v %v", res, err)
	}
	if r, err := other.ByJTI(ctx, "z-0"); err != nil || r.JTI != "z-0" {
		t.Errorf("the record of a refused entry: %v %v", r, err)
	}
	e := audit.Entry{Time: time.Now(), Instance: "n", Actor: "ops", Action: audit.ActionRevoke, Result: audit.ResultOK}
	e.Link("n", audit.Entry{Seq: 8})
	if _, err := other.AppendAudit(ctx, []audit.Entry{e}); !errors.As(err, &br) {
		t.Errorf("append after the head row broke: %v", err)
	}
	if _, err := other.AuditList(ctx, audit.Query{Action: audit.ActionMint}); !errors.As(err, &br) {
		t.Errorf("a listing through the broken rows: %v", err)
	}
	// The head row back (docs/audit-and-backup.md), the first row still broken.
	restore := fmt.Sprintf(`ATTACH '%s' AS b;
  UPDATE audit SET more = (SELECT o.more FROM b.audit AS o WHERE o.id = main.audit.id)
  WHERE id = (SELECT id FROM b.audit WHERE chain = 'n' AND seq <= %d ORDER BY id DESC LIMIT 1);
  SELECT changes()`, backup, br.Seq)
	if out, err := exec.Command("sqlite3", s.Path(), restore).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("sqlite3: %v %s, want 1 row changed", err, out)
	}
	var listed int // the broken run's first entry alone, and the run put back
	if err := s.read.QueryRow(`SELECT count(*) FROM audit_entries`).Scan(&listed); err != nil || listed != 1+3 {
		t.Errorf("audit_entries beside a broken run: %d entries, %v; want 4", listed, err)
	}

	commitOK(t, other, mintBatch("w", 2, "n"))
	if n, err := other.PurgeAudit(ctx, "n", 6, 200); err != nil || n != 1 {
		t.Errorf("a purge of the broken row below 6: %d %v, want the row gone", n, err)
	}
	var claim *audit.Break // the chain verifies but for its unclaimed start
	if _, err := audit.Verify(ctx, other); !errors.As(err, &claim) || claim.Seq != 5 || !strings.Contains(claim.Reason, "no purge entry") {
		t.Errorf("verify after the head row was put back and the broken one purged: %v", err)
	}
}

// Two stores on one file (two processes with one instance name, such as
// the server and a jwtd command): the head one store keeps of a chain
// goes stale when the other writes, and its next entry is linked after
// the entry the other wrote, not beside it.
func TestKeptHeadAdvancedElsewhere(t *testing.T) {
	server, cli := openTwo(t)
	ctx := context.Background()
	now := time.Now().UTC()
	mint := func(jti string) *record.Record {
		return &record.Record{JTI: jti, Profile: "default", Kid: "k1", Alg: "ES256", Issued: now, Expires: now.Add(time.Hour),
			Audit: &audit.Entry{Chain: "host", Instance: "host", Time: now, Actor: "issuer", Action: audit.ActionMint,
				Target: "jti:" + jti, Result: audit.ResultOK}}
	}
	if err := server.Insert(ctx, mint("a")); err != nil {
		t.Fatal(err)
	}
	tr := audit.NewTrail(cli, audit.Options{Chain: "host", Required: true})
	if err := tr.Record(ctx, audit.Entry{Actor: audit.ActorCLI, Action: audit.ActionKeyShow}); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	r := mint("b")
	if err := server.Insert(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Audit.Seq != 3 {
		t.Errorf("the server's entry after the command's: seq %d, want 3", r.Audit.Seq)
	}
	if reps, err := audit.Verify(ctx, server); err != nil || len(reps) != 1 || reps[0].Entries != 3 {
		t.Errorf("verify: %+v %v", reps, err)
	}
}

// The audit filters use the indexes made for them: by time, by actor and
// target where the filter cannot match a keyed mint's entry (the indexes
// leave those out), and the rowid (chain and sequence number) for a chain;
// a listing's rows come in its order, with no sort, on every page.
func TestAuditQueryPlans(t *testing.T) {
	s := openTemp(t)
	last := &rowKey{id: 1 << seqBits, Entry: audit.Entry{Chain: "c", Seq: 1, Time: time.Now()}}
	cursor := audit.Cursor(last.Entry)
	for _, tc := range []struct {
		q    audit.Query
		last *rowKey
		want string
	}{
		{audit.Query{Limit: 101}, nil, "INDEX audit_time "},
		{audit.Query{Limit: 101}, last, "SEARCH audit USING INDEX audit_time ((time,chain,seq)<(?,?,?))"},
		{audit.Query{Limit: 101, After: cursor}, nil, "SEARCH audit USING INDEX audit_time ((time,chain,seq)<(?,?,?))"},
		{audit.Query{Order: audit.Oldest, Limit: 101, After: cursor}, nil, "SEARCH audit USING INDEX audit_time ((time,chain,seq)>(?,?,?))"},
		{audit.Query{Since: time.Now(), Order: audit.Oldest}, nil, "INDEX audit_time "},
		{audit.Query{Chain: "c", Order: audit.BySeq, AfterSeq: 7}, nil, "SEARCH audit USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{audit.Query{Chain: "c", Order: audit.BySeq, Limit: 1000}, last, "SEARCH audit USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"},
		{audit.Query{Target: "xid:tx-1", Limit: 101}, nil, "INDEX audit_target "},
		{audit.Query{Target: "profile:default", Action: audit.ActionKeyRotate}, nil, "INDEX audit_target "},
		{audit.Query{Actor: "ops", Action: audit.ActionRevoke, Limit: 101}, nil, "INDEX audit_actor "},
		{audit.Query{Actor: "issuer", Limit: 101}, nil, "INDEX audit_time "}, // may be mints: newest first
	} {
		text, args, err := auditQuery(tc.q, tc.last, tc.q.Limit)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.read.Query(`EXPLAIN QUERY PLAN `+text, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, " ; ") + " "
		if !strings.Contains(p, tc.want) || strings.Contains(tc.want, "audit_time") && strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%+v after %v: plan %q, want %q", tc.q, tc.last, plan, tc.want)
		}
	}
}
