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
		es := make([]*audit.Entry, len(entries))
		for i := range entries {
			es[i] = &entries[i]
		}
		if head, err = s.appendChain(ctx, tx, head, es); err != nil {
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
	chain := map[string]chainHead{name: head}
	if err != nil {
		s.forgetHeads(chain)
		return 0, err
	}
	s.keepHeads(chain)
	return len(entries), nil
}

// chainHead is a chain's number, its last entry (the zero Entry, but for
// its Chain, for a chain with none) and its timed sequence number (as
// last read or written: audit_times holds the chain's entries up to it).
type chainHead struct {
	id, timed int64
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

// readHead is a chain's number, numbering a new chain, its timed and its
// last entry as tx reads them.
func (s *Store) readHead(ctx context.Context, tx *sql.Tx, chain string) (chainHead, error) {
	h := chainHead{Entry: audit.Entry{Chain: chain}}
	err := tx.StmtContext(ctx, s.chainID).QueryRowContext(ctx, chain).Scan(&h.id, &h.timed)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.StmtContext(ctx, s.newChain).QueryRowContext(ctx, chain).Scan(&h.id, &h.timed)
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

// timeBatch is how many entries of a chain not in audit_times yet make a
// commit put them there (appendChain): a keyed mint's commit then writes
// its time order one commit in some thirty, a few pages at once.
const timeBatch = 256

// appendChain inserts es, linked already after head, and returns the
// chain's new head; when the chain's entries past its timed number
// s.timeBatch or more, it puts them in audit_times.
func (s *Store) appendChain(ctx context.Context, tx *sql.Tx, head chainHead, es []*audit.Entry) (chainHead, error) {
	err := s.insertAudit.exec(ctx, tx, len(es), func(i int, args []any) ([]any, error) {
		e := es[i]
		rowid, err := entryID(head.id, e.Seq)
		return append(args, rowid, e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Actor, e.Action, e.Target,
			e.Result, e.RequestID, e.ClientIP, e.Detail, hashValue(e.Prev), hashValue(e.Hash)), err
	})
	if err != nil {
		return chainHead{}, err
	}
	head.Entry = *es[len(es)-1]
	if head.Seq-head.timed >= int64(s.timeBatch) {
		// From the timed number tx reads (another process with the
		// chain's name may have moved it), up to the head.
		first, _ := entryID(head.id, 0)
		if _, err := tx.StmtContext(ctx, s.timeEntries).ExecContext(ctx, first, head.Seq, head.id); err != nil {
			return chainHead{}, err
		}
		if _, err := tx.StmtContext(ctx, s.timed).ExecContext(ctx, head.Seq, head.id); err != nil {
			return chainHead{}, err
		}
		head.timed = head.Seq
	}
	return head, nil
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
// match mints reads entries newest first (by time, audit_times).
const notMint = `a.action != 'token.mint'`

// AuditList answers q.
func (s *Store) AuditList(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	text, args, err := auditQuery(q)
	if err != nil {
		return nil, err
	}
	rows, err := s.read.QueryContext(ctx, text, args...)
	return collectWith(rows, err, func(sc interface{ Scan(...any) error }) (audit.Entry, error) {
		return scanAudit(sortKeyed{sc})
	})
}

// sortKeyed scans a row of auditQuery: the listing's sort key (time,
// chain, seq as audit_times has them), then the entry.
type sortKeyed struct {
	sc interface{ Scan(...any) error }
}

func (k sortKeyed) Scan(dst ...any) error {
	var t, seq int64
	var chain string
	return k.sc.Scan(append([]any{&t, &chain, &seq}, dst...)...)
}

// entryColumns are auditColumns of the audit table as a.
var entryColumns = "a." + strings.ReplaceAll(auditColumns, ", ", ", a.")

// auditQuery is the SELECT that answers q, and its arguments. Its rows
// start with the listing's sort key, then the entry. A listing by time
// reads the entries that audit_times holds, in its order, merged with the
// chains' tails it does not hold yet (timed); one that cannot match a
// keyed mint and names an actor or a target reads the audit table by the
// actor and target indexes, which hold every other entry.
func auditQuery(q audit.Query) (string, []any, error) {
	byIndex := q.Action != "" && q.Action != audit.ActionMint || q.Target != "" && !audit.MintTargetMay(q.Target)
	// where is the condition of a SELECT whose sort key (time, chain,
	// seq) is k's columns and whose entry is a's, and its arguments.
	where := func(k string) (string, []any, error) {
		var conds []string
		var args []any
		add := func(cond string, a ...any) { conds = append(conds, cond); args = append(args, a...) }
		if q.Chain != "" && q.Order != audit.BySeq {
			add(k+".chain = ?", q.Chain)
		}
		for _, f := range []struct{ col, v string }{{"actor", q.Actor}, {"action", q.Action}} {
			if f.v != "" {
				add("a."+f.col+" = ?", f.v)
			}
		}
		if q.Target != "" {
			// One range of the target index: the target itself, and
			// the targets that start with it and a space.
			from, below := audit.TargetRange(q.Target)
			add("a.target >= ? AND a.target < ? AND (a.target = ? OR a.target >= ?)", q.Target, below, q.Target, from)
		}
		if byIndex {
			// The filter cannot match a keyed mint's entry: saying so
			// lets SQLite use the actor and target indexes.
			add(notMint)
		}
		if !q.Since.IsZero() {
			add(k+".time >= ?", q.Since.UnixNano())
		}
		if !q.Until.IsZero() {
			add(k+".time < ?", q.Until.UnixNano())
		}
		switch q.Order {
		case audit.BySeq:
			if q.Chain == "" {
				return "", nil, errors.New("a listing by sequence number names its chain")
			}
			// Rowid bounds, not seq's: a page after the first starts
			// where the last ended, not at the chain's first entry.
			add(`a.id > (SELECT id << `+strconv.Itoa(seqBits)+` FROM audit_chains WHERE name = ?) + ?
				AND a.id < (SELECT id + 1 << `+strconv.Itoa(seqBits)+` FROM audit_chains WHERE name = ?)`, q.Chain, q.AfterSeq, q.Chain)
		case audit.Newest, audit.Oldest:
			c, ok, err := audit.DecodeCursor(q.After)
			if err != nil {
				return "", nil, err
			}
			op := ">"
			if q.Order == audit.Newest {
				op = "<"
			}
			if ok {
				add("("+k+".time, "+k+".chain, "+k+".seq) "+op+" (?, ?, ?)", c.Time.UnixNano(), c.Chain, c.Seq)
			}
		}
		if len(conds) == 0 {
			return "", nil, nil
		}
		return " WHERE " + strings.Join(conds, " AND "), args, nil
	}
	dir := ""
	if q.Order == audit.Newest {
		dir = " DESC"
	}
	order := " ORDER BY 1" + dir + ", 2" + dir + ", 3" + dir
	limit := ""
	if q.Limit > 0 {
		limit = fmt.Sprintf(` LIMIT %d`, q.Limit)
	}
	if q.Order == audit.BySeq || byIndex && (q.Actor != "" || q.Target != "") {
		cond, args, err := where("a")
		if q.Order == audit.BySeq {
			order = " ORDER BY a.id"
		}
		return `SELECT a.time, a.chain, a.seq, ` + entryColumns + ` FROM audit a` + cond + order + limit, args, err
	}
	timed, args, err := where("t")
	if err != nil {
		return "", nil, err
	}
	tail, targs, err := where("a")
	if err != nil {
		return "", nil, err
	}
	return `SELECT t.time, t.chain, t.seq, ` + entryColumns + ` FROM audit_times t JOIN audit a ON a.id = t.id` + timed + `
		UNION ALL
		SELECT a.time, a.chain, a.seq, ` + entryColumns + ` FROM audit_chains c
			JOIN audit a ON a.id > (c.id << ` + strconv.Itoa(seqBits) + `) + c.timed AND a.id < c.id + 1 << ` + strconv.Itoa(seqBits) +
		tail + order + limit, append(args, targs...), nil
}

// PurgeAudit deletes up to limit entries of chain below beforeSeq, and
// their places in audit_times, in one short transaction.
func (s *Store) PurgeAudit(ctx context.Context, chain string, beforeSeq int64, limit int) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	chunk := `SELECT id FROM audit WHERE ` + inChain + ` AND seq < ? ORDER BY id LIMIT ?`
	_, err = tx.ExecContext(ctx, `DELETE FROM audit_times WHERE (time, chain, seq) IN
		(SELECT time, chain, seq FROM audit WHERE id IN (`+chunk+`))`, chain, chain, beforeSeq, limit)
	if err != nil {
		return 0, unavailable(err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE id IN (`+chunk+`)`, chain, chain, beforeSeq, limit)
	if err != nil {
		return 0, unavailable(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return int(n), nil
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
