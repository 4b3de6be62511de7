package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/record"
)

var _ audit.Store = (*Store)(nil)

// auditDoc is an audit entry as stored, under an _id of its chain and
// sequence number: the unique _id decides which of two writers of one
// chain writes a sequence number. Time is Unix nanoseconds, as hashed.
type auditDoc struct {
	ID        string `bson:"_id"`
	Chain     string `bson:"chain"`
	Seq       int64  `bson:"seq"`
	Time      int64  `bson:"time"`
	Instance  string `bson:"instance"`
	Actor     string `bson:"actor"`
	Action    string `bson:"action"`
	Target    string `bson:"target"`
	Result    string `bson:"result"`
	RequestID string `bson:"request_id"`
	ClientIP  string `bson:"client_ip"`
	Detail    string `bson:"detail"`
	Prev      string `bson:"prev"`
	Hash      string `bson:"hash"`
}

func auditID(chain string, seq int64) string { return fmt.Sprintf("%s/%020d", chain, seq) }

func (d *auditDoc) entry() audit.Entry {
	return audit.Entry{Chain: d.Chain, Seq: d.Seq, Time: time.Unix(0, d.Time).UTC(), Instance: d.Instance, Actor: d.Actor,
		Action: d.Action, Target: d.Target, Result: d.Result, RequestID: d.RequestID, ClientIP: d.ClientIP,
		Detail: d.Detail, Prev: d.Prev, Hash: d.Hash}
}

// AppendAudit links entries after the chain's head and inserts them in
// order (appendLinked).
func (s *Store) AppendAudit(ctx context.Context, entries []audit.Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	return s.appendLinked(ctx, entries[0].Chain, len(entries), func(i int) *audit.Entry { return &entries[i] })
}

// appendLinked links n entries of chain (entry(i) is the i-th) after the
// head the store holds and inserts them in order; when another writer of
// the chain took a sequence number first (the unique _id), the head is
// read again and the rest linked after it. It returns how many it wrote:
// all, or those before an error (ErrConflict after 100 attempts).
func (s *Store) appendLinked(ctx context.Context, chain string, n int, entry func(i int) *audit.Entry) (int, error) {
	done := 0
	for attempt := 0; done < n; attempt++ {
		head, err := s.AuditHead(ctx, chain)
		if err != nil {
			return done, err
		}
		for i := done; i < n; i++ {
			entry(i).Link(chain, head)
			head = *entry(i)
		}
		written, err := s.insertAudit(ctx, n-done, func(i int) *audit.Entry { return entry(done + i) })
		done += written
		if err != nil && (!errors.Is(err, audit.ErrConflict) || attempt >= 100) {
			return done, err
		}
	}
	return done, nil
}

// insertAudit inserts n entries in order (entry(i) is the i-th), and
// returns how many it wrote: all, or the ones before a sequence number
// another writer took (ErrConflict).
func (s *Store) insertAudit(ctx context.Context, n int, entry func(i int) *audit.Entry) (int, error) {
	docs := make([]any, n)
	for i := range docs {
		e := entry(i)
		docs[i] = auditDoc{ID: auditID(e.Chain, e.Seq), Chain: e.Chain, Seq: e.Seq, Time: e.Time.UnixNano(), Instance: e.Instance,
			Actor: e.Actor, Action: e.Action, Target: e.Target, Result: e.Result, RequestID: e.RequestID,
			ClientIP: e.ClientIP, Detail: e.Detail, Prev: e.Prev, Hash: e.Hash}
	}
	_, err := s.audit.InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	if err == nil {
		return n, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 && bwe.WriteErrors[0].Code == 11000 {
		return bwe.WriteErrors[0].Index, audit.ErrConflict
	}
	if mongo.IsDuplicateKeyError(err) {
		return 0, audit.ErrConflict
	}
	return 0, translate(err)
}

// insertEntries writes the audit entries of the batch's records written
// (results[i] nil), each chain's in batch order, linked after the head
// the store holds: when another writer of the chain (a process sharing
// its name) took a sequence number first, the head is read again and the
// rest linked after it. Entries not written make their records' results
// wrap audit.ErrNotWritten: the records stay written.
func (s *Store) insertEntries(ctx context.Context, batch []*record.Record, results []error) {
	chains := map[string][]int{} // indexes into batch, by chain
	var order []string
	for i, r := range batch {
		if r.Audit == nil || results[i] != nil {
			continue
		}
		if _, ok := chains[r.Audit.Chain]; !ok {
			order = append(order, r.Audit.Chain)
		}
		chains[r.Audit.Chain] = append(chains[r.Audit.Chain], i)
	}
	for _, chain := range order {
		idx := chains[chain]
		done, err := s.appendLinked(ctx, chain, len(idx), func(k int) *audit.Entry { return batch[idx[k]].Audit })
		for _, i := range idx[done:] {
			results[i] = fmt.Errorf("%w: %w", audit.ErrNotWritten, err)
		}
	}
}

// AuditHead returns a chain's last entry.
func (s *Store) AuditHead(ctx context.Context, chain string) (audit.Entry, error) {
	var d auditDoc
	err := s.audit.FindOne(ctx, bson.D{{Key: "chain", Value: chain}}, options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return audit.Entry{}, nil
	}
	if err != nil {
		return audit.Entry{}, translate(err)
	}
	return d.entry(), nil
}

// AuditChains names every chain.
func (s *Store) AuditChains(ctx context.Context) ([]string, error) {
	// An aggregation, not distinct: FerretDB's distinct refuses the
	// driver's maxTimeMS.
	cur, err := s.audit.Aggregate(ctx, mongo.Pipeline{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$chain"}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	})
	if err != nil {
		return nil, translate(err)
	}
	var docs []struct {
		Chain string `bson:"_id"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Chain
	}
	return out, nil
}

// AuditList answers q.
func (s *Store) AuditList(ctx context.Context, q audit.Query) ([]audit.Entry, error) {
	filter := bson.D{}
	for _, f := range []struct{ key, v string }{{"chain", q.Chain}, {"actor", q.Actor}, {"action", q.Action}} {
		if f.v != "" {
			filter = append(filter, bson.E{Key: f.key, Value: f.v})
		}
	}
	if q.Target != "" {
		// The target itself, or one that starts with it and a space; in
		// an $and, beside the cursor's $or.
		from, below := audit.TargetRange(q.Target)
		filter = append(filter, bson.E{Key: "$and", Value: bson.A{bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "target", Value: q.Target}},
			bson.D{{Key: "target", Value: bson.D{{Key: "$gte", Value: from}, {Key: "$lt", Value: below}}}},
		}}}}})
	}
	tr := bson.D{}
	if !q.Since.IsZero() {
		tr = append(tr, bson.E{Key: "$gte", Value: q.Since.UnixNano()})
	}
	if !q.Until.IsZero() {
		tr = append(tr, bson.E{Key: "$lt", Value: q.Until.UnixNano()})
	}
	if len(tr) > 0 {
		filter = append(filter, bson.E{Key: "time", Value: tr})
	}
	var sort bson.D
	switch q.Order {
	case audit.BySeq:
		if q.Chain == "" {
			return nil, errors.New("a listing by sequence number names its chain")
		}
		filter = append(filter, bson.E{Key: "seq", Value: bson.D{{Key: "$gt", Value: q.AfterSeq}}})
		sort = bson.D{{Key: "seq", Value: 1}}
	case audit.Newest, audit.Oldest:
		c, ok, err := audit.DecodeCursor(q.After)
		if err != nil {
			return nil, err
		}
		op, dir := "$gt", 1
		if q.Order == audit.Newest {
			op, dir = "$lt", -1
		}
		if ok {
			n := c.Time.UnixNano()
			filter = append(filter, bson.E{Key: "$or", Value: bson.A{
				bson.D{{Key: "time", Value: bson.D{{Key: op, Value: n}}}},
				bson.D{{Key: "time", Value: n}, {Key: "chain", Value: bson.D{{Key: op, Value: c.Chain}}}},
				bson.D{{Key: "time", Value: n}, {Key: "chain", Value: c.Chain}, {Key: "seq", Value: bson.D{{Key: op, Value: c.Seq}}}},
			}})
		}
		sort = bson.D{{Key: "time", Value: dir}, {Key: "chain", Value: dir}, {Key: "seq", Value: dir}}
	}
	opts := options.Find().SetSort(sort)
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := s.audit.Find(ctx, filter, opts)
	if err != nil {
		return nil, translate(err)
	}
	var docs []auditDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	out := make([]audit.Entry, len(docs))
	for i := range docs {
		out[i] = docs[i].entry()
	}
	return out, nil
}

// PurgeAudit deletes up to limit entries of chain below beforeSeq: the
// sequence numbers of the oldest limit, read first, then deleted.
func (s *Store) PurgeAudit(ctx context.Context, chain string, beforeSeq int64, limit int) (int, error) {
	cur, err := s.audit.Find(ctx, bson.D{{Key: "chain", Value: chain}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: beforeSeq}}}},
		options.Find().SetSort(bson.D{{Key: "seq", Value: 1}}).SetLimit(int64(limit)).SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return 0, translate(err)
	}
	var ids []struct {
		ID string `bson:"_id"`
	}
	if err := cur.All(ctx, &ids); err != nil {
		return 0, translate(err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in := make(bson.A, len(ids))
	for i, d := range ids {
		in[i] = d.ID
	}
	res, err := s.audit.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: in}}}})
	if err != nil {
		return 0, translate(err)
	}
	return int(res.DeletedCount), nil
}
