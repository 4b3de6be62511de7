package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
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

// chainIDs is the condition that an entry's rowid is in the range of the
// chain whose number is the SQL expression n.
func chainIDs(n string) string {
	bits := strconv.Itoa(seqBits)
	return `id BETWEEN ` + n + ` << ` + bits + ` AND (` + n + ` + 1 << ` + bits + `) - 1`
}

// inChain is the condition that an entry is of the chain named by its
// two arguments (the name twice), which no row matches for a chain never
// numbered.
var inChain = chainIDs(`(SELECT id FROM audit_chains WHERE name = ?)`)

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
	var at int64
	err = tx.StmtContext(ctx, s.auditHead).QueryRowContext(ctx, first, first+1<<seqBits-1).Scan(&h.Seq, &at, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	h.Time, h.Hash = time.Unix(0, at).UTC(), hashText(hash)
	return h, err
}

// insertChain inserts n entries of the chain numbered id, linked already;
// entry(i) is the i-th.
func (s *Store) insertChain(ctx context.Context, tx *sql.Tx, id int64, n int, entry func(i int) *audit.Entry) error {
	return s.insertAudit.exec(ctx, tx, n, func(i int, args []any) ([]any, error) {
		e := entry(i)
		rowid, err := entryID(id, e.Seq)
		return append(args, rowid, e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Actor, e.Action, e.Target,
			e.Result, e.RequestID, e.ClientIP, e.Detail, hashValue(e.Prev), hashValue(e.Hash)), err
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
	chains, err := chainRanges(ctx, s.read, "")
	if err != nil {
		return nil, unavailable(err)
	}
	names := make([]string, len(chains))
	for i, c := range chains {
		names[i] = c.name
	}
	return names, nil
}

// chainRange is a chain with entries, by name (the chain named, or all,
// for ""), and the rowids of its first and last.
type chainRange struct {
	id, lo, hi int64
	name       string
}

// chainRanges are the chains with entries of name ("" for all), by name.
func chainRanges(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, name string) ([]chainRange, error) {
	rows, err := q.QueryContext(ctx, `SELECT * FROM (SELECT c.id, c.name,
			(SELECT id FROM audit WHERE `+chainIDs("c.id")+` ORDER BY id LIMIT 1) AS lo,
			(SELECT id FROM audit WHERE `+chainIDs("c.id")+` ORDER BY id DESC LIMIT 1)
		FROM audit_chains c WHERE ? IN ('', c.name)) WHERE lo IS NOT NULL ORDER BY name`, name)
	return collectWith(rows, err, func(sc interface{ Scan(...any) error }) (chainRange, error) {
		var c chainRange
		return c, sc.Scan(&c.id, &c.name, &c.lo, &c.hi)
	})
}

// notMint is the condition of the actor and target indexes: keyed mints'
// entries, the most of a trail, are left out of them, so that a mint
// writes two fewer index pages with its record. A filter by actor that may
// match mints reads each chain's entries in its range.
const notMint = `action != 'token.mint'`

// AuditList answers q. The table has no index of times, which would cost
// every keyed mint an index page: a chain in sequence order is in time
// order (audit.Entry.Link), so a chain's entries between two times, or
// after a cursor, are a range of its rowids, which rowRange.seek finds by
// binary search. A listing reads, from each chain's range, its first
// q.Limit entries that pass the filters, in the order asked, and merges
// them. The conditions of the times and the cursor are also the query's,
// so that no entry outside them is listed whatever the chains hold.
func (s *Store) AuditList(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	if q.Order == audit.BySeq && q.Chain == "" {
		return nil, errors.New("a listing by sequence number names its chain")
	}
	text, args, cur, after, err := auditQuery(q)
	if err != nil {
		return nil, err
	}
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	chains, err := chainRanges(ctx, tx, q.Chain)
	if err != nil {
		return nil, unavailable(err)
	}
	probe := tx.StmtContext(ctx, s.auditProbe)
	var out []audit.Entry
	for _, c := range chains {
		r := rowRange{ctx: ctx, probe: probe, lo: c.lo, hi: c.hi}
		if q.Order == audit.BySeq && q.AfterSeq > 0 {
			id, err := entryID(c.id, q.AfterSeq)
			if err != nil {
				return nil, err
			}
			r.from(id + 1)
		}
		r.fromTime(q.Since)
		r.belowTime(q.Until)
		if after {
			r.after(q.Order, c, cur)
		}
		if r.err != nil {
			return nil, unavailable(r.err)
		}
		if r.lo > r.hi {
			continue
		}
		rows, err := tx.QueryContext(ctx, text, append([]any{r.lo, r.hi}, args...)...)
		es, err := collectWith(rows, err, scanAudit)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	if len(chains) > 1 {
		sort.Slice(out, func(i, j int) bool {
			a, b := out[i], out[j]
			if q.Order == audit.Newest {
				a, b = b, a
			}
			if !a.Time.Equal(b.Time) {
				return a.Time.Before(b.Time)
			}
			if a.Chain != b.Chain {
				return a.Chain < b.Chain
			}
			return a.Seq < b.Seq
		})
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// auditQuery is the SELECT of one chain's entries that AuditList runs,
// whose first two arguments are the range of rowids it reads, and the
// arguments after those; and q's cursor, if it has one.
func auditQuery(q audit.Query) (text string, args []any, cur audit.Position, after bool, err error) {
	if q.Order != audit.BySeq {
		if cur, after, err = audit.DecodeCursor(q.After); err != nil {
			return "", nil, cur, false, err
		}
	}
	rows := "id BETWEEN ? AND ?" // the chain's range, the first two arguments
	var where []string
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
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
		if q.Actor != "" || q.Target != "" {
			// And it should, rather than the chain's range of rowids,
			// which may be all mints: a unary + keeps the range from
			// being read as the table's key.
			rows = "+" + rows
		}
	}
	if !q.Since.IsZero() {
		add("time >= ?", q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		add("time < ?", q.Until.UnixNano())
	}
	if after {
		op := ">"
		if q.Order == audit.Newest {
			op = "<"
		}
		add("(time, chain, seq) "+op+" (?, ?, ?)", cur.Time.UnixNano(), cur.Chain, cur.Seq)
	}
	text = `SELECT ` + auditColumns + ` FROM audit WHERE ` + strings.Join(append([]string{rows}, where...), " AND ")
	text += " ORDER BY id"
	if q.Order == audit.Newest {
		text += " DESC"
	}
	if q.Limit > 0 {
		text += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	return text, args, cur, after, nil
}

// rowRange narrows the rowids [lo, hi] of one chain's entries to those a
// listing reads; the first error stops it.
type rowRange struct {
	ctx    context.Context
	probe  *sql.Stmt // the first entry's rowid and time in a range of rowids
	lo, hi int64
	err    error
}

// from drops the rowids below id.
func (r *rowRange) from(id int64) { r.lo = max(r.lo, id) }

// fromTime drops the entries before t (none for the zero time).
func (r *rowRange) fromTime(t time.Time) {
	if !t.IsZero() {
		r.from(r.seek(t))
	}
}

// belowTime drops the entries at or after t (none for the zero time).
func (r *rowRange) belowTime(t time.Time) {
	if !t.IsZero() {
		r.hi = min(r.hi, r.seek(t)-1)
	}
}

// after keeps the entries of chain c after the cursor's position p in
// order (entries of the cursor's time are ordered by chain, then seq).
func (r *rowRange) after(order audit.Order, c chainRange, p audit.Position) {
	if c.name == p.Chain {
		id, err := entryID(c.id, p.Seq)
		if err != nil {
			r.err = err
			return
		}
		if order == audit.Newest {
			r.hi = min(r.hi, id-1)
		} else {
			r.from(id + 1)
		}
		return
	}
	// At the cursor's time, a chain named before the cursor's comes
	// before it, one named after comes after.
	atTimeBefore := c.name < p.Chain
	if order == audit.Newest {
		if atTimeBefore {
			r.belowTime(p.Time.Add(1))
		} else {
			r.belowTime(p.Time)
		}
		return
	}
	if atTimeBefore {
		r.fromTime(p.Time.Add(1))
	} else {
		r.fromTime(p.Time)
	}
}

// seek is the first rowid in the range of an entry at or after t, or
// hi+1 if none is: a binary search, exact because a chain in sequence
// order is in time order. An entry missing from the chain (a hole the
// verifier reports) is skipped over.
func (r *rowRange) seek(t time.Time) int64 {
	ns := t.UnixNano()
	a, b := r.lo, r.hi+1
	for a < b && r.err == nil {
		m := a + (b-a)/2
		var id, at int64
		err := r.probe.QueryRowContext(r.ctx, m, b-1).Scan(&id, &at)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			b = m
		case err != nil:
			r.err = err
		case at >= ns:
			b = id
		default:
			a = id + 1
		}
	}
	return b
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
