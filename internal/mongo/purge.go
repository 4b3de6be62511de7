package mongo

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Purge deletes records (and XID claims) that expired before the given time.
func (s *Store) Purge(ctx context.Context, expiredBefore time.Time) (int, error) {
	// A deadline of its own: the client's operation timeout (store.timeout)
	// is for requests, and a purge of a long backlog takes longer.
	ctx, cancel := context.WithTimeout(ctx, purgeTimeout)
	defer cancel()
	filter := bson.D{{Key: "expires", Value: bson.D{{Key: "$lt", Value: expiredBefore}}}}
	res, err := s.tokens.DeleteMany(ctx, filter)
	if err != nil {
		return 0, translate(err)
	}
	// An XID's claim, and the outcomes it holds, expire with the last
	// token of its transaction (a TTL index may have taken the tokens
	// already).
	if _, err := s.xids.DeleteMany(ctx, filter); err != nil {
		return int(res.DeletedCount), translate(err)
	}
	if _, err := s.closed.DeleteMany(ctx, filter); err != nil {
		return int(res.DeletedCount), translate(err)
	}
	return int(res.DeletedCount), nil
}

// purgeTimeout bounds one purge.
const purgeTimeout = 10 * time.Minute
