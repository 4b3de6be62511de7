package record

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors of the use cases on a jti or a transaction that no record has:
// never recorded (a profile with record: false), or purged. Both are
// ErrNotFound.
var (
	ErrUnknownJTI = fmt.Errorf("%w: no token was recorded with this jti", ErrNotFound)
	ErrUnknownXID = fmt.Errorf("%w: no token was recorded with this XID", ErrNotFound)
)

// Errors of a revocation's target.
var (
	ErrTarget     = errors.New("give exactly one of jti and xid")
	ErrInvalidJTI = fmt.Errorf("a jti is at most %d characters", maxJTI)
)

// maxJTI bounds the jti a revocation names: jwtd's own are 32 characters.
const maxJTI = 128

// Target is what a revocation revokes: one token by its jti, or every
// token of a transaction by its XID. Exactly one is set.
type Target struct {
	JTI string
	XID string
}

// Revoker is what Revoke needs of a Store.
type Revoker interface {
	RevokeJTI(ctx context.Context, jti string, at time.Time) (int, error)
	RevokeXID(ctx context.Context, xid string, at time.Time) (int, error)
	ByJTI(ctx context.Context, jti string) (*Record, error)
	ByXID(ctx context.Context, xid string) ([]Record, error)
}

// Revoke revokes t at the time at: the token with t.JTI, or every token of
// the transaction t.XID, which it closes (a closed transaction takes no new
// token). It returns how many tokens it revoked: 0 when they all were
// revoked already. Errors: ErrTarget unless exactly one of t.JTI and t.XID
// is set, ErrInvalidJTI, ErrInvalidXID; ErrUnknownJTI or ErrUnknownXID when
// no record has it; the store's (ErrUnavailable).
func Revoke(ctx context.Context, s Revoker, t Target, at time.Time) (int, error) {
	switch {
	case (t.JTI == "") == (t.XID == ""):
		return 0, ErrTarget
	case len(t.JTI) > maxJTI:
		return 0, ErrInvalidJTI
	case t.JTI == "" && !ValidXID(t.XID):
		return 0, ErrInvalidXID
	}
	if t.JTI != "" {
		n, err := s.RevokeJTI(ctx, t.JTI, at)
		if n > 0 || err != nil {
			return n, err
		}
		// Revoked already, or unknown: say which.
		switch _, err := s.ByJTI(ctx, t.JTI); {
		case errors.Is(err, ErrNotFound):
			return 0, ErrUnknownJTI
		case err != nil:
			return 0, err
		}
		return 0, nil
	}
	n, err := s.RevokeXID(ctx, t.XID, at)
	if n > 0 || err != nil {
		return n, err
	}
	switch recs, err := s.ByXID(ctx, t.XID); {
	case err != nil:
		return 0, err
	case len(recs) == 0:
		return 0, ErrUnknownXID
	}
	return 0, nil
}
