// Package record defines what jwtd remembers of every token it hands out,
// the Store contract the storage adapters (sqlite, mongodb) implement, and
// the use cases on a transaction that the API calls (ReadTransaction,
// Revoke, ReportOutcome), each taking the little of a Store it needs.
// recordtest holds the conformance suite every Store passes.
package record

import (
	"context"
	"errors"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
)

// Errors of the Store contract. Adapters translate their driver's errors
// into these.
var (
	ErrNotFound    = errors.New("record not found")
	ErrDuplicate   = errors.New("a record with this jti exists")
	ErrXIDConflict = errors.New("the xid belongs to another phone number")
	ErrUnavailable = errors.New("record store unavailable")
	// ErrXIDClosed is a new token for a transaction that was revoked as a
	// whole: revoking an XID closes it.
	ErrXIDClosed = errors.New("the transaction was revoked, and a revoked transaction takes no new tokens")
	// ErrInvalidXID is a transaction ID ValidXID refuses.
	ErrInvalidXID = errors.New("an XID is 1 to 128 characters of A-Z a-z 0-9 . _ : -")
)

// Status of a token, derived from its record at a moment.
type Status string

const (
	Active  Status = "active"
	Expired Status = "expired"
	Revoked Status = "revoked"
)

// Record is one minted token. Times are UTC; Revoked is zero unless the
// token was revoked. The whole token is kept only when its profile asks
// (TokenText); TokenSHA256 always.
type Record struct {
	JTI         string
	Profile     string
	Kid         string
	Alg         string
	XID         string
	Phone       string // E.164, or empty
	Subject     string
	Issued      time.Time // when jwtd minted it (full precision; orders records)
	Expires     time.Time
	Revoked     time.Time
	ClientIP    string
	TokenSHA256 string // hex
	TokenText   string
	// Audit, when set, is the audit entry of the minting (a token minted
	// with an API key), which Insert writes in the record's commit; see
	// Store. It is not part of the record, and is nil in records read back.
	Audit *audit.Entry
}

// Status is the record's status at now: revoked wins over expired.
func (r *Record) Status(now time.Time) Status {
	switch {
	case !r.Revoked.IsZero():
		return Revoked
	case !now.Before(r.Expires):
		return Expired
	}
	return Active
}

// Revocation is a revoked token: its jti, when its record says it
// expires, and when it was revoked.
type Revocation struct {
	JTI     string
	Expires time.Time
	Revoked time.Time
}

// Page is one page of a listing and the cursor of the next, empty at the end.
type Page struct {
	Records []Record
	Next    string
}

// Store keeps records. Implementations are safe for concurrent use.
//
// Insert returns only once the record is durably committed: a token may be
// handed out after Insert returns nil and never before. It returns
// ErrDuplicate when the jti exists and ErrXIDConflict when the record's
// non-empty XID already belongs to records with another phone; in both cases
// nothing is written. A record's Audit entry is written in the same commit
// (one SQLite transaction, one MongoDB batch), linked after the head of its
// chain as the store holds it then (Entry.Link: Seq, Prev and Hash are set
// in place), so that a keyed mint costs no audit write of its own; when the
// record is written and its entry is not, Insert returns an error wrapping
// audit.ErrNotWritten (the caller fails the mint, or has the trail write the
// entry later). Lookups return records newest first (by Issued, then
// jti); ByJTI returns ErrNotFound. Revoke marks every unrevoked record of a
// jti or an xid and returns how many it marked; RevokeXID also closes the
// transaction when it has records, in the same write: from then on Insert
// refuses its records with ErrXIDClosed, and ClosedAt says when it was
// closed (the zero time while it is open). Revocations returns the
// revocations made at or after since of tokens that expire after liveAt,
// oldest first. AddOutcome appends an outcome to the transaction o.XID, and
// returns ErrNotFound when no record has that XID; Outcomes returns a
// transaction's outcomes newest first (by UpdatedOn, then Recorded). Purge
// deletes records that expired before the given time, and the outcomes of
// the transactions it leaves without records, and their closing. A store that cannot be reached returns
// errors wrapping ErrUnavailable; every method honours ctx.
type Store interface {
	Insert(ctx context.Context, r *Record) error
	ByJTI(ctx context.Context, jti string) (*Record, error)
	ByXID(ctx context.Context, xid string) ([]Record, error)
	ByPhone(ctx context.Context, phone string, limit int, cursor string) (Page, error)
	RevokeJTI(ctx context.Context, jti string, at time.Time) (int, error)
	RevokeXID(ctx context.Context, xid string, at time.Time) (int, error)
	ClosedAt(ctx context.Context, xid string) (time.Time, error)
	Revocations(ctx context.Context, since, liveAt time.Time) ([]Revocation, error)
	AddOutcome(ctx context.Context, o *Outcome) error
	Outcomes(ctx context.Context, xid string) ([]Outcome, error)
	Purge(ctx context.Context, expiredBefore time.Time) (int, error)
	Ping(ctx context.Context) error
	Close() error
}

// ValidXID reports whether s is a transaction ID jwtd accepts: 1 to 128
// characters of [A-Za-z0-9._:-].
func ValidXID(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
