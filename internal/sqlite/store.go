// Package sqlite is jwtd's embedded record store: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode with synchronous=FULL, so a committed
// record survives a crash or power loss. Inserts go through one writer that
// commits concurrent requests together (group commit): each caller waits for
// the transaction that holds its record.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/secretfile"
)

var _ record.Store = (*Store)(nil)

// Options tune group commit (see record.NewGroupCommitter). The zero value
// is usable.
type Options struct {
	record.GroupOptions // the group committer: batch, linger, bounds, observer
}

// Store is a record.Store over one SQLite file.
type Store struct {
	path  string
	read  *sql.DB // readers; WAL lets them run beside the writer
	write *sql.DB // one connection: the group committer, revocations, purges
	// Statements prepared once: parsing SQL is a large part of a small
	// query's cost.
	byJTIStmt, byXIDStmt *sql.Stmt   // on read
	owners, existing     *sql.Stmt   // on write: the phones of a batch's XIDs, its jtis already stored
	closed               *sql.Stmt   // on write: which of a batch's XIDs are closed
	auditHead            *sql.Stmt   // on write: a chain's last entry, in the commit that links after it
	dataVersion          *sql.Stmt   // on write: PRAGMA data_version, which other connections' commits change
	chainID, newChain    *sql.Stmt   // on write: a chain's number, and a new chain numbered
	insertTokens         multiInsert // on write: records
	insertAudit          multiInsert // on write: audit rows

	mu      sync.Mutex
	heads   map[string]chainHead // chains as last written or read in a commit (insertEntries)
	version int64                // the write connection's data_version when heads were last known good

	group *record.GroupCommitter
}

// The schema, version 3. What a commit costs is mostly the B-tree pages it
// dirties, each written to the WAL, so: records are a rowid table, appended
// in commit order; the jti index grows at its end too, since jwtd's jtis
// start with the minting time; the caller's keys are in small indexes,
// (xid, phone), which answers Get Status and, from the index alone, whether
// an XID belongs to another phone, and (phone, issued). The token hash is
// its 32 bytes.
const schema = `
CREATE TABLE IF NOT EXISTS tokens (
	jti          TEXT NOT NULL UNIQUE,
	profile      TEXT NOT NULL,
	kid          TEXT NOT NULL,
	alg          TEXT NOT NULL,
	xid          TEXT NOT NULL DEFAULT '',
	phone        TEXT NOT NULL DEFAULT '',
	subject      TEXT NOT NULL DEFAULT '',
	issued       INTEGER NOT NULL,
	expires      INTEGER NOT NULL,
	revoked      INTEGER,
	client_ip    TEXT NOT NULL DEFAULT '',
	token_sha256 BLOB NOT NULL,
	token        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tokens_xid_phone ON tokens (xid, phone) WHERE xid != '';
CREATE INDEX IF NOT EXISTS tokens_phone ON tokens (phone, issued DESC, jti DESC) WHERE phone != '';
CREATE INDEX IF NOT EXISTS tokens_expires ON tokens (expires);
CREATE INDEX IF NOT EXISTS tokens_revoked ON tokens (revoked) WHERE revoked IS NOT NULL;
CREATE TABLE IF NOT EXISTS outcomes (
	xid         TEXT NOT NULL,
	status      TEXT NOT NULL,
	code        INTEGER NOT NULL DEFAULT 0,
	description TEXT NOT NULL DEFAULT '',
	updated_on  INTEGER NOT NULL,
	source      TEXT NOT NULL DEFAULT '',
	recorded    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_xid ON outcomes (xid, updated_on DESC, recorded DESC);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS keyrings (profile TEXT PRIMARY KEY, version INTEGER NOT NULL, keys BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_history (
	fingerprint TEXT PRIMARY KEY,
	kid         TEXT NOT NULL,
	alg         TEXT NOT NULL,
	profiles    TEXT NOT NULL,
	recorded    INTEGER NOT NULL,
	lifetime    INTEGER NOT NULL,
	added       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS closed_xids (xid TEXT PRIMARY KEY, closed INTEGER NOT NULL) WITHOUT ROWID;
` + auditTables + auditIndexes + auditView + `
PRAGMA user_version = 7;
`

// auditTables are the audit table of schema version 7 and the numbers of
// its chains. A row holds an entry, or a run of keyed mints' entries (its
// first in the columns, the others in more: runs); its rowid is its
// chain's number above its first entry's sequence number (entryID), so the
// table is its own (chain, seq) key: a commit writes no separate index for
// it, and a row at a sequence number taken is refused as a rowid taken. It is a rowid
// table, so that a chain's entries are appended (SQLite splits the last
// page of a rowid table in a step; version 4's WITHOUT ROWID table, whose
// rows are large for one, rebalanced pages as entries came), with hashes of
// 32 bytes, as token_sha256. chain and seq are kept as columns for the
// time index, and for an operator's queries.
const auditTables = `CREATE TABLE IF NOT EXISTS audit_chains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS audit (
	id         INTEGER PRIMARY KEY,
	chain      TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	time       INTEGER NOT NULL,
	instance   TEXT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	target     TEXT NOT NULL DEFAULT '',
	result     TEXT NOT NULL,
	request_id TEXT NOT NULL DEFAULT '',
	client_ip  TEXT NOT NULL DEFAULT '',
	detail     TEXT NOT NULL DEFAULT '',
	prev       BLOB NOT NULL DEFAULT '',
	hash       BLOB NOT NULL,
	more       TEXT
);
`

// auditIndexes are the audit table's indexes: by time (listings), and by
// actor and target for the entries that are not keyed mints'.
const auditIndexes = `CREATE INDEX IF NOT EXISTS audit_time ON audit (time, chain, seq);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, time) WHERE action != 'token.mint';
CREATE INDEX IF NOT EXISTS audit_target ON audit (target, time) WHERE action != 'token.mint';
`

// auditView lists every entry of the audit table, a run's as rows of
// their own, with hashes in hex: for an operator's queries (sqlite3
// jwtd.db 'SELECT * FROM audit_entries WHERE ...'). Functions, not the
// -> and ->> operators of SQLite 3.38: every SQLite that opens the file
// parses its views, and one that cannot parse a view reads nothing of it.
const auditView = `CREATE VIEW IF NOT EXISTS audit_entries AS
SELECT chain, seq, time, instance, actor, action, target, result, request_id, client_ip, detail,
	CASE typeof(prev) WHEN 'blob' THEN lower(hex(prev)) ELSE prev END AS prev,
	CASE typeof(hash) WHEN 'blob' THEN lower(hex(hash)) ELSE hash END AS hash
FROM audit
UNION ALL
SELECT a.chain, a.seq + r.key + 1, a.time, a.instance, json_extract(r.value, '$[0]'), a.action,
	json_extract(r.value, '$[1]'), a.result, json_extract(r.value, '$[2]'), json_extract(r.value, '$[3]'),
	json_extract(r.value, '$[4]'),
	CASE WHEN r.key > 0 THEN json_extract(a.more, '$[' || (r.key - 1) || '][5]')
		WHEN typeof(a.hash) = 'blob' THEN lower(hex(a.hash)) ELSE a.hash END,
	json_extract(r.value, '$[5]')
FROM audit AS a, json_each(CASE WHEN json_valid(a.more) THEN a.more END) AS r WHERE a.more IS NOT NULL;
`

// schemaVersion is the user_version of the schema above. Version 2 added
// the outcomes table, the one-row probe table (Ping writes it while
// commits fail) and the keyrings table (managed keys, sealed), which the
// schema's CREATE ... IF NOT EXISTS makes in a version 1 file. Version 3
// added the key history (fingerprints of every key jwtd had) and the
// closed (revoked) transactions, made the same way.
// Version 4 added the audit table (chained entries, keyed by chain and
// sequence number), made the same way in an older file. Version 5 made it
// a rowid table with binary hashes, a migration of version 4's. Version 6
// numbered the chains and keyed the table by chain and sequence number in
// its rowid, which took the place of version 5's UNIQUE (chain, seq).
// Version 7 added the audit table's more column (a row holds a run of
// keyed mints' entries) and the audit_entries view.
const schemaVersion = 7

// migrations bring an older file to the schema above, by its user_version.
var migrations = map[int]string{
	// Version 0 had jti as the primary key of a rowid table (the same
	// unique index), an (xid, issued, jti) index, and hex token hashes; a
	// hash that is not hex stays as it was.
	0: `
DROP INDEX IF EXISTS tokens_xid;
UPDATE tokens SET token_sha256 = coalesce(unhex(token_sha256), token_sha256) WHERE typeof(token_sha256) = 'text';
`,
	4: auditMigration,
	5: auditMigration,
	6: `ALTER TABLE audit ADD COLUMN more TEXT;`,
}

// auditMigration brings the audit table of version 4 (WITHOUT ROWID,
// with hex hashes) or 5 (a rowid table with UNIQUE (chain, seq)) to
// version 6's: the chains are numbered, each entry is copied with its
// rowid, hashes that are hex as their bytes (as hashValue stores them), and
// the indexes are made anew.
var auditMigration = `
ALTER TABLE audit RENAME TO audit_old;
DROP INDEX IF EXISTS audit_time;
DROP INDEX IF EXISTS audit_actor;
DROP INDEX IF EXISTS audit_target;
` + auditTables + `
INSERT INTO audit_chains (name) SELECT DISTINCT chain FROM audit_old ORDER BY chain;
INSERT INTO audit (id, ` + auditColumns + `)
	SELECT (SELECT id FROM audit_chains WHERE name = chain) << ` + strconv.Itoa(seqBits) + ` | seq,
		chain, seq, time, instance, actor, action, target, result, request_id, client_ip, detail,
		CASE WHEN length(prev) = 64 THEN coalesce(unhex(prev), prev) ELSE prev END,
		CASE WHEN length(hash) = 64 THEN coalesce(unhex(hash), hash) ELSE hash END
	FROM audit_old ORDER BY chain, seq;
DROP TABLE audit_old;
`

// Open opens (creating if needed) the store at path. A new file is created
// 0600, and SQLite gives its -wal and -shm files the same mode: records hold
// phone numbers, XIDs, client addresses and, with store_token, whole tokens.
func Open(path string, opts Options) (*Store, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%w: opening %s: %v", record.ErrUnavailable, path, err)
	}
	// Records and revocations decide which tokens verify: a file others
	// can write is refused, never chmod-ed.
	err = secretfile.Public.Check(f, false)
	f.Close()
	if err != nil {
		return nil, err
	}
	dsn := func(extra string) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode() + extra
	}
	// The writer keeps up to 32 MiB of pages (SQLite's default is 8): the
	// index pages a commit updates are then read from memory, not the file.
	write, err := sql.Open("sqlite", dsn("&_txlock=immediate&_pragma=cache_size(-32768)"))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	if err := migrate(write); err != nil {
		write.Close()
		return nil, fmt.Errorf("%w: opening %s: %v", record.ErrUnavailable, path, err)
	}
	read, err := sql.Open("sqlite", dsn(""))
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(8)
	read.SetMaxIdleConns(8)
	s := &Store{path: path, read: read, write: write, heads: map[string]chainHead{},
		insertTokens: newMultiInsert("tokens", insertColumns), insertAudit: newMultiInsert("audit", "id, "+rowColumns)}
	stmts := []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{write, &s.owners, `SELECT DISTINCT xid, phone FROM tokens WHERE xid != '' AND xid IN (SELECT value FROM json_each(?))`},
		{write, &s.existing, `SELECT jti FROM tokens WHERE jti IN (SELECT value FROM json_each(?))`},
		{write, &s.closed, `SELECT xid FROM closed_xids WHERE xid IN (SELECT value FROM json_each(?))`},
		{write, &s.auditHead, `SELECT ` + rowColumns + ` FROM audit WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT 1`},
		{write, &s.dataVersion, `PRAGMA data_version`},
		{write, &s.chainID, `SELECT id FROM audit_chains WHERE name = ?`},
		{write, &s.newChain, `INSERT INTO audit_chains (name) VALUES (?) RETURNING id`},
		{read, &s.byJTIStmt, `SELECT ` + columns + ` FROM tokens WHERE jti = ?`},
		{read, &s.byXIDStmt, `SELECT ` + columns + ` FROM tokens WHERE xid = ? AND xid != '' ORDER BY issued DESC, jti DESC LIMIT 1000`},
	}
	for _, m := range []multiInsert{s.insertTokens, s.insertAudit} {
		for i, n := range insertChunks {
			stmts = append(stmts, struct {
				db   *sql.DB
				dst  **sql.Stmt
				text string
			}{write, &m.stmts[i], m.text(n)})
		}
	}
	for _, p := range stmts {
		if *p.dst, err = p.db.Prepare(p.text); err != nil {
			write.Close()
			read.Close()
			return nil, fmt.Errorf("%w: preparing statements: %v", record.ErrUnavailable, err)
		}
	}
	s.group = record.NewGroupCommitter(s.commit, opts.GroupOptions)
	return s, nil
}

// migrate creates the schema, or brings an older file to it, in one
// transaction.
func migrate(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("the file has schema version %d, and this jwtd knows versions up to %d: run the jwtd that wrote it, or a newer one", version, schemaVersion)
	}
	if m, ok := migrations[version]; ok {
		var tables int
		if err := tx.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'tokens'`).Scan(&tables); err != nil {
			return err
		}
		if tables > 0 {
			if _, err := tx.Exec(m); err != nil {
				return fmt.Errorf("migrating from schema version %d: %w", version, err)
			}
		}
	}
	if _, err := tx.Exec(schema); err != nil {
		return err
	}
	return tx.Commit()
}

// Close stops the group committer after the inserts it has taken are
// committed, and closes the database.
func (s *Store) Close() error {
	s.group.Close()
	var errs []error
	stmts := []*sql.Stmt{s.owners, s.existing, s.closed, s.auditHead, s.dataVersion, s.chainID, s.newChain, s.byJTIStmt, s.byXIDStmt}
	for _, st := range slices.Concat(stmts, s.insertTokens.stmts, s.insertAudit.stmts) {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.write.Close(), s.read.Close())...)
}

// Ping checks that the database answers and, while commits fail, that a
// write commits.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return unavailable(err)
	}
	if s.group.Failing() == nil {
		return nil
	}
	// Commits fail (a full disk answers reads): ready again only once a
	// write commits, which this one row tries without waiting for traffic.
	if _, err := s.exec(ctx, `INSERT OR REPLACE INTO probe (id, at) VALUES (1, ?)`, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("commits fail: %w", err)
	}
	return nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) exec(ctx context.Context, q string, args ...any) (int, error) {
	res, err := s.write.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, unavailable(err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// unavailable wraps a driver error as record.ErrUnavailable, keeping
// context errors as they are.
func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, record.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: sqlite: %v", record.ErrUnavailable, err)
}

// PathFromURL turns "sqlite:///abs/path.db" or "sqlite://./rel.db" into a
// file path.
func PathFromURL(u string) (string, error) {
	rest, ok := strings.CutPrefix(u, "sqlite://")
	if !ok || rest == "" {
		return "", fmt.Errorf("store url %q is not sqlite://<path>", u)
	}
	return rest, nil
}
