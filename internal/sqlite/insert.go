package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/record"
)

// insertChunks are the row counts of the prepared multi-row INSERTs, largest
// first: a batch is written in chunks of these sizes, so that any batch
// takes a few statements, all prepared once (at 15 parameters a row at
// most, 256 rows stay far below SQLite's 32766).
var insertChunks = []int{256, 64, 16, 4, 1}

// Insert queues the record for the next group commit and waits until it is
// durable.
func (s *Store) Insert(ctx context.Context, r *record.Record) error { return s.group.Insert(ctx, r) }

// commit writes a batch in one transaction: one statement finds the jtis
// already stored, one the phones its XIDs belong to, and a few multi-row
// INSERTs write it, and the audit entries of its records. Per-record
// refusals (duplicate jti, XID conflict) are decided from those answers
// without failing the others; a failed transaction fails them all. When
// the audit entries cannot be written, the batch is committed again
// without them: the records are written, and the results of those with an
// entry wrap audit.ErrNotWritten.
func (s *Store) commit(batch []*record.Record) ([]error, error) {
	results, err := s.commitTx(batch, true)
	var ee entriesError
	if errors.As(err, &ee) && isUniqueViolation(ee.err) {
		// A head kept went stale (another connection's write that
		// data_version did not show): the heads are forgotten, so the
		// batch's second transaction reads them.
		results, err = s.commitTx(batch, true)
	}
	if errors.As(err, &ee) {
		if results, err = s.commitTx(batch, false); err == nil {
			for i, r := range batch {
				if r.Audit != nil && results[i] == nil {
					results[i] = fmt.Errorf("%w: %w", audit.ErrNotWritten, storeError(ee.err))
				}
			}
		}
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return results, nil
}

// entriesError is a batch's audit entries refused by the store.
type entriesError struct{ err error }

func (e entriesError) Error() string { return "writing audit entries: " + e.err.Error() }

func (s *Store) commitTx(batch []*record.Record, withEntries bool) ([]error, error) {
	results := make([]error, len(batch))
	ctx := context.Background()
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	stored, err := s.lookup(ctx, tx, s.existing, batch, func(r *record.Record) string { return r.JTI })
	if err != nil {
		return nil, err
	}
	owner, err := s.lookup(ctx, tx, s.owners, batch, func(r *record.Record) string { return r.XID })
	if err != nil {
		return nil, err
	}
	closed := map[string]string{}
	if len(owner) > 0 { // only a transaction with records can have been closed
		if closed, err = s.lookup(ctx, tx, s.closed, batch, func(r *record.Record) string { return r.XID }); err != nil {
			return nil, err
		}
	}
	rows := make([]*record.Record, 0, len(batch))
	var entries []*audit.Entry // of the records written, in batch order
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
		if r.Audit != nil && withEntries {
			entries = append(entries, r.Audit)
		}
	}
	if err := s.insert(ctx, tx, rows); err != nil {
		return nil, err
	}
	heads, err := s.insertEntries(ctx, tx, entries)
	if err != nil {
		s.forgetHeads(nil)
		return nil, entriesError{err}
	}
	// Kept before the commit, while tx holds the one write connection: no
	// other transaction of this store (AppendAudit's) keeps a head between
	// this commit and its keeping.
	s.keepHeads(heads)
	if err := tx.Commit(); err != nil {
		s.forgetHeads(heads)
		return nil, err
	}
	return results, nil
}

// insertEntries links entries after their chains' heads, in order, and
// inserts them, and returns the chains' new heads. A head is the one this
// store last wrote or read (heads) while no other connection committed to
// the file (PRAGMA data_version, read in tx, which holds the write lock:
// no other writer, of this process or another, commits before tx does);
// else it is read in tx. So a head another process advanced, or a run
// another process's purge cut, is never linked after.
func (s *Store) insertEntries(ctx context.Context, tx *sql.Tx, entries []*audit.Entry) (map[string]chainHead, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	var version int64
	if err := tx.StmtContext(ctx, s.dataVersion).QueryRowContext(ctx).Scan(&version); err != nil {
		return nil, err
	}
	s.checkHeads(version)
	byChain := map[string][]*audit.Entry{}
	for _, e := range entries {
		byChain[e.Chain] = append(byChain[e.Chain], e)
	}
	heads := make(map[string]chainHead, len(byChain))
	for chain, es := range byChain {
		head, kept := s.keptHead(chain)
		if !kept {
			var err error
			if head, err = s.readHead(ctx, tx, chain); err != nil {
				return nil, err
			}
		}
		// A commit's entries of a chain are stamped with the time of the
		// last, so that a run of keyed mints takes one row (runs).
		at := es[0].Time
		for _, e := range es {
			if e.Time.After(at) {
				at = e.Time
			}
		}
		last := head.Entry
		for _, e := range es {
			e.Time = at
			e.Link(chain, last)
			last = *e
		}
		if err := s.insertChain(ctx, tx, head.id, es); err != nil {
			return nil, err
		}
		heads[chain] = chainHead{head.id, last}
	}
	return heads, nil
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

// multiInsert is an INSERT into one table prepared for each of
// insertChunks' row counts. A conflict fails it, and the transaction with
// it (commit has refused duplicate records already, so a conflict is not
// dropped: a record whose token would be handed out, or an audit entry,
// which AppendAudit reads as another writer's). OR FAIL, not the default
// ABORT: the caller rolls the whole transaction back on any error, so
// SQLite need not keep a statement journal to undo one statement's rows,
// which costs a temporary file's writes for every statement after the
// first that touches a page the transaction wrote.
type multiInsert struct {
	table, columns string
	width          int         // parameters a row
	stmts          []*sql.Stmt // stmts[i] inserts insertChunks[i] rows
}

func newMultiInsert(table, columns string) multiInsert {
	return multiInsert{table: table, columns: columns, width: strings.Count(columns, ",") + 1,
		stmts: make([]*sql.Stmt, len(insertChunks))}
}

// text is the INSERT of n rows.
func (m multiInsert) text(n int) string {
	row := "(" + strings.Repeat("?,", m.width-1) + "?)"
	return `INSERT OR FAIL INTO ` + m.table + ` (` + m.columns + `) VALUES ` + strings.Repeat(row+",", n-1) + row
}

// exec inserts n rows in tx, in chunks of insertChunks' sizes; row
// appends the values of row i to args, or fails.
func (m multiInsert) exec(ctx context.Context, tx *sql.Tx, n int, row func(i int, args []any) ([]any, error)) error {
	args := make([]any, 0, m.width*min(n, insertChunks[0]))
	done := 0
	for c, size := range insertChunks {
		for n-done >= size {
			args = args[:0]
			for i := done; i < done+size; i++ {
				var err error
				if args, err = row(i, args); err != nil {
					return err
				}
			}
			if _, err := tx.StmtContext(ctx, m.stmts[c]).ExecContext(ctx, args...); err != nil {
				return err
			}
			done += size
		}
	}
	return nil
}

// insert writes rows.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, rows []*record.Record) error {
	return s.insertTokens.exec(ctx, tx, len(rows), func(i int, args []any) ([]any, error) {
		r := rows[i]
		return append(args, r.JTI, r.Profile, r.Kid, r.Alg, r.XID, r.Phone, r.Subject,
			r.Issued.UnixNano(), r.Expires.UnixNano(), r.ClientIP, hashValue(r.TokenSHA256), r.TokenText), nil
	})
}

// hashValue is how a token hash is stored: a SHA-256 in hex as its 32 bytes,
// anything else as the text it is (scan reads both back as they were given).
func hashValue(h string) any {
	if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
		return b
	}
	return h
}
