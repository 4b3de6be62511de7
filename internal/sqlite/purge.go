package sqlite

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// purgeChunk is how many records one purge transaction deletes: the group
// committer waits for the one write connection meanwhile, so a chunk's
// time is added to the slowest commits' (a thousand rows held them up some
// 50 ms under load in make soak; two hundred, 12 to 17 ms).
const purgeChunk = 200

// Purge deletes records that expired before the given time, purgeChunk per
// transaction so that inserts are never held up for long, and with them
// the outcomes of the transactions left without records.
func (s *Store) Purge(ctx context.Context, expiredBefore time.Time) (int, error) {
	total := 0
	for {
		n, err := s.purgeSome(ctx, expiredBefore)
		total += n
		if err != nil || n < purgeChunk {
			return total, err
		}
	}
}

func (s *Store) purgeSome(ctx context.Context, expiredBefore time.Time) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `DELETE FROM tokens WHERE rowid IN
		(SELECT rowid FROM tokens WHERE expires < ? LIMIT ?) RETURNING xid`, expiredBefore.UnixNano(), purgeChunk)
	if err != nil {
		return 0, unavailable(err)
	}
	n, xids := 0, map[string]bool{}
	for rows.Next() {
		var xid string
		if err := rows.Scan(&xid); err != nil {
			rows.Close()
			return 0, unavailable(err)
		}
		n++
		if xid != "" {
			xids[xid] = true
		}
	}
	if err := rows.Close(); err != nil {
		return 0, unavailable(err)
	}
	if len(xids) > 0 {
		list, _ := json.Marshal(slices.Collect(maps.Keys(xids)))
		for _, table := range []string{"outcomes", "closed_xids"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE xid IN (SELECT value FROM json_each(?))
				AND NOT EXISTS (SELECT 1 FROM tokens WHERE tokens.xid = `+table+`.xid)`, string(list)); err != nil {
				return 0, unavailable(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}
