package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/jwtd/jwtd/internal/record"
)

// insertChunks are the row counts of the prepared multi-row INSERTs, largest
// first: a batch is written in chunks of these sizes, so that any batch
// takes a few statements, all prepared once (at 12 parameters a row, 256
// rows stay far below SQLite's 32766).
var insertChunks = []int{256, 64, 16, 4, 1}

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
