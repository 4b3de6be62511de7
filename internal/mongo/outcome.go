package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/jwtd/jwtd/internal/record"
)

// outcome is an Outcome as its XID's claim document holds it; times are
// Unix nanoseconds, as tokens' issue times are, so that they come back
// exactly.
type outcome struct {
	Status      string `bson:"status"`
	Code        int    `bson:"code"`
	Description string `bson:"description"`
	UpdatedOn   int64  `bson:"updated_on"`
	Source      string `bson:"source"`
	Recorded    int64  `bson:"recorded"`
}

// AddOutcome appends an outcome to the claim document of its XID, which
// exists while any record of the transaction does: one atomic update, so
// that an outcome can neither outlive its transaction's purge nor be
// recorded for an XID jwtd never issued.
func (s *Store) AddOutcome(ctx context.Context, o *record.Outcome) error {
	if o.XID == "" {
		return record.ErrNotFound
	}
	doc := outcome{Status: string(o.Status), Code: o.Code, Description: o.Description,
		UpdatedOn: o.UpdatedOn.UnixNano(), Source: o.Source, Recorded: o.Recorded.UnixNano()}
	res, err := s.xids.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: o.XID}, {Key: fmt.Sprintf("outcomes.%d", record.MaxOutcomes-1), Value: bson.D{{Key: "$exists", Value: false}}}},
		bson.D{{Key: "$push", Value: bson.D{{Key: "outcomes", Value: doc}}}})
	switch {
	case err != nil:
		return translate(err)
	case res.MatchedCount == 1:
		return nil
	}
	// No claim, or one with MaxOutcomes already: say which.
	n, err := s.xids.CountDocuments(ctx, bson.D{{Key: "_id", Value: o.XID}})
	switch {
	case err != nil:
		return translate(err)
	case n == 0:
		return record.ErrNotFound
	}
	return record.ErrTooManyOutcomes
}

// Outcomes returns a transaction's outcomes, newest first.
func (s *Store) Outcomes(ctx context.Context, xid string) ([]record.Outcome, error) {
	var claim struct {
		Outcomes []outcome `bson:"outcomes"`
	}
	err := s.xids.FindOne(ctx, bson.D{{Key: "_id", Value: xid}}).Decode(&claim)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return nil, nil
	case err != nil:
		return nil, translate(err)
	}
	out := make([]record.Outcome, len(claim.Outcomes))
	for i, d := range claim.Outcomes {
		out[i] = record.Outcome{XID: xid, Status: record.OutcomeStatus(d.Status), Code: d.Code, Description: d.Description,
			UpdatedOn: time.Unix(0, d.UpdatedOn).UTC(), Source: d.Source, Recorded: time.Unix(0, d.Recorded).UTC()}
	}
	record.SortOutcomes(out)
	return out, nil
}
