package mongo

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/jwtd/jwtd/internal/record"
)

// RevokeJTI marks one token revoked.
func (s *Store) RevokeJTI(ctx context.Context, jti string, at time.Time) (int, error) {
	return s.revoke(ctx, bson.D{{Key: "_id", Value: jti}, {Key: "revoked", Value: int64(0)}}, at)
}

// RevokeXID closes a transaction, then marks every token of it revoked:
// a commit that inserted a token meanwhile finds it closed
// (refuseClosed). The closing is a document of its own, inserted once,
// kept a day past the transaction's latest expiry and purged with it.
func (s *Store) RevokeXID(ctx context.Context, xid string, at time.Time) (int, error) {
	if xid == "" {
		return 0, nil
	}
	var claim struct {
		Expires time.Time `bson:"expires"`
	}
	err := s.xids.FindOne(ctx, bson.D{{Key: "_id", Value: xid}}).Decode(&claim)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return 0, nil // no token was issued for it
	case err != nil:
		return 0, translate(err)
	}
	doc := bson.D{{Key: "_id", Value: xid}, {Key: "closed", Value: at.UnixNano()}, {Key: "expires", Value: claim.Expires.Add(closedMargin)}}
	if _, err := s.closed.InsertOne(ctx, doc); err != nil && !mongo.IsDuplicateKeyError(err) {
		return 0, translate(err)
	}
	return s.revoke(ctx, bson.D{{Key: "xid", Value: xid}, {Key: "revoked", Value: int64(0)}}, at)
}

// closedMargin is how long past the latest expiry of its tokens a
// transaction's closing is kept: beyond any token a racing commit inserted
// (and revoked) as it closed.
const closedMargin = 24 * time.Hour

// ClosedAt says when a transaction was closed by its revocation; the zero
// time while it is open.
func (s *Store) ClosedAt(ctx context.Context, xid string) (time.Time, error) {
	var doc struct {
		Closed int64 `bson:"closed"`
	}
	err := s.closed.FindOne(ctx, bson.D{{Key: "_id", Value: xid}}).Decode(&doc)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, translate(err)
	}
	return time.Unix(0, doc.Closed).UTC(), nil
}

func (s *Store) revoke(ctx context.Context, filter bson.D, at time.Time) (int, error) {
	res, err := s.tokens.UpdateMany(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "revoked", Value: at.UnixNano()}}}})
	if err != nil {
		return 0, translate(err)
	}
	return int(res.ModifiedCount), nil
}

// Revocations returns the revocations made at or after since of tokens
// that expire after liveAt, oldest first.
func (s *Store) Revocations(ctx context.Context, since, liveAt time.Time) ([]record.Revocation, error) {
	from := int64(1) // 0 is "not revoked"
	if !since.IsZero() {
		from = max(since.UnixNano(), 1)
	}
	filter := bson.D{
		{Key: "revoked", Value: bson.D{{Key: "$gte", Value: from}}},
		{Key: "expires", Value: bson.D{{Key: "$gt", Value: liveAt}}},
	}
	cur, err := s.tokens.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "revoked", Value: 1}}).
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "expires", Value: 1}, {Key: "revoked", Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	defer cur.Close(ctx)
	var out []record.Revocation
	for cur.Next(ctx) {
		var t token
		if err := cur.Decode(&t); err != nil {
			return nil, translate(err)
		}
		out = append(out, record.Revocation{JTI: t.JTI, Expires: t.Expires.UTC(), Revoked: time.Unix(0, t.Revoked).UTC()})
	}
	if err := cur.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}
