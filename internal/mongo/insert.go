package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/jwtd/jwtd/internal/record"
)

// Insert queues the record for the next group commit and waits until the
// server has acknowledged it with write concern majority, journaled.
func (s *Store) Insert(ctx context.Context, r *record.Record) error { return s.group.Insert(ctx, r) }

// commit claims the batch's XIDs, inserts the records that may go in,
// then the audit entries of those written.
func (s *Store) commit(batch []*record.Record) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	results, err := s.insertRecords(ctx, batch)
	if err != nil {
		return nil, err
	}
	s.insertEntries(ctx, batch, results)
	return results, nil
}

func (s *Store) insertRecords(ctx context.Context, batch []*record.Record) ([]error, error) {
	results := make([]error, len(batch))
	var b [8]byte
	_, _ = rand.Read(b[:])
	batchID := hex.EncodeToString(b[:]) // marks the claims this batch touched last
	owners, claimed, err := s.claimXIDs(ctx, batch, batchID)
	if err != nil {
		return nil, err
	}
	docs := make([]any, 0, len(batch))
	index := make([]int, 0, len(batch)) // docs[i] is batch[index[i]]
	for i, r := range batch {
		if r.XID != "" && owners[r.XID] != r.Phone {
			results[i] = record.ErrXIDConflict
			continue
		}
		docs = append(docs, fromRecord(r))
		index = append(index, i)
	}
	if len(docs) == 0 {
		return results, nil
	}
	_, err = s.tokens.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err == nil {
		return results, s.refuseClosed(ctx, batch, results)
	}
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil {
		duplicates := true
		for _, we := range bwe.WriteErrors {
			duplicates = duplicates && we.Code == 11000 && we.Index >= 0 && we.Index < len(index)
		}
		if duplicates {
			for _, we := range bwe.WriteErrors {
				results[index[we.Index]] = record.ErrDuplicate
			}
			return results, s.refuseClosed(ctx, batch, results)
		}
	}
	if !mongo.IsNetworkError(err) && !mongo.IsTimeout(err) && !errors.Is(err, context.Canceled) {
		// The insert failed: give back the XIDs this batch bound and no
		// token holds, as SQLite's rollback does. When the outcome is
		// unknown the claims stay: the tokens may be in.
		s.releaseXIDs(ctx, claimed, owners, batchID)
	}
	return nil, translate(err)
}

// refuseClosed refuses the records just inserted under a closed
// transaction, and marks them revoked. RevokeXID closes the transaction
// before it marks its tokens, so a record is either marked by it or found
// here: none of a closed transaction is handed out active.
func (s *Store) refuseClosed(ctx context.Context, batch []*record.Record, results []error) error {
	var xids []string
	for i, r := range batch {
		if results[i] == nil && r.XID != "" && !slices.Contains(xids, r.XID) {
			xids = append(xids, r.XID)
		}
	}
	if len(xids) == 0 {
		return nil
	}
	cur, err := s.closed.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: xids}}}})
	if err != nil {
		return translate(err)
	}
	var docs []struct {
		XID    string `bson:"_id"`
		Closed int64  `bson:"closed"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return translate(err)
	}
	for _, d := range docs {
		var jtis []string
		for i, r := range batch {
			if results[i] == nil && r.XID == d.XID {
				jtis = append(jtis, r.JTI)
				results[i] = record.ErrXIDClosed
			}
		}
		if _, err := s.revoke(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: jtis}}}, {Key: "revoked", Value: int64(0)}}, time.Unix(0, d.Closed)); err != nil {
			return err
		}
	}
	return nil
}

// releaseXIDs removes the claims this batch made, unless another batch
// (of this instance or another) claimed the XID since: every claim marks
// the document with its batch, and only a claim still marked with this
// one goes. A token another batch inserted under one of them before its
// mark is looked for after the release, and its phone claims the XID
// again. Errors are left: a claim that stays binds an XID to a phone that
// may simply ask again.
func (s *Store) releaseXIDs(ctx context.Context, xids []string, owners map[string]string, batchID string) {
	for _, xid := range xids {
		if _, err := s.xids.DeleteOne(ctx, bson.D{{Key: "_id", Value: xid}, {Key: "phone", Value: owners[xid]}, {Key: "batch", Value: batchID}}); err != nil {
			return
		}
		var tok token
		err := s.tokens.FindOne(ctx, bson.D{{Key: "xid", Value: xid}}).Decode(&tok)
		if err != nil {
			continue // mongo.ErrNoDocuments: released
		}
		_, _ = s.xids.UpdateOne(ctx, bson.D{{Key: "_id", Value: xid}},
			bson.D{
				{Key: "$setOnInsert", Value: bson.D{{Key: "phone", Value: tok.Phone}}},
				{Key: "$max", Value: bson.D{{Key: "expires", Value: tok.Expires}}},
			}, options.UpdateOne().SetUpsert(true))
	}
}

// claimXIDs binds each XID of the batch to the phone of its first record
// and returns every XID's owner and the XIDs it newly bound. The claim is an upsert on the XID that sets
// the phone only when it inserts, so the first claim wins, atomically on the
// server and across instances. One round trip claims the whole batch; the
// owner of an XID that already existed (a re-issue, or a conflict) costs a
// read, new XIDs none. Filters are on _id alone, which every
// MongoDB-protocol server serves from its primary key.
func (s *Store) claimXIDs(ctx context.Context, batch []*record.Record, batchID string) (owners map[string]string, claimed []string, err error) {
	owners = map[string]string{}
	expires := map[string]time.Time{}
	var order []string
	for _, r := range batch {
		if r.XID == "" {
			continue
		}
		if _, ok := owners[r.XID]; !ok {
			owners[r.XID] = r.Phone
			order = append(order, r.XID)
		}
		if r.Expires.After(expires[r.XID]) {
			expires[r.XID] = r.Expires
		}
	}
	if len(order) == 0 {
		return owners, nil, nil
	}
	models := make([]mongo.WriteModel, 0, len(order))
	for _, xid := range order {
		models = append(models, mongo.NewUpdateOneModel().
			SetFilter(bson.D{{Key: "_id", Value: xid}}).
			SetUpdate(bson.D{
				{Key: "$setOnInsert", Value: bson.D{{Key: "phone", Value: owners[xid]}}},
				{Key: "$max", Value: bson.D{{Key: "expires", Value: expires[xid]}}},
				{Key: "$set", Value: bson.D{{Key: "batch", Value: batchID}}},
			}).
			SetUpsert(true))
	}
	res, err := s.xids.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	var bwe mongo.BulkWriteException
	if err != nil && (!errors.As(err, &bwe) || bwe.WriteConcernError != nil) {
		return nil, nil, translate(err)
	}
	for _, we := range bwe.WriteErrors {
		// A duplicate key is two claims racing for a new XID; the read
		// below finds the winner. Anything else fails the batch.
		if we.Code != 11000 {
			return nil, nil, translate(err)
		}
	}
	for i, xid := range order {
		if res != nil {
			if _, inserted := res.UpsertedIDs[int64(i)]; inserted {
				claimed = append(claimed, xid)
				continue // ours: the phone we set
			}
		}
		var doc struct {
			Phone string `bson:"phone"`
		}
		if err := s.xids.FindOne(ctx, bson.D{{Key: "_id", Value: xid}}).Decode(&doc); err != nil {
			return nil, nil, translate(err)
		}
		owners[xid] = doc.Phone
	}
	return owners, claimed, nil
}
