package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

// RevokeJTI marks one token revoked.
func (s *Store) RevokeJTI(ctx context.Context, jti string, at time.Time) (int, error) {
	return s.exec(ctx, `UPDATE tokens SET revoked = ? WHERE jti = ? AND revoked IS NULL`, at.UnixNano(), jti)
}

// RevokeXID marks every token of a transaction revoked and closes the
// transaction, in one transaction: a record committed after it finds the
// XID closed, one committed before it is marked.
func (s *Store) RevokeXID(ctx context.Context, xid string, at time.Time) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked = ? WHERE xid = ? AND xid != '' AND revoked IS NULL`, at.UnixNano(), xid)
	if err != nil {
		return 0, unavailable(err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO closed_xids (xid, closed) SELECT ?1, ?2
		WHERE EXISTS (SELECT 1 FROM tokens WHERE xid = ?1 AND xid != '') ON CONFLICT (xid) DO NOTHING`, xid, at.UnixNano()); err != nil {
		return 0, unavailable(err)
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return int(n), nil
}

// ClosedAt says when a transaction was closed by its revocation; the zero
// time while it is open.
func (s *Store) ClosedAt(ctx context.Context, xid string) (time.Time, error) {
	var at int64
	err := s.read.QueryRowContext(ctx, `SELECT closed FROM closed_xids WHERE xid = ?`, xid).Scan(&at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, unavailable(err)
	}
	return time.Unix(0, at).UTC(), nil
}

// Revocations returns the revocations made at or after since of tokens
// that expire after liveAt, oldest first.
func (s *Store) Revocations(ctx context.Context, since, liveAt time.Time) ([]record.Revocation, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT jti, expires, revoked FROM tokens
		WHERE revoked IS NOT NULL AND revoked >= ? AND expires > ? ORDER BY revoked`, since.UnixNano(), liveAt.UnixNano())
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []record.Revocation
	for rows.Next() {
		var jti string
		var expires, revoked int64
		if err := rows.Scan(&jti, &expires, &revoked); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, record.Revocation{JTI: jti, Expires: time.Unix(0, expires).UTC(), Revoked: time.Unix(0, revoked).UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
