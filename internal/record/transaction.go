package record

import (
	"context"
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

// TransactionReader is what ReadTransaction needs of a Store.
type TransactionReader interface {
	ByXID(ctx context.Context, xid string) ([]Record, error)
	Outcomes(ctx context.Context, xid string) ([]Outcome, error)
	ClosedAt(ctx context.Context, xid string) (time.Time, error)
}

// ReadTransaction reads a transaction from s: ErrInvalidXID for an XID
// jwtd does not accept, ErrUnknownXID when it has no records.
func ReadTransaction(ctx context.Context, s TransactionReader, xid string) (*Transaction, error) {
	if !ValidXID(xid) {
		return nil, ErrInvalidXID
	}
	recs, err := s.ByXID(ctx, xid)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrUnknownXID
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
