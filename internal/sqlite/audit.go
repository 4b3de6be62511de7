package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
)

var _ audit.Store = (*Store)(nil)

const auditColumns = `chain, seq, time, instance, actor, action, target, result, request_id, client_ip, detail, prev, hash`

// rowColumns are an audit row's: its first entry's, and the entries of its
// run after it (more).
const rowColumns = auditColumns + `, more`

// maxRun is the most entries a row holds.
const maxRun = 256

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

// AppendAudit links entries after the chain's head as the transaction
// that writes them reads it, under the store's write lock, and writes
// them: all or none.
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
			return storeError(err)
		}
		es := make([]*audit.Entry, len(entries))
		last := head.Entry
		for i := range entries {
			entries[i].Link(name, last)
			es[i], last = &entries[i], entries[i]
		}
		if err := s.insertChain(ctx, tx, head.id, es); err != nil {
			if isUniqueViolation(err) {
				return audit.ErrConflict
			}
			return unavailable(err)
		}
		// Kept before the commit, while tx holds the one write
		// connection (see commitTx).
		head.Entry = entries[len(entries)-1]
		s.keepHeads(map[string]chainHead{name: head})
		if err := tx.Commit(); err != nil {
			return unavailable(err)
		}
		return nil
	}()
	if err != nil {
		s.forgetHeads(map[string]chainHead{name: {}})
		return 0, err
	}
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

// checkHeads drops every head kept when the write connection's
// data_version is not the one last seen: another connection committed.
func (s *Store) checkHeads(version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if version != s.version {
		clear(s.heads)
		s.version = version
	}
}

// forgetHeads drops the heads kept of chains whose commit failed (nil:
// of every chain): what the store holds of them (their numbers too: a
// chain numbered in a commit rolled back is not) is read again.
func (s *Store) forgetHeads(heads map[string]chainHead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if heads == nil {
		clear(s.heads)
	}
	for c := range heads {
		delete(s.heads, c)
	}
}

// isUniqueViolation reports whether a statement failed on a UNIQUE
// constraint: a row's rowid, its (chain, seq), taken.
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
	es, err := scanRow(tx.StmtContext(ctx, s.auditHead).QueryRowContext(ctx, first, first+1<<seqBits-1))
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	if err != nil {
		return chainHead{}, err
	}
	h.Entry = es[len(es)-1]
	return h, nil
}

// A row of the audit table holds one entry, or a run of keyed mints'
// entries: entries of one chain, one after the other, with one time,
// instance and result, as a commit of their records writes them (it
// stamps them with the time of the last). The row's columns are the
// run's first entry; more is a JSON array of the others, each
// [actor, target, request_id, client_ip, detail, hash], the others'
// seq, time, instance, action and result being the first's, and the prev
// of each the hash before it. A run takes one row, one entry of the time
// index and one parameter list, where entries of their own took a row,
// an index entry and a list each, and rebalanced the time index's last
// pages in every commit: the trail's cost on the keyed minting route.
// Keyed mints' entries only, so that the actor and target indexes, which
// leave them out, hold every other entry.
//
// runs splits entries, which follow one another in one chain, into the
// rows that hold them: each a slice of entries.
func runs(entries []*audit.Entry) [][]*audit.Entry {
	var out [][]*audit.Entry
	for start := 0; start < len(entries); {
		first, end := entries[start], start+1
		if first.Action == audit.ActionMint {
			for end < len(entries) && end-start < maxRun {
				if e := entries[end]; e.Action != first.Action || !e.Time.Equal(first.Time) || e.Instance != first.Instance || e.Result != first.Result {
					break
				}
				end++
			}
		}
		out = append(out, entries[start:end])
		start = end
	}
	return out
}

// insertChain inserts entries of the chain numbered id, linked already, in
// the rows runs makes of them.
func (s *Store) insertChain(ctx context.Context, tx *sql.Tx, id int64, entries []*audit.Entry) error {
	rows := runs(entries)
	return s.insertAudit.exec(ctx, tx, len(rows), func(i int, args []any) ([]any, error) {
		e := rows[i][0]
		rowid, err := entryID(id, e.Seq)
		if err != nil {
			return nil, err
		}
		var more any // NULL for an entry of its own
		if len(rows[i]) > 1 {
			rest := make([][6]string, 0, len(rows[i])-1)
			for _, r := range rows[i][1:] {
				rest = append(rest, [6]string{r.Actor, r.Target, r.RequestID, r.ClientIP, r.Detail, r.Hash})
			}
			b, err := json.Marshal(rest)
			if err != nil {
				return nil, err
			}
			more = string(b)
		}
		return append(args, rowid, e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Actor, e.Action, e.Target,
			e.Result, e.RequestID, e.ClientIP, e.Detail, hashValue(e.Prev), hashValue(e.Hash), more), nil
	})
}

// scanRow reads a row of rowColumns as the entries it holds; a run that
// is not as insertChain writes it is a *audit.Break.
func scanRow(sc interface{ Scan(...any) error }) ([]audit.Entry, error) {
	var e audit.Entry
	var t int64
	var prev, hash any
	var more sql.NullString
	if err := sc.Scan(&e.Chain, &e.Seq, &t, &e.Instance, &e.Actor, &e.Action, &e.Target, &e.Result,
		&e.RequestID, &e.ClientIP, &e.Detail, &prev, &hash, &more); err != nil {
		return nil, err
	}
	e.Time = time.Unix(0, t).UTC()
	e.Prev, e.Hash = hashText(prev), hashText(hash)
	if !more.Valid {
		return []audit.Entry{e}, nil
	}
	var rest []json.RawMessage
	if err := json.Unmarshal([]byte(more.String), &rest); err != nil || len(rest) == 0 || len(rest) >= maxRun {
		return nil, &audit.Break{Chain: e.Chain, Seq: e.Seq + 1,
			Reason: "the entries after " + strconv.FormatInt(e.Seq, 10) + " in its row (column more) are not a list jwtd writes (changed in the store)"}
	}
	out := make([]audit.Entry, 1, 1+len(rest))
	out[0] = e
	for i, raw := range rest {
		var f []string
		if err := json.Unmarshal(raw, &f); err != nil || len(f) != 6 {
			return nil, &audit.Break{Chain: e.Chain, Seq: e.Seq + int64(i) + 1,
				Reason: "the entry in its row (column more) is not six strings as jwtd writes it (changed in the store)"}
		}
		out = append(out, audit.Entry{Chain: e.Chain, Seq: e.Seq + int64(i) + 1, Time: e.Time, Instance: e.Instance,
			Actor: f[0], Action: e.Action, Target: f[1], Result: e.Result, RequestID: f[2], ClientIP: f[3], Detail: f[4],
			Prev: out[i].Hash, Hash: f[5]})
	}
	return out, nil
}

// AuditHead returns a chain's last entry.
func (s *Store) AuditHead(ctx context.Context, chain string) (audit.Entry, error) {
	es, err := scanRow(s.read.QueryRowContext(ctx, `SELECT `+rowColumns+` FROM audit WHERE `+inChain+` ORDER BY id DESC LIMIT 1`, chain, chain))
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{}, nil
	}
	if err != nil {
		return audit.Entry{}, storeError(err)
	}
	return es[len(es)-1], nil
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

// AuditList answers q. Rows are read in the listing's order, a page of
// q.Limit rows at a time, and the entries of each that pass q kept, up to
// q.Limit: SQL selects rows by what a run's entries share (chain, time,
// action) and by what it may hold, and each entry is checked against q.
func (s *Store) AuditList(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	pos, _, err := audit.DecodeCursor(q.After)
	if err != nil {
		return nil, err
	}
	// Pages of rows in one transaction: one snapshot, which no commit or
	// purge changes between pages.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var out []audit.Entry
	var last *rowKey // the last row read, after the first page
	for rowLimit := q.Limit; ; rowLimit *= 2 {
		text, args, err := auditQuery(q, last, rowLimit)
		if err != nil {
			return nil, err
		}
		rows, err := tx.QueryContext(ctx, text, args...)
		if err != nil {
			return nil, unavailable(err)
		}
		read, done, err := func() (int, bool, error) {
			defer rows.Close()
			read := 0
			for rows.Next() {
				var k rowKey
				es, err := scanRow(rowScanner{rows, &k.id})
				if err != nil {
					return read, false, err
				}
				read, k.Entry = read+1, es[0]
				last = &k
				if q.Order == audit.Newest {
					slices.Reverse(es)
				}
				for _, e := range es {
					if listed(q, pos, e) {
						out = append(out, e)
						if len(out) == q.Limit {
							return read, true, nil
						}
					}
				}
			}
			return read, false, rows.Err()
		}()
		if err != nil {
			return nil, storeError(err)
		}
		// Twice as many rows a page each time: a query SQLite answers with
		// a sort runs a few times, not once a page of q.Limit.
		if done || rowLimit <= 0 || read < rowLimit {
			return out, nil
		}
	}
}

// storeError is err as the store's readers return it: a broken chain as it
// is, anything else as the store unavailable.
func storeError(err error) error {
	if b := (*audit.Break)(nil); errors.As(err, &b) {
		return err
	}
	return unavailable(err)
}

// rowKey is where a row sits: its rowid and its first entry.
type rowKey struct {
	id int64
	audit.Entry
}

// rowScanner scans a row's rowid, then its rowColumns.
type rowScanner struct {
	sc interface{ Scan(...any) error }
	id *int64
}

func (r rowScanner) Scan(dst ...any) error { return r.sc.Scan(append([]any{r.id}, dst...)...) }

// listed reports whether q lists e, after the cursor position pos.
func listed(q audit.Query, pos audit.Position, e audit.Entry) bool {
	if q.Chain != "" && e.Chain != q.Chain || q.Actor != "" && e.Actor != q.Actor || q.Action != "" && e.Action != q.Action ||
		q.Target != "" && !audit.TargetMatches(q.Target, e.Target) ||
		!q.Since.IsZero() && e.Time.Before(q.Since) || !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	switch q.Order {
	case audit.BySeq:
		return e.Seq > q.AfterSeq
	case audit.Newest:
		return q.After == "" || compare(e, pos) < 0
	default:
		return q.After == "" || compare(e, pos) > 0
	}
}

// compare orders e and pos as listings by time do: by time, chain and
// sequence number.
func compare(e audit.Entry, pos audit.Position) int {
	if c := e.Time.Compare(pos.Time); c != 0 {
		return c
	}
	if c := strings.Compare(e.Chain, pos.Chain); c != 0 {
		return c
	}
	return cmp.Compare(e.Seq, pos.Seq)
}

// auditQuery is the SELECT of up to limit rows (all for 0) that may hold
// entries q lists, in its order, from the row after last (nil: from the
// first), and its arguments.
func auditQuery(q audit.Query, last *rowKey, limit int) (string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if q.Chain != "" {
		add(inChain, q.Chain, q.Chain)
	}
	// A run holds keyed mints only: a filter that cannot match one selects
	// rows of one entry, by the actor and target indexes, which leave
	// keyed mints out; another selects the runs too, whose entries after
	// the first are checked by listed.
	exact := q.Action != "" && q.Action != audit.ActionMint || q.Target != "" && !audit.MintTargetMay(q.Target)
	orRun := " OR more IS NOT NULL)"
	if exact {
		orRun = ")"
		add(notMint)
	}
	if q.Actor != "" {
		add("(actor = ?"+orRun, q.Actor)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.Target != "" {
		// One range of the target index: the target itself, and the
		// targets that start with it and a space.
		from, below := audit.TargetRange(q.Target)
		add("(target >= ? AND target < ? AND (target = ? OR target >= ?)"+orRun, q.Target, below, q.Target, from)
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
		if last != nil {
			add("id > ?", last.id)
		} else {
			// A rowid bound, not seq's: a page after the first starts
			// where the last ended, not at the chain's first entry; from
			// the rows that may hold AfterSeq+1.
			add(`id > (SELECT id << `+strconv.Itoa(seqBits)+` FROM audit_chains WHERE name = ?) + ?`, q.Chain, max(q.AfterSeq, 0)-maxRun)
		}
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
		switch {
		case last != nil:
			add("(time, chain, seq) "+op+" (?, ?, ?)", last.Time.UnixNano(), last.Chain, last.Seq)
		case ok && q.Order == audit.Newest:
			// A row before the cursor's entry starts before it.
			add("(time, chain, seq) < (?, ?, ?)", c.Time.UnixNano(), c.Chain, c.Seq)
		case ok:
			// A row after it may start up to a run before it.
			add("(time, chain, seq) > (?, ?, ?)", c.Time.UnixNano(), c.Chain, c.Seq-maxRun)
		}
		order = "time" + dir + ", chain" + dir + ", seq" + dir
	}
	text := `SELECT id, ` + rowColumns + ` FROM audit`
	if len(where) > 0 {
		text += ` WHERE ` + strings.Join(where, " AND ")
	}
	text += ` ORDER BY ` + order
	if limit > 0 {
		text += fmt.Sprintf(` LIMIT %d`, limit)
	}
	return text, args, nil
}

// runLength is the number of entries a row holds after its first, as SQL
// reads it; 0 for a run that is not a JSON array (changed in the store:
// Verify finds it, and a purge past it deletes it).
const runLength = `CASE WHEN json_valid(more) THEN json_array_length(more) ELSE 0 END`

// PurgeAudit deletes up to limit rows of chain's entries below beforeSeq,
// oldest first, in one short transaction, and returns how many entries
// they held. A row that holds beforeSeq and entries before it, the last,
// is written again from beforeSeq on.
func (s *Store) PurgeAudit(ctx context.Context, chain string, beforeSeq int64, limit int) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	below := `id < (SELECT id << ` + strconv.Itoa(seqBits) + ` FROM audit_chains WHERE name = ?) + ?`
	rows, err := tx.QueryContext(ctx, `DELETE FROM audit WHERE id IN
		(SELECT id FROM audit WHERE `+inChain+` AND `+below+` AND seq + `+runLength+` < ? ORDER BY id LIMIT ?)
		RETURNING 1 + `+runLength, chain, chain, chain, beforeSeq, beforeSeq, limit)
	deleted, err := collectWith(rows, err, func(sc interface{ Scan(...any) error }) (n int, err error) { return n, sc.Scan(&n) })
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range deleted {
		n += d
	}
	if len(deleted) < limit {
		var id int64
		es, err := scanRow(rowScanner{tx.QueryRowContext(ctx, `SELECT id, `+rowColumns+` FROM audit WHERE `+inChain+` AND `+below+`
			ORDER BY id DESC LIMIT 1`, chain, chain, chain, beforeSeq), &id})
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, storeError(err)
		}
		if err == nil {
			kept := make([]*audit.Entry, 0, len(es))
			for i := range es {
				if es[i].Seq >= beforeSeq {
					kept = append(kept, &es[i])
				}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM audit WHERE id = ?`, id); err != nil {
				return 0, unavailable(err)
			}
			if err := s.insertChain(ctx, tx, id>>seqBits, kept); err != nil {
				return 0, unavailable(err)
			}
			n += len(es) - len(kept)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
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
