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
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/jwtd/jwtd/internal/record"
)

var _ record.Store = (*Store)(nil)

// Options tune group commit (see record.NewGroupCommitter). The zero value
// is usable.
type Options struct {
	MaxBatch int             // records per transaction (default 256)
	Linger   time.Duration   // how long to wait for more records (default 0)
	Observe  record.Observer // told of every commit (metrics); may be nil
}

// Store is a record.Store over one SQLite file.
type Store struct {
	read  *sql.DB // readers; WAL lets them run beside the writer
	write *sql.DB // one connection: the group committer, revocations, purges

	// Statements prepared once: parsing SQL is a large part of a small
	// query's cost.
	conflictStmt, insertStmt *sql.Stmt // on write
	byJTIStmt, byXIDStmt     *sql.Stmt // on read

	group *record.GroupCommitter
}

const schema = `
CREATE TABLE IF NOT EXISTS tokens (
	jti          TEXT PRIMARY KEY,
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
	token_sha256 TEXT NOT NULL DEFAULT '',
	token        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tokens_xid ON tokens (xid, issued DESC, jti DESC) WHERE xid != '';
CREATE INDEX IF NOT EXISTS tokens_phone ON tokens (phone, issued DESC, jti DESC) WHERE phone != '';
CREATE INDEX IF NOT EXISTS tokens_expires ON tokens (expires);
`

// Open opens (creating if needed) the store at path.
func Open(path string, opts Options) (*Store, error) {
	dsn := func(extra string) string {
		q := url.Values{}
		for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode() + extra
	}
	write, err := sql.Open("sqlite", dsn("&_txlock=immediate"))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	if _, err := write.Exec(schema); err != nil {
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
	s := &Store{read: read, write: write}
	for _, p := range []struct {
		db   *sql.DB
		dst  **sql.Stmt
		text string
	}{
		{write, &s.conflictStmt, `SELECT 1 FROM tokens WHERE xid = ? AND xid != '' AND phone != ? LIMIT 1`},
		{write, &s.insertStmt, `INSERT INTO tokens (` + columns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?) ON CONFLICT (jti) DO NOTHING`},
		{read, &s.byJTIStmt, `SELECT ` + columns + ` FROM tokens WHERE jti = ?`},
		{read, &s.byXIDStmt, `SELECT ` + columns + ` FROM tokens WHERE xid = ? AND xid != '' ORDER BY issued DESC, jti DESC LIMIT 1000`},
	} {
		if *p.dst, err = p.db.Prepare(p.text); err != nil {
			write.Close()
			read.Close()
			return nil, fmt.Errorf("%w: preparing statements: %v", record.ErrUnavailable, err)
		}
	}
	s.group = record.NewGroupCommitter(s.commit, opts.MaxBatch, opts.Linger, opts.Observe)
	return s, nil
}

// Stats returns how many transactions and records the group committer has
// committed.
func (s *Store) Stats() (commits, records uint64) { return s.group.Stats() }

// Insert queues the record for the next group commit and waits until it is
// durable.
func (s *Store) Insert(ctx context.Context, r *record.Record) error { return s.group.Insert(ctx, r) }

// commit writes a batch in one transaction. Per-record refusals (duplicate
// jti, XID conflict) are answered without failing the others; a failed
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
		conflict, ins := tx.StmtContext(ctx, s.conflictStmt), tx.StmtContext(ctx, s.insertStmt)
		for i, r := range batch {
			if r.XID != "" {
				var one int
				switch err := conflict.QueryRowContext(ctx, r.XID, r.Phone).Scan(&one); {
				case err == nil:
					results[i] = record.ErrXIDConflict
					continue
				case !errors.Is(err, sql.ErrNoRows):
					return err
				}
			}
			res, err := ins.ExecContext(ctx, r.JTI, r.Profile, r.Kid, r.Alg, r.XID, r.Phone, r.Subject,
				r.Issued.UnixNano(), r.Expires.UnixNano(), r.ClientIP, r.TokenSHA256, r.TokenText)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				results[i] = record.ErrDuplicate
			}
		}
		return tx.Commit()
	}()
	if err != nil {
		return nil, unavailable(err)
	}
	return results, nil
}

// Close stops the group committer after the inserts it has taken are
// committed, and closes the database.
func (s *Store) Close() error {
	s.group.Close()
	var errs []error
	for _, st := range []*sql.Stmt{s.conflictStmt, s.insertStmt, s.byJTIStmt, s.byXIDStmt} {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.write.Close(), s.read.Close())...)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return unavailable(err)
	}
	return nil
}

const columns = `jti, profile, kid, alg, xid, phone, subject, issued, expires, revoked, client_ip, token_sha256, token`

func scan(sc interface{ Scan(...any) error }) (record.Record, error) {
	var r record.Record
	var issued, expires int64
	var revoked sql.NullInt64
	err := sc.Scan(&r.JTI, &r.Profile, &r.Kid, &r.Alg, &r.XID, &r.Phone, &r.Subject,
		&issued, &expires, &revoked, &r.ClientIP, &r.TokenSHA256, &r.TokenText)
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

// RevokeXID marks every token of a transaction revoked.
func (s *Store) RevokeXID(ctx context.Context, xid string, at time.Time) (int, error) {
	return s.exec(ctx, `UPDATE tokens SET revoked = ? WHERE xid = ? AND xid != '' AND revoked IS NULL`, at.UnixNano(), xid)
}

// Purge deletes records that expired before the given time, a thousand per
// transaction so that inserts are never held up for long.
func (s *Store) Purge(ctx context.Context, expiredBefore time.Time) (int, error) {
	total := 0
	for {
		n, err := s.exec(ctx, `DELETE FROM tokens WHERE rowid IN
			(SELECT rowid FROM tokens WHERE expires < ? LIMIT 1000)`, expiredBefore.UnixNano())
		total += n
		if err != nil || n < 1000 {
			return total, err
		}
	}
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
