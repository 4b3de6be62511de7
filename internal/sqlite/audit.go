package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
)

var _ audit.Store = (*Store)(nil)

const auditColumns = `chain, seq, time, instance, actor, action, target, result, request_id, client_ip, detail, prev, hash`

// seqBits is where an entry's chain number starts in its rowid, above its
// sequence number: 2^44 entries a chain (55 years at 10,000 a second), and
// 2^19 chains.
const seqBits = 44

// entryID is the rowid of entry seq of the chain numbered chain.
func entryID(chain, seq int64) (int64, error) {
	if seq < 0 || seq >= 1<<seqBits || chain < 0 || chain >= 1<<(63-seqBits) {
		return 0, fmt.Errorf("audit entry %d of chain number %d is past what the embedded store numbers", seq, chain)
	}
	return chain<<seqBits | seq, nil
}

// inChain is the condition that an entry is of the chain named by its
// two arguments (the name twice): its rowid in the chain's range, which
// no row matches for a chain never numbered.
var inChain = `id BETWEEN (SELECT id << ` + strconv.Itoa(seqBits) + ` FROM audit_chains WHERE name = ?)
	AND (SELECT (id + 1 << ` + strconv.Itoa(seqBits) + `) - 1 FROM audit_chains WHERE name = ?)`

// AppendAudit writes entries in one transaction if the chain's head is
// still the entry before the first: all or none.
func (s *Store) AppendAudit(ctx context.Context, entries []audit.Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	name := entries[0].Chain
	var head chainHead
	err := func() error {
		tx, err := s.write.BeginTx(ctx, nil)
		if err != nil {
			return unavailable(err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		if head, err = s.readHead(ctx, tx, name); err != nil {
			return unavailable(err)
		}
		if head.Seq != entries[0].Seq-1 {
			return audit.ErrConflict
		}
		if err := s.insertChain(ctx, tx, head.id, len(entries), func(i int) *audit.Entry { return &entries[i] }); err != nil {
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
	head.Entry = entries[len(entries)-1]
	chain := map[string]chainHead{name: head}
	if err != nil {
		s.forgetHeads(chain)
		return 0, err
	}
	s.keepHeads(chain)
	return len(entries), nil
}

// chainHead is a chain's number and last entry (the zero Entry, but for
// its Chain, for a chain with none).
type chainHead struct {
	id int64
	audit.Entry
}

// keptHead is the head of chain as this store last wrote or read it in a
// commit, if it kept one.
func (s *Store) keptHead(chain string) (chainHead, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[chain]
	return h, ok
}

// keepHeads keeps the heads of chains just committed.
func (s *Store) keepHeads(heads map[string]chainHead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, h := range heads {
		s.heads[c] = h
	}
}

// forgetHeads drops the heads kept of chains whose commit failed: what the
// store holds of them (their numbers too: a chain numbered in a commit
// rolled back is not) is read again.
func (s *Store) forgetHeads(heads map[string]chainHead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range heads {
		delete(s.heads, c)
	}
}

// isUniqueViolation reports whether a statement failed on a UNIQUE
// constraint: an entry's rowid, its (chain, seq), taken by another writer.
func isUniqueViolation(err error) bool { return strings.Contains(err.Error(), "UNIQUE constraint") }

// readHead is a chain's number, numbering a new chain, and its last entry
// as tx reads them.
func (s *Store) readHead(ctx context.Context, tx *sql.Tx, chain string) (chainHead, error) {
	h := chainHead{Entry: audit.Entry{Chain: chain}}
	err := tx.StmtContext(ctx, s.chainID).QueryRowContext(ctx, chain).Scan(&h.id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.StmtContext(ctx, s.newChain).QueryRowContext(ctx, chain).Scan(&h.id)
	}
	if err != nil {
		return chainHead{}, err
	}
	first, err := entryID(h.id, 0)
	if err != nil {
		return chainHead{}, err
	}
	var hash any
	err = tx.StmtContext(ctx, s.auditHead).QueryRowContext(ctx, first, first+1<<seqBits-1).Scan(&h.Seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	h.Hash = hashText(hash)
	return h, err
}

// newSharedAuditInsert inserts audit entries that share their chain,
// instance, action and result (a keyed mint's all do), bound once a
// statement; a row binds the rowid, whose low bits are seq, and the
// entry's own values.
func newSharedAuditInsert() multiInsert {
	return newSharedInsert("audit", "id, "+auditColumns, 9, []string{"chain", "instance", "action", "result"},
		`v.column1, s.chain, v.column1 & `+strconv.FormatInt(1<<seqBits-1, 10)+`, v.column2, s.instance,
		v.column3, s.action, v.column4, s.result, v.column5, v.column6, v.column7, v.column8, v.column9`)
}

// insertChain inserts n entries of the chain numbered id, linked already;
// entry(i) is the i-th. Entries that all share their chain, instance,
// action and result (a commit's keyed mints) bind those once a statement;
// others (the trail's batches, which mix actions) bind every value of
// every row, as runs of a few entries would take a statement each.
func (s *Store) insertChain(ctx context.Context, tx *sql.Tx, id int64, n int, entry func(i int) *audit.Entry) error {
	first := entry(0)
	for i := 1; i < n; i++ {
		if e := entry(i); e.Chain != first.Chain || e.Instance != first.Instance || e.Action != first.Action || e.Result != first.Result {
			return s.insertAudit.exec(ctx, tx, n, nil, func(i int, args []any) ([]any, error) {
				e := entry(i)
				rowid, err := entryID(id, e.Seq)
				return append(args, rowid, e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Actor, e.Action, e.Target,
					e.Result, e.RequestID, e.ClientIP, e.Detail, hashValue(e.Prev), hashValue(e.Hash)), err
			})
		}
	}
	shared := []any{first.Chain, first.Instance, first.Action, first.Result}
	return s.insertSharedAudit.exec(ctx, tx, n, shared, func(i int, args []any) ([]any, error) {
		e := entry(i)
		rowid, err := entryID(id, e.Seq)
		return append(args, rowid, e.Time.UnixNano(), e.Actor, e.Target, e.RequestID, e.ClientIP, e.Detail,
			hashValue(e.Prev), hashValue(e.Hash)), err
	})
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
	e, err := scanAudit(s.read.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE `+inChain+` ORDER BY id DESC LIMIT 1`, chain, chain))
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
	rows, err := s.read.QueryContext(ctx, `SELECT name FROM audit_chains c
		WHERE EXISTS (SELECT 1 FROM audit WHERE id BETWEEN c.id << `+strconv.Itoa(seqBits)+` AND (c.id + 1 << `+strconv.Itoa(seqBits)+`) - 1)
		ORDER BY name`)
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
	if q.Chain != "" {
		add(inChain, q.Chain, q.Chain)
	}
	for _, f := range []struct{ col, v string }{{"actor", q.Actor}, {"action", q.Action}} {
		if f.v != "" {
			add(f.col+" = ?", f.v)
		}
	}
	if q.Target != "" {
		// One range of the target index: the target itself, and the
		// targets that start with it and a space.
		from, below := audit.TargetRange(q.Target)
		add("target >= ? AND target < ? AND (target = ? OR target >= ?)", q.Target, below, q.Target, from)
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
		// A rowid bound, not seq's: a page after the first starts where
		// the last ended, not at the chain's first entry.
		add(`id > (SELECT id << `+strconv.Itoa(seqBits)+` FROM audit_chains WHERE name = ?) + ?`, q.Chain, max(q.AfterSeq, 0))
		order = "id"
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
	return s.exec(ctx, `DELETE FROM audit WHERE id IN
		(SELECT id FROM audit WHERE `+inChain+` AND seq < ? ORDER BY id LIMIT ?)`, chain, chain, beforeSeq, limit)
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
