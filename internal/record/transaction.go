package record

import (
	"context"
	"fmt"
	"time"
)

// Transaction is all jwtd knows of one XID: its records and outcomes,
// newest first, and when its revocation closed it (the zero time while it
// is open: a closed transaction takes no new token).
type Transaction struct {
	XID      string
	Records  []Record
	Outcomes []Outcome
	Closed   time.Time
}

// ReadTransaction reads a transaction from s: ErrInvalidXID for an XID
// jwtd does not accept, ErrNotFound when it has no records.
func ReadTransaction(ctx context.Context, s Store, xid string) (*Transaction, error) {
	if !ValidXID(xid) {
		return nil, ErrInvalidXID
	}
	recs, err := s.ByXID(ctx, xid)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: no token was issued for XID %s", ErrNotFound, xid)
	}
	t := &Transaction{XID: xid, Records: recs}
	if t.Outcomes, err = s.Outcomes(ctx, xid); err != nil {
		return nil, err
	}
	if t.Closed, err = s.ClosedAt(ctx, xid); err != nil {
		return nil, err
	}
	return t, nil
}
