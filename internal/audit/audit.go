// Package audit is jwtd's audit trail: who did what, to what, when, with
// which result, for every action that changes state or reveals a secret.
// Entries are kept in the record store and chained: each holds the SHA-256
// of the one before it in its chain, so an entry removed or changed in the
// store is found by Verify.
//
// Chains: one per instance name (the audit.instance setting, by default
// the host name), advanced by compare-and-swap on the sequence number. An
// instance writes its entries through its Trail, and the entries of keyed
// mints in the commits of their records (Trail.Stamp and
// Trail.Committed), so its chain needs no coordination with other
// instances. Either way the store links entries after the head as it
// holds it when it writes them; when two writers advance one chain (those
// two, or two processes sharing a name: two servers on one host, or the
// CLI beside the server), the store refuses the second writer of a
// sequence number (SQLite under its write lock, MongoDB by the unique
// _id), which reads the head again and links its entries after it.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Actors that are not API keys.
const (
	ActorCLI  = "cli"  // a jwtd command run by an operator
	ActorJWTD = "jwtd" // scheduled or automatic work of the server
)

// Actions.
const (
	ActionMint         = "token.mint"      // a token minted with an API key (target jti:…)
	ActionRevoke       = "token.revoke"    // target jti:… or xid:…, detail count=N
	ActionOutcome      = "outcome.record"  // target xid:…, detail the status
	ActionKeyRotate    = "key.rotate"      // target profile:…
	ActionKeyState     = "key.state"       // a managed key published, activated, retired or deleted
	ActionKeyReseal    = "key.reseal"      // keys sealed again under a new master key
	ActionKeyOpenFail  = "key.open_failed" // a master key that does not open the stored keys
	ActionKeyShow      = "key.show"        // jwtd keys show of a secret
	ActionAPIKeys      = "apikeys.reload"  // detail added=… removed=…
	ActionConfigReload = "config.reload"   // SIGHUP
	ActionAuthRefused  = "auth.refused"    // refused authentications, per key name and address per minute
	ActionPurge        = "audit.purge"     // entries older than the retention deleted (see Purge)
	ActionBackup       = "store.backup"    // jwtd backup
)

// MintTarget is the target of a keyed mint's entry: its jti, and its
// XID when it has one.
func MintTarget(jti, xid string) string {
	if xid == "" {
		return "jti:" + jti
	}
	return "jti:" + jti + " xid:" + xid
}

// MintTargetMay reports whether a target filter may match a keyed mint's
// entry: one that starts as MintTarget's do.
func MintTargetMay(target string) bool { return strings.HasPrefix(target, "jti:") }

// TargetMatches reports whether an entry's target is selected by a target
// filter (Query.Target): the target is the filter, or starts with it and a
// space, so that a keyed mint's "jti:X xid:Y" is found by "jti:X" (and not
// by "jti:X1", nor by "xid:Y": a target is matched from its start).
func TargetMatches(filter, target string) bool {
	rest, ok := strings.CutPrefix(target, filter)
	return ok && (rest == "" || rest[0] == ' ')
}

// TargetRange is how a store selects what TargetMatches does with an
// ordered index: the targets equal to filter, and those from filter+" "
// up to, not including, filter+"!" (the byte after the space), which are
// exactly those that start with filter and a space.
func TargetRange(filter string) (from, below string) { return filter + " ", filter + "!" }

// Results.
const (
	ResultOK      = "ok"
	ResultFailed  = "failed"
	ResultRefused = "refused"
)

// Entry is one audited action. Chain, Seq, Prev and Hash are set by the
// Trail that writes it; Time is when the action happened (UTC, kept to the
// nanosecond in every store), but for keyed mints in the embedded store,
// which stamps a commit's with the time of its last (a run). Never a
// token, a secret or key material.
type Entry struct {
	Chain     string    `json:"chain"`
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Instance  string    `json:"instance"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Target    string    `json:"target,omitempty"`
	Result    string    `json:"result"`
	RequestID string    `json:"request_id,omitempty"`
	ClientIP  string    `json:"client_ip,omitempty"`
	Detail    string    `json:"detail,omitempty"`
	Prev      string    `json:"prev"` // hex SHA-256 of the entry before in the chain; "" for the first
	Hash      string    `json:"hash"` // hex SHA-256 of this entry's canonical encoding
}

// Canonical is the encoding an entry's hash is taken over: a JSON array of
// every field but Hash, in a fixed order, the time as Unix nanoseconds, as
// encoding/json writes it ([]any{1, chain, seq, …, prev}).
func (e *Entry) Canonical() []byte { return e.appendCanonical(nil) }

// appendCanonical appends Canonical's bytes to b without reflection: an
// entry is hashed on every keyed mint.
func (e *Entry) appendCanonical(b []byte) []byte {
	b = append(b, "[1,"...)
	b = appendJSONString(b, e.Chain)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, e.Time.UnixNano(), 10)
	for _, s := range [...]string{e.Instance, e.Actor, e.Action, e.Target, e.Result, e.RequestID, e.ClientIP, e.Detail, e.Prev} {
		b = append(b, ',')
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s as encoding/json writes it: printable ASCII
// but for the characters it escapes as it is, anything else through
// encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ComputeHash is the hex SHA-256 of the entry's canonical encoding.
func (e *Entry) ComputeHash() string {
	var buf [512]byte
	sum := sha256.Sum256(e.appendCanonical(buf[:0]))
	return hex.EncodeToString(sum[:])
}

// Link makes e the entry after prev in chain: the next sequence number (1
// after the zero Entry, a chain's head before its first entry), prev's
// hash, and its own hash, computed last.
func (e *Entry) Link(chain string, prev Entry) {
	e.Chain, e.Seq, e.Prev = chain, prev.Seq+1, prev.Hash
	e.Hash = e.ComputeHash()
}

// Errors of the Store contract.
var (
	// ErrConflict is AppendAudit when other writers kept advancing the
	// chain past the head it linked after, attempt after attempt.
	ErrConflict = errors.New("the audit chain advanced since its head was read")
	// ErrInvalidCursor is a cursor Store.AuditList did not make.
	ErrInvalidCursor = errors.New("invalid cursor: pass next_cursor from the previous page as it was")
)

// Order of a listing.
type Order int

const (
	Newest Order = iota // by time, newest first (then chain, seq descending)
	Oldest              // by time, oldest first
	BySeq               // one chain (Query.Chain) by sequence number
)

// Query selects entries. Empty fields select everything; Since is
// inclusive, Until exclusive; Target selects as TargetMatches says. After is a cursor (Cursor of the last entry
// of the previous page) for Newest and Oldest; AfterSeq for BySeq.
type Query struct {
	Chain, Actor, Action, Target string
	Since, Until                 time.Time
	Order                        Order
	After                        string
	AfterSeq                     int64
	Limit                        int
}

// Position is where an entry sits in a time-ordered listing.
type Position struct {
	Time  time.Time
	Chain string
	Seq   int64
}

// Cursor is the opaque cursor of the listing position after e.
func Cursor(e Entry) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(e.Time.UnixNano(), 10) + "|" + strconv.FormatInt(e.Seq, 10) + "|" + e.Chain))
}

// DecodeCursor reads a Cursor; ok is false for "".
func DecodeCursor(c string) (Position, bool, error) {
	if c == "" {
		return Position{}, false, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return Position{}, false, ErrInvalidCursor
	}
	parts := strings.SplitN(string(b), "|", 3)
	if len(parts) != 3 {
		return Position{}, false, ErrInvalidCursor
	}
	ns, err1 := strconv.ParseInt(parts[0], 10, 64)
	seq, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err1 != nil || err2 != nil {
		return Position{}, false, ErrInvalidCursor
	}
	return Position{Time: time.Unix(0, ns).UTC(), Chain: parts[2], Seq: seq}, true, nil
}

// Store keeps audit entries. Implementations are safe for concurrent use.
//
// AppendAudit links entries, of one chain, after the chain's head as the
// store holds it when it writes them (Entry.Link, in entries: a head the
// caller linked after that another writer has moved on is not kept), and
// writes them in order; it returns how many it wrote: all, or, with an
// error, a prefix (SQLite writes all or none; MongoDB, with ErrConflict,
// what it wrote before writers kept taking its sequence numbers). AuditHead is a chain's last entry, the zero Entry for a
// chain with none. AuditChains names every chain. AuditList answers a
// Query. PurgeAudit deletes entries of a chain below beforeSeq, oldest
// first, up to limit of them or, in a store that keeps a run of entries
// together, up to limit runs, and returns how many entries.
type Store interface {
	AppendAudit(ctx context.Context, entries []Entry) (int, error)
	AuditHead(ctx context.Context, chain string) (Entry, error)
	AuditChains(ctx context.Context) ([]string, error)
	AuditList(ctx context.Context, q Query) ([]Entry, error)
	PurgeAudit(ctx context.Context, chain string, beforeSeq int64, limit int) (int, error)
}

// Page is one page of a listing and the cursor of the next ("" at the end).
type Page struct {
	Entries []Entry
	Next    string
}

// List answers q a page of at most q.Limit entries at a time.
func List(ctx context.Context, s Store, q Query) (Page, error) {
	limit := q.Limit
	q.Limit = limit + 1
	es, err := s.AuditList(ctx, q)
	if err != nil {
		return Page{}, err
	}
	p := Page{Entries: es}
	if len(es) > limit {
		p.Entries = es[:limit]
		p.Next = Cursor(es[limit-1])
	}
	return p, nil
}

// purgeClaim is the detail of an ActionPurge entry: the first entry left
// of the chain named by its target, and that entry's Prev. Verify accepts
// a chain that starts past seq 1 only where a claim says how it starts.
func purgeClaim(seq int64, prev string) string {
	return fmt.Sprintf("first=%d prev=%s", seq, prev)
}

// PurgeTarget is the target of the purge entry of a chain.
func PurgeTarget(chain string) string { return "chain:" + chain }
