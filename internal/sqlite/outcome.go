package sqlite

import (
	"context"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

// AddOutcome appends an outcome to a transaction that has records and
// fewer than MaxOutcomes outcomes, in one statement: the checks and the
// insert cannot be torn apart.
func (s *Store) AddOutcome(ctx context.Context, o *record.Outcome) error {
	n, err := s.exec(ctx, `INSERT INTO outcomes (xid, status, code, description, updated_on, source, recorded)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
		WHERE EXISTS (SELECT 1 FROM tokens WHERE xid = ?1 AND xid != '')
		AND (SELECT count(*) FROM outcomes WHERE xid = ?1) < ?8`,
		o.XID, string(o.Status), o.Code, o.Description, o.UpdatedOn.UnixNano(), o.Source, o.Recorded.UnixNano(), record.MaxOutcomes)
	if err != nil || n == 1 {
		return err
	}
	// No record, or as many outcomes as allowed: say which.
	var tokens int
	if err := s.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM tokens WHERE xid = ? AND xid != '' LIMIT 1)`, o.XID).Scan(&tokens); err != nil {
		return unavailable(err)
	}
	if tokens == 0 {
		return record.ErrNotFound
	}
	return record.ErrTooManyOutcomes
}

// Outcomes returns a transaction's outcomes, newest first.
func (s *Store) Outcomes(ctx context.Context, xid string) ([]record.Outcome, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT status, code, description, updated_on, source, recorded FROM outcomes
		WHERE xid = ? ORDER BY updated_on DESC, recorded DESC, rowid DESC LIMIT 1000`, xid)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []record.Outcome
	for rows.Next() {
		o := record.Outcome{XID: xid}
		var updated, recorded int64
		if err := rows.Scan(&o.Status, &o.Code, &o.Description, &updated, &o.Source, &recorded); err != nil {
			return nil, unavailable(err)
		}
		o.UpdatedOn, o.Recorded = time.Unix(0, updated).UTC(), time.Unix(0, recorded).UTC()
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
