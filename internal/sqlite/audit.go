package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
)

var _ audit.Store = (*Store)(nil)

const auditColumns = `chain, seq, time, instance, actor, action, target, result, request_id, client_ip, detail, prev, hash`

// AppendAudit writes entries in one transaction if the chain's head is
// still the entry before the first: all or none.
func (s *Store) AppendAudit(ctx context.Context, entries []audit.Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	err := func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return unavailable(err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		head, err := s.chainHead(ctx, tx, entries[0].Chain)
		if err != nil {
			return unavailable(err)
		}
		if head.Seq != entries[0].Seq-1 {
			return audit.ErrConflict
		}
		err = s.insertAudit.exec(ctx, tx, len(entries), func(i int, args []any) []any { return auditArgs(args, &entries[i]) })
		if err != nil {
			if isUniqueViolation(err) {
				return audit.ErrConflict
			}
			return unavailable(err)
		}
		if err := tx.Commit(); err != nil {
			return unavailable(err)
		}
		return nil
	}()
	chain := map[string]audit.Entry{entries[0].Chain: entries[len(entries)-1]}
	if err != nil {
		s.forgetHeads(chain)
		return 0, err
	}
	s.keepHeads(chain)
	return len(entries), nil
}

// keptHead is the head of chain as this store last wrote or read it in a
// commit, if it kept one.
func (s *Store) keptHead(chain string) (audit.Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[chain]
	return h, ok
}

// keepHeads keeps the heads of chains just committed.
func (s *Store) keepHeads(heads map[string]audit.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, h := range heads {
		s.heads[c] = h
	}
}

// forgetHeads drops the heads kept of chains whose commit failed: what the
// store holds of them is read again.
func (s *Store) forgetHeads(heads map[string]audit.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range heads {
		delete(s.heads, c)
	}
}

// isUniqueViolation reports whether a statement failed on a UNIQUE
// constraint: (chain, seq) taken by another writer.
func isUniqueViolation(err error) bool { return strings.Contains(err.Error(), "UNIQUE constraint") }

// chainHead is the sequence number and hash of a chain's last entry as
// tx reads it; the zero Entry for a chain with none.
func (s *Store) chainHead(ctx context.Context, tx *sql.Tx, chain string) (audit.Entry, error) {
	head := audit.Entry{Chain: chain}
	var hash any
	err := tx.StmtContext(ctx, s.auditHead).QueryRowContext(ctx, chain).Scan(&head.Seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{Chain: chain}, nil
	}
	head.Hash = hashText(hash)
	return head, err
}

// auditArgs appends the values of e's row, in auditColumns' order.
func auditArgs(args []any, e *audit.Entry) []any {
	return append(args, e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Actor, e.Action, e.Target,
		e.Result, e.RequestID, e.ClientIP, e.Detail, hashValue(e.Prev), hashValue(e.Hash))
}

func scanAudit(sc interface{ Scan(...any) error }) (audit.Entry, error) {
	var e audit.Entry
	var t int64
	var prev, hash any
	err := sc.Scan(&e.Chain, &e.Seq, &t, &e.Instance, &e.Actor, &e.Action, &e.Target, &e.Result,
		&e.RequestID, &e.ClientIP, &e.Detail, &prev, &hash)
	e.Time = time.Unix(0, t).UTC()
	e.Prev, e.Hash = hashText(prev), hashText(hash)
	return e, err
}

// AuditHead returns a chain's last entry.
func (s *Store) AuditHead(ctx context.Context, chain string) (audit.Entry, error) {
	e, err := scanAudit(s.read.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE chain = ? ORDER BY seq DESC LIMIT 1`, chain))
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{}, nil
	}
	if err != nil {
		return audit.Entry{}, unavailable(err)
	}
	return e, nil
}

// AuditChains names every chain.
func (s *Store) AuditChains(ctx context.Context) ([]string, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT DISTINCT chain FROM audit ORDER BY chain`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// notMint is the condition of the actor and target indexes: keyed mints'
// entries, the most of a trail, are left out of them, so that a mint
// writes two fewer index pages with its record. A filter by actor that may
// match mints scans entries newest first (by the time index).
const notMint = `action != 'token.mint'`

// AuditList answers q.
func (s *Store) AuditList(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	text, args, err := auditQuery(q)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, text, args...)
	return collectWith(rows, err, scanAudit)
}

// auditQuery is the SELECT that answers q, and its arguments.
func auditQuery(q audit.Query) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	for _, f := range []struct{ col, v string }{{"chain", q.Chain}, {"actor", q.Actor}, {"action", q.Action}, {"target", q.Target}} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	if q.Action != "" && q.Action != audit.ActionMint || q.Target != "" && !audit.MintTargetMay(q.Target) {
		// The filter cannot match a keyed mint's entry: saying so lets
		// SQLite use the actor and target indexes, which leave them out.
		add(notMint)
	}
	if !q.Since.IsZero() {
		add("time >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("time < ?", q.Until.UnixNano())
	}
	order := ""
	switch q.Order {
	case audit.BySeq:
		if q.Chain == "" {
			return "", nil, errors.New("a listing by sequence number names its chain")
		}
		add("seq > ?", q.AfterSeq)
		order = "seq"
	case audit.Newest, audit.Oldest:
		c, ok, err := audit.DecodeCursor(q.After)
		if err != nil {
			return "", nil, err
		}
		op, dir := ">", ""
		if q.Order == audit.Newest {
			op, dir = "<", " DESC"
		}
		if ok {
			add("(time, chain, seq) "+op+" (?, ?, ?)", c.Time.UnixNano(), c.Chain, c.Seq)
		}
		order = "time" + dir + ", chain" + dir + ", seq" + dir
	}
	text := `SELECT ` + auditColumns + ` FROM audit`
	if len(where) > 0 {
		text += ` WHERE ` + strings.Join(where, " AND ")
	}
	text += ` ORDER BY ` + order
	if q.Limit > 0 {
		text += fmt.Sprintf(` LIMIT %d`, q.Limit)
	}
	return text, args, nil
}

// PurgeAudit deletes up to limit entries of chain below beforeSeq, in one
// short transaction.
func (s *Store) PurgeAudit(ctx context.Context, chain string, beforeSeq int64, limit int) (int, error) {
	return s.exec(ctx, `DELETE FROM audit WHERE chain = ? AND seq IN
		(SELECT seq FROM audit WHERE chain = ? AND seq < ? ORDER BY seq LIMIT ?)`, chain, chain, beforeSeq, limit)
}

// Backup writes a consistent copy of the database to path (VACUUM INTO,
// on a reader: commits go on meanwhile, and the copy holds every
// transaction committed before it began). path must not exist.
func (s *Store) Backup(ctx context.Context, path string) error {
	// Made empty and 0600 first (VACUUM INTO takes an empty file): the
	// copy holds what the store holds.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: jwtd backup writes a new file; remove it or name another", path)
	}
	if err != nil {
		return err
	}
	f.Close()
	if _, err := s.read.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("backing up to %s: %w", path, err)
	}
	return nil
}
