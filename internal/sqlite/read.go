package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

const columns = `jti, profile, kid, alg, xid, phone, subject, issued, expires, revoked, client_ip, token_sha256, token`

func scan(sc interface{ Scan(...any) error }) (record.Record, error) {
	var r record.Record
	var issued, expires int64
	var revoked sql.NullInt64
	var sum any
	err := sc.Scan(&r.JTI, &r.Profile, &r.Kid, &r.Alg, &r.XID, &r.Phone, &r.Subject,
		&issued, &expires, &revoked, &r.ClientIP, &sum, &r.TokenText)
	r.TokenSHA256 = hashText(sum)
	r.Issued, r.Expires = time.Unix(0, issued).UTC(), time.Unix(0, expires).UTC()
	if revoked.Valid {
		r.Revoked = time.Unix(0, revoked.Int64).UTC()
	}
	return r, err
}

// hashText reads back what hashValue stored: a SHA-256 stored as its
// bytes in hex, anything else (or a hash written as hex by an older jwtd)
// as the text it is.
func hashText(v any) string {
	switch h := v.(type) {
	case []byte:
		return hex.EncodeToString(h)
	case string:
		return h
	}
	return ""
}

// ByJTI returns the record of one token.
func (s *Store) ByJTI(ctx context.Context, jti string) (*record.Record, error) {
	r, err := scan(s.byJTIStmt.QueryRowContext(ctx, jti))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, record.ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return &r, nil
}

// ByXID returns a transaction's records, newest first.
func (s *Store) ByXID(ctx context.Context, xid string) ([]record.Record, error) {
	rows, err := s.byXIDStmt.QueryContext(ctx, xid)
	return collect(rows, err)
}

// ByPhone returns a page of a phone number's records, newest first.
func (s *Store) ByPhone(ctx context.Context, phone string, limit int, cursor string) (record.Page, error) {
	c, ok, err := record.DecodeCursor(cursor)
	if err != nil {
		return record.Page{}, err
	}
	q := `SELECT ` + columns + ` FROM tokens WHERE phone = ? AND phone != ''`
	args := []any{phone}
	if ok {
		q += ` AND (issued < ? OR (issued = ? AND jti < ?))`
		args = append(args, c.Issued.UnixNano(), c.Issued.UnixNano(), c.JTI)
	}
	q += ` ORDER BY issued DESC, jti DESC LIMIT ?`
	args = append(args, limit+1)
	recs, err := s.query(ctx, q, args...)
	if err != nil {
		return record.Page{}, err
	}
	return record.NewPage(recs, limit), nil
}

func (s *Store) query(ctx context.Context, q string, args ...any) ([]record.Record, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	return collect(rows, err)
}

func collect(rows *sql.Rows, err error) ([]record.Record, error) { return collectWith(rows, err, scan) }

// collectWith reads every row of a query's answer with scan.
func collectWith[T any](rows *sql.Rows, err error, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, unavailable(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
