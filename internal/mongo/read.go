package mongo

import (
	"context"
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/jwtd/jwtd/internal/record"
)

// ByJTI returns the record of one token.
func (s *Store) ByJTI(ctx context.Context, jti string) (*record.Record, error) {
	var t token
	err := s.tokens.FindOne(ctx, bson.D{{Key: "_id", Value: jti}}).Decode(&t)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, record.ErrNotFound
	}
	if err != nil {
		return nil, translate(err)
	}
	r := t.record()
	return &r, nil
}

var newestFirst = bson.D{{Key: "issued", Value: -1}, {Key: "_id", Value: -1}}

// ByXID returns a transaction's records, newest first.
func (s *Store) ByXID(ctx context.Context, xid string) ([]record.Record, error) {
	if xid == "" {
		return nil, nil
	}
	return s.find(ctx, bson.D{{Key: "xid", Value: xid}}, 1000)
}

// ByPhone returns a page of a phone number's records, newest first.
func (s *Store) ByPhone(ctx context.Context, phone string, limit int, cursor string) (record.Page, error) {
	c, ok, err := record.DecodeCursor(cursor)
	if err != nil {
		return record.Page{}, err
	}
	if phone == "" {
		return record.Page{}, nil
	}
	filter := bson.D{{Key: "phone", Value: phone}}
	if ok {
		n := c.Issued.UnixNano()
		filter = append(filter, bson.E{Key: "$or", Value: bson.A{
			bson.D{{Key: "issued", Value: bson.D{{Key: "$lt", Value: n}}}},
			bson.D{{Key: "issued", Value: n}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: c.JTI}}}},
		}})
	}
	recs, err := s.find(ctx, filter, limit+1)
	if err != nil {
		return record.Page{}, err
	}
	return record.NewPage(recs, limit), nil
}

func (s *Store) find(ctx context.Context, filter bson.D, limit int) ([]record.Record, error) {
	cur, err := s.tokens.Find(ctx, filter, options.Find().SetSort(newestFirst).SetLimit(int64(limit)))
	if err != nil {
		return nil, translate(err)
	}
	var docs []token
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	out := make([]record.Record, len(docs))
	for i := range docs {
		out[i] = docs[i].record()
	}
	return out, nil
}
