// Package sqlite is jwtd's embedded record store: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode with synchronous=FULL, so a committed
// record survives a crash or power loss. Inserts go through one writer that
// commits concurrent requests together (group commit): each caller waits for
// the transaction that holds its record.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/jwtd/jwtd/internal/keys"
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
	inserts              []*sql.Stmt // on write: INSERT of insertChunks[i] rows

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
PRAGMA user_version = 3;
`

// schemaVersion is the user_version of the schema above. Version 2 added
// the outcomes table, the one-row probe table (Ping writes it while
// commits fail) and the keyrings table (managed keys, sealed), which the
// schema's CREATE ... IF NOT EXISTS makes in a version 1 file. Version 3
// added the key history (fingerprints of every key jwtd had) and the
// closed (revoked) transactions, made the same way.
const schemaVersion = 3

// migrations bring an older file to the schema above, by its user_version.
var migrations = map[int]string{
	// Version 0 had jti as the primary key of a rowid table (the same
	// unique index), an (xid, issued, jti) index, and hex token hashes; a
	// hash that is not hex stays as it was.
	0: `
DROP INDEX IF EXISTS tokens_xid;
UPDATE tokens SET token_sha256 = coalesce(unhex(token_sha256), token_sha256) WHERE typeof(token_sha256) = 'text';
`,
}

// insertChunks are the row counts of the prepared multi-row INSERTs, largest
// first: a batch is written in chunks of these sizes, so that any batch
// takes a few statements, all prepared once (at 12 parameters a row, 256
// rows stay far below SQLite's 32766).
var insertChunks = []int{256, 64, 16, 4, 1}

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
	s := &Store{path: path, read: read, write: write, inserts: make([]*sql.Stmt, len(insertChunks))}
	stmts := []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{write, &s.owners, `SELECT DISTINCT xid, phone FROM tokens WHERE xid != '' AND xid IN (SELECT value FROM json_each(?))`},
		{write, &s.existing, `SELECT jti FROM tokens WHERE jti IN (SELECT value FROM json_each(?))`},
		{write, &s.closed, `SELECT xid FROM closed_xids WHERE xid IN (SELECT value FROM json_each(?))`},
		{read, &s.byJTIStmt, `SELECT ` + columns + ` FROM tokens WHERE jti = ?`},
		{read, &s.byXIDStmt, `SELECT ` + columns + ` FROM tokens WHERE xid = ? AND xid != '' ORDER BY issued DESC, jti DESC LIMIT 1000`},
	}
	for i, n := range insertChunks {
		stmts = append(stmts, struct {
			db   *sql.DB
			dst  **sql.Stmt
			text string
		}{write, &s.inserts[i], insertRows(n)})
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

// Stats returns how many transactions and records the group committer has
// committed.
func (s *Store) Stats() (commits, records uint64) { return s.group.Stats() }

// Insert queues the record for the next group commit and waits until it is
// durable.
func (s *Store) Insert(ctx context.Context, r *record.Record) error { return s.group.Insert(ctx, r) }

// commit writes a batch in one transaction: one statement finds the jtis
// already stored, one the phones its XIDs belong to, and a few multi-row
// INSERTs write it. Per-record refusals (duplicate jti, XID conflict) are
// decided from those answers without failing the others; a failed
// transaction fails them all.
func (s *Store) commit(batch []*record.Record) ([]error, error) {
	results := make([]error, len(batch))
	err := func() error {
		ctx := context.Background()
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		stored, err := s.lookup(ctx, tx, s.existing, batch, func(r *record.Record) string { return r.JTI })
		if err != nil {
			return err
		}
		owner, err := s.lookup(ctx, tx, s.owners, batch, func(r *record.Record) string { return r.XID })
		if err != nil {
			return err
		}
		closed := map[string]string{}
		if len(owner) > 0 { // only a transaction with records can have been closed
			if closed, err = s.lookup(ctx, tx, s.closed, batch, func(r *record.Record) string { return r.XID }); err != nil {
				return err
			}
		}
		rows := make([]*record.Record, 0, len(batch))
		for i, r := range batch {
			if _, dup := stored[r.JTI]; dup {
				results[i] = record.ErrDuplicate
				continue
			}
			if r.XID != "" {
				if _, ok := closed[r.XID]; ok {
					results[i] = record.ErrXIDClosed
					continue
				}
				if p, ok := owner[r.XID]; ok && p != r.Phone {
					results[i] = record.ErrXIDConflict
					continue
				}
				owner[r.XID] = r.Phone
			}
			stored[r.JTI] = "" // a later record of the batch with this jti is a duplicate
			rows = append(rows, r)
		}
		if err := s.insert(ctx, tx, rows); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return nil, unavailable(err)
	}
	return results, nil
}

// lookup runs stmt, which takes a JSON array of the batch's non-empty keys
// and answers rows of (key) or (key, value), and returns them as a map.
func (s *Store) lookup(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, batch []*record.Record, key func(*record.Record) string) (map[string]string, error) {
	keys := make([]string, 0, len(batch))
	for _, r := range batch {
		if k := key(r); k != "" {
			keys = append(keys, k)
		}
	}
	found := make(map[string]string, len(batch))
	if len(keys) == 0 {
		return found, nil
	}
	list, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	rows, err := tx.StmtContext(ctx, stmt).QueryContext(ctx, string(list))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var k, v string
		dst := []any{&k, &v}[:len(cols)]
		if err := rows.Scan(dst...); err != nil {
			return nil, err
		}
		found[k] = v
	}
	return found, rows.Err()
}

// insertColumns are the columns a new record sets (revoked is NULL).
const insertColumns = `jti, profile, kid, alg, xid, phone, subject, issued, expires, client_ip, token_sha256, token`

// insertRows is an INSERT of n rows. It has no ON CONFLICT clause: commit
// has refused duplicates already, so a conflict here fails the transaction
// rather than drop a record whose token would be handed out.
func insertRows(n int) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO tokens (` + insertColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return q.String()
}

// insert writes rows in chunks of insertChunks' sizes.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, rows []*record.Record) error {
	args := make([]any, 0, 12*min(len(rows), insertChunks[0]))
	for i, n := range insertChunks {
		for len(rows) >= n {
			args = args[:0]
			for _, r := range rows[:n] {
				args = append(args, r.JTI, r.Profile, r.Kid, r.Alg, r.XID, r.Phone, r.Subject,
					r.Issued.UnixNano(), r.Expires.UnixNano(), r.ClientIP, hashValue(r.TokenSHA256), r.TokenText)
			}
			if _, err := tx.StmtContext(ctx, s.inserts[i]).ExecContext(ctx, args...); err != nil {
				return err
			}
			rows = rows[n:]
		}
	}
	return nil
}

// hashValue is how a token hash is stored: a SHA-256 in hex as its 32 bytes,
// anything else as the text it is (scan reads both back as they were given).
func hashValue(h string) any {
	if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
		return b
	}
	return h
}

// Close stops the group committer after the inserts it has taken are
// committed, and closes the database.
func (s *Store) Close() error {
	s.group.Close()
	var errs []error
	for _, st := range append([]*sql.Stmt{s.owners, s.existing, s.byJTIStmt, s.byXIDStmt}, s.inserts...) {
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

// Keyring returns a profile's keyring; Version 0 when none is stored.
func (s *Store) Keyring(ctx context.Context, profile string) (keys.Keyring, error) {
	ring := keys.Keyring{Profile: profile}
	var blob []byte
	err := s.read.QueryRowContext(ctx, `SELECT version, keys FROM keyrings WHERE profile = ?`, profile).Scan(&ring.Version, &blob)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ring, nil
	case err != nil:
		return ring, unavailable(err)
	}
	if err := json.Unmarshal(blob, &ring.Keys); err != nil {
		return ring, fmt.Errorf("keyring of %q: %w", profile, err)
	}
	return ring, nil
}

// PutKeyring stores ring if its version is still the stored one, in one
// statement: of several instances that read one version, one wins.
func (s *Store) PutKeyring(ctx context.Context, ring keys.Keyring) (int64, error) {
	blob, err := json.Marshal(ring.Keys)
	if err != nil {
		return 0, err
	}
	var n int
	if ring.Version == 0 {
		n, err = s.exec(ctx, `INSERT INTO keyrings (profile, version, keys) VALUES (?, 1, ?) ON CONFLICT (profile) DO NOTHING`, ring.Profile, blob)
	} else {
		n, err = s.exec(ctx, `UPDATE keyrings SET version = version + 1, keys = ? WHERE profile = ? AND version = ?`, blob, ring.Profile, ring.Version)
	}
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, keys.ErrConflict
	}
	return ring.Version + 1, nil
}

// Keyrings returns every profile's keyring.
func (s *Store) Keyrings(ctx context.Context) ([]keys.Keyring, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT profile, version, keys FROM keyrings ORDER BY profile`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []keys.Keyring
	for rows.Next() {
		var ring keys.Keyring
		var blob []byte
		if err := rows.Scan(&ring.Profile, &ring.Version, &blob); err != nil {
			return nil, unavailable(err)
		}
		if err := json.Unmarshal(blob, &ring.Keys); err != nil {
			return nil, fmt.Errorf("keyring of %q: %w", ring.Profile, err)
		}
		out = append(out, ring)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// IntegrityCheck runs PRAGMA integrity_check: "ok", or what is wrong.
func (s *Store) IntegrityCheck(ctx context.Context) (string, error) {
	var res string
	if err := s.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return "", unavailable(err)
	}
	return res, nil
}

// RememberKeys adds keys to the key history, keeping the entries it has.
func (s *Store) RememberKeys(ctx context.Context, known []keys.KnownKey) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, k := range known {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_history (fingerprint, kid, alg, profiles, recorded, lifetime, added)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING`,
			k.Fingerprint, k.Kid, k.Alg, k.Profiles, k.Recorded, int64(k.Lifetime), k.Added.UnixNano()); err != nil {
			return unavailable(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// KnownKeys returns the key history.
func (s *Store) KnownKeys(ctx context.Context) ([]keys.KnownKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT fingerprint, kid, alg, profiles, recorded, lifetime, added FROM key_history ORDER BY added, fingerprint`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []keys.KnownKey
	for rows.Next() {
		var k keys.KnownKey
		var lifetime, added int64
		if err := rows.Scan(&k.Fingerprint, &k.Kid, &k.Alg, &k.Profiles, &k.Recorded, &lifetime, &added); err != nil {
			return nil, unavailable(err)
		}
		k.Lifetime, k.Added = time.Duration(lifetime), time.Unix(0, added).UTC()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

const columns = `jti, profile, kid, alg, xid, phone, subject, issued, expires, revoked, client_ip, token_sha256, token`

func scan(sc interface{ Scan(...any) error }) (record.Record, error) {
	var r record.Record
	var issued, expires int64
	var revoked sql.NullInt64
	var sum any
	err := sc.Scan(&r.JTI, &r.Profile, &r.Kid, &r.Alg, &r.XID, &r.Phone, &r.Subject,
		&issued, &expires, &revoked, &r.ClientIP, &sum, &r.TokenText)
	switch h := sum.(type) {
	case []byte: // a hash, stored as its bytes
		r.TokenSHA256 = hex.EncodeToString(h)
	case string: // as given (or written as hex by an older jwtd)
		r.TokenSHA256 = h
	}
	r.Issued, r.Expires = time.Unix(0, issued).UTC(), time.Unix(0, expires).UTC()
	if revoked.Valid {
		r.Revoked = time.Unix(0, revoked.Int64).UTC()
	}
	return r, err
}

// ByJTI returns the record of one token.
func (s *Store) ByJTI(ctx context.Context, jti string) (*record.Record, error) {
	r, err := scan(s.byJTIStmt.QueryRowContext(ctx, jti))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, record.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return &r, nil
}

// ByXID returns a transaction's records, newest first.
func (s *Store) ByXID(ctx context.Context, xid string) ([]record.Record, error) {
	rows, err := s.byXIDStmt.QueryContext(ctx, xid)
	return collect(rows, err)
}

// ByPhone returns a page of a phone number's records, newest first.
func (s *Store) ByPhone(ctx context.Context, phone string, limit int, cursor string) (record.Page, error) {
	c, ok, err := record.DecodeCursor(cursor)
	if err != nil {
		return record.Page{}, err
	}
	q := `SELECT ` + columns + ` FROM tokens WHERE phone = ? AND phone != ''`
	args := []any{phone}
	if ok {
		q += ` AND (issued < ? OR (issued = ? AND jti < ?))`
		args = append(args, c.Issued.UnixNano(), c.Issued.UnixNano(), c.JTI)
	}
	q += ` ORDER BY issued DESC, jti DESC LIMIT ?`
	args = append(args, limit+1)
	recs, err := s.query(ctx, q, args...)
	if err != nil {
		return record.Page{}, err
	}
	return record.NewPage(recs, limit), nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]record.Record, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	return collect(rows, err)
}

func collect(rows *sql.Rows, err error) ([]record.Record, error) {
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []record.Record
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// RevokeJTI marks one token revoked.
func (s *Store) RevokeJTI(ctx context.Context, jti string, at time.Time) (int, error) {
	return s.exec(ctx, `UPDATE tokens SET revoked = ? WHERE jti = ? AND revoked IS NULL`, at.UnixNano(), jti)
}

// RevokeXID marks every token of a transaction revoked and closes the
// transaction, in one transaction: a record committed after it finds the
// XID closed, one committed before it is marked.
func (s *Store) RevokeXID(ctx context.Context, xid string, at time.Time) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = ? WHERE xid = ? AND xid != '' AND revoked IS NULL`, at.UnixNano(), xid)
	if err != nil {
		return 0, unavailable(err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO closed_xids (xid, closed) SELECT ?1, ?2
		WHERE EXISTS (SELECT 1 FROM tokens WHERE xid = ?1 AND xid != '') ON CONFLICT (xid) DO NOTHING`, xid, at.UnixNano()); err != nil {
		return 0, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return int(n), nil
}

// ClosedAt says when a transaction was closed by its revocation; the zero
// time while it is open.
func (s *Store) ClosedAt(ctx context.Context, xid string) (time.Time, error) {
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT closed FROM closed_xids WHERE xid = ?`, xid).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable(err)
	}
	return time.Unix(0, at).UTC(), nil
}

// Revocations returns the revocations made at or after since of tokens
// that expire after liveAt, oldest first.
func (s *Store) Revocations(ctx context.Context, since, liveAt time.Time) ([]record.Revocation, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT jti, expires, revoked FROM tokens
		WHERE revoked IS NOT NULL AND revoked >= ? AND expires > ? ORDER BY revoked`, since.UnixNano(), liveAt.UnixNano())
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []record.Revocation
	for rows.Next() {
		var jti string
		var expires, revoked int64
		if err := rows.Scan(&jti, &expires, &revoked); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, record.Revocation{JTI: jti, Expires: time.Unix(0, expires).UTC(), Revoked: time.Unix(0, revoked).UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// AddOutcome appends an outcome to a transaction that has records and
// fewer than MaxOutcomes outcomes, in one statement: the checks and the
// insert cannot be torn apart.
func (s *Store) AddOutcome(ctx context.Context, o *record.Outcome) error {
	n, err := s.exec(ctx, `INSERT INTO outcomes (xid, status, code, description, updated_on, source, recorded)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
		WHERE EXISTS (SELECT 1 FROM tokens WHERE xid = ?1 AND xid != '')
		AND (SELECT count(*) FROM outcomes WHERE xid = ?1) < ?8`,
		o.XID, string(o.Status), o.Code, o.Description, o.UpdatedOn.UnixNano(), o.Source, o.Recorded.UnixNano(), record.MaxOutcomes)
	if err != nil || n == 1 {
		return err
	}
	// No record, or as many outcomes as allowed: say which.
	var tokens int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM tokens WHERE xid = ? AND xid != '' LIMIT 1)`, o.XID).Scan(&tokens); err != nil {
		return unavailable(err)
	}
	if tokens == 0 {
		return record.ErrNotFound
	}
	return record.ErrTooManyOutcomes
}

// Outcomes returns a transaction's outcomes, newest first.
func (s *Store) Outcomes(ctx context.Context, xid string) ([]record.Outcome, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, code, description, updated_on, source, recorded FROM outcomes
		WHERE xid = ? ORDER BY updated_on DESC, recorded DESC, rowid DESC LIMIT 1000`, xid)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []record.Outcome
	for rows.Next() {
		o := record.Outcome{XID: xid}
		var updated, recorded int64
		if err := rows.Scan(&o.Status, &o.Code, &o.Description, &updated, &o.Source, &recorded); err != nil {
			return nil, unavailable(err)
		}
		o.UpdatedOn, o.Recorded = time.Unix(0, updated).UTC(), time.Unix(0, recorded).UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// purgeChunk is how many records one purge transaction deletes: the group
// committer waits for the one write connection meanwhile, so a chunk's
// time is added to the slowest commits' (a thousand rows held them up some
// 50 ms under load in make soak; two hundred, 12 to 17 ms).
const purgeChunk = 200

// Purge deletes records that expired before the given time, purgeChunk per
// transaction so that inserts are never held up for long, and with them
// the outcomes of the transactions left without records.
func (s *Store) Purge(ctx context.Context, expiredBefore time.Time) (int, error) {
	total := 0
	for {
		n, err := s.purgeSome(ctx, expiredBefore)
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}

func (s *Store) purgeSome(ctx context.Context, expiredBefore time.Time) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `DELETE FROM tokens WHERE rowid IN
		(SELECT rowid FROM tokens WHERE expires < ? LIMIT ?) RETURNING xid`, expiredBefore.UnixNano(), purgeChunk)
	if err != nil {
		return 0, unavailable(err)
	}
	n, xids := 0, map[string]bool{}
	for rows.Next() {
		var xid string
		if err := rows.Scan(&xid); err != nil {
			rows.Close()
			return 0, unavailable(err)
		}
		n++
		if xid != "" {
			xids[xid] = true
		}
	}
	if err := rows.Close(); err != nil {
		return 0, unavailable(err)
	}
	if len(xids) > 0 {
		list, _ := json.Marshal(slices.Collect(maps.Keys(xids)))
		for _, table := range []string{"outcomes", "closed_xids"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE xid IN (SELECT value FROM json_each(?))
				AND NOT EXISTS (SELECT 1 FROM tokens WHERE tokens.xid = `+table+`.xid)`, string(list)); err != nil {
				return 0, unavailable(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

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
