// Package mongo is jwtd's MongoDB record store (go.mongodb.org/mongo-driver/v2),
// for running several jwtd instances on one distributed database. Inserts go
// through the same group committer as the embedded store; the XID-to-phone
// binding is a document per XID, claimed atomically by an upsert, so that two
// instances cannot bind one XID to two phones.
package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/record"
)

var _ record.Store = (*Store)(nil)

// Options tune the store. The zero value is usable.
type Options struct {
	// The group committer: batch, linger, bounds, observer. Its Timeout
	// also bounds every operation on the server (the driver's
	// client-side operation timeout), so that a server that stops
	// answering holds no request for longer.
	record.GroupOptions
	Retention time.Duration // the TTL index's expireAfterSeconds, where the server has TTL indexes
}

// Store is a record.Store over a MongoDB database.
type Store struct {
	client *mongo.Client
	tokens *mongo.Collection
	xids   *mongo.Collection
	// managed keys: a document per keyring version (see keyringDoc)
	keyrings *mongo.Collection
	// the key history: a document per fingerprint
	keyHistory *mongo.Collection
	// closed transactions: a document per XID, inserted once (updates of
	// one document are not atomic on every MongoDB-protocol server)
	closed  *mongo.Collection
	audit   *mongo.Collection // audit entries: a document per chain and sequence number
	timeout time.Duration     // of a commit
	group   *record.GroupCommitter
	ttl     bool
}

// token is a record as stored. Times that order or compare exactly are Unix
// nanoseconds; expires is a BSON date, which the TTL index needs.
type token struct {
	JTI         string    `bson:"_id"`
	Profile     string    `bson:"profile"`
	Kid         string    `bson:"kid"`
	Alg         string    `bson:"alg"`
	XID         string    `bson:"xid"`
	Phone       string    `bson:"phone"`
	Subject     string    `bson:"sub"`
	Issued      int64     `bson:"issued"`
	Expires     time.Time `bson:"expires"`
	Revoked     int64     `bson:"revoked"` // 0: not revoked
	ClientIP    string    `bson:"client_ip"`
	TokenSHA256 string    `bson:"token_sha256"`
	TokenText   string    `bson:"token,omitempty"`
}

func fromRecord(r *record.Record) token {
	t := token{
		JTI: r.JTI, Profile: r.Profile, Kid: r.Kid, Alg: r.Alg, XID: r.XID, Phone: r.Phone, Subject: r.Subject,
		Issued: r.Issued.UnixNano(), Expires: r.Expires, ClientIP: r.ClientIP, TokenSHA256: r.TokenSHA256, TokenText: r.TokenText,
	}
	if !r.Revoked.IsZero() {
		t.Revoked = r.Revoked.UnixNano()
	}
	return t
}

func (t *token) record() record.Record {
	r := record.Record{
		JTI: t.JTI, Profile: t.Profile, Kid: t.Kid, Alg: t.Alg, XID: t.XID, Phone: t.Phone, Subject: t.Subject,
		Issued: time.Unix(0, t.Issued).UTC(), Expires: t.Expires.UTC(), ClientIP: t.ClientIP,
		TokenSHA256: t.TokenSHA256, TokenText: t.TokenText,
	}
	if t.Revoked != 0 {
		r.Revoked = time.Unix(0, t.Revoked).UTC()
	}
	return r
}

// Open connects to the database named by uri's path (default "jwtd") and
// makes the indexes. It fails if the server does not answer within ctx.
func Open(ctx context.Context, uri string, opts Options) (*Store, error) {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		return nil, fmt.Errorf("store url is not mongodb://host/db")
	}
	dbName := strings.TrimPrefix(u.Path, "/")
	if dbName == "" {
		dbName = "jwtd"
	}
	opts.GroupOptions = opts.WithDefaults()
	journal := true
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(opts.Timeout).
		SetWriteConcern(&writeconcern.WriteConcern{W: "majority", Journal: &journal}))
	if err != nil {
		return nil, fmt.Errorf("%w: mongodb: %v", record.ErrUnavailable, err)
	}
	db := client.Database(dbName)
	s := &Store{client: client, tokens: db.Collection("tokens"), xids: db.Collection("xids"), keyrings: db.Collection("keyrings"),
		keyHistory: db.Collection("key_history"), closed: db.Collection("closed_xids"), audit: db.Collection("audit"), timeout: opts.Timeout}
	if err := s.ensureIndexes(ctx, opts.Retention); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	s.group = record.NewGroupCommitter(s.commit, opts.GroupOptions)
	return s, nil
}

// codeNotImplemented is what FerretDB answers for TTL indexes.
const codeNotImplemented = 238

func (s *Store) ensureIndexes(ctx context.Context, retention time.Duration) error {
	// One at a time: FerretDB 1.24 drops the connection when one
	// createIndexes names several indexes that all exist already.
	for _, keys := range []bson.D{
		{{Key: "xid", Value: 1}, {Key: "issued", Value: -1}, {Key: "_id", Value: -1}},
		{{Key: "phone", Value: 1}, {Key: "issued", Value: -1}, {Key: "_id", Value: -1}},
		{{Key: "revoked", Value: 1}},
	} {
		if _, err := s.tokens.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys}); err != nil {
			return translate(err)
		}
	}
	// Retention by TTL index where the server has them; jwtd's periodic
	// purge does the same work everywhere, so the TTL index only saves it.
	ttl := mongo.IndexModel{Keys: bson.D{{Key: "expires", Value: 1}},
		Options: options.Index().SetExpireAfterSeconds(int32(min(retention/time.Second, 1<<31-1)))}
	if _, err := s.tokens.Indexes().CreateOne(ctx, ttl); err == nil {
		s.ttl = true
	} else if isServerError(err, codeNotImplemented) || isServerError(err, 85) || isServerError(err, 86) {
		// Not implemented (FerretDB), or an index on expires with other
		// options exists: keep a plain index for the purge.
		if _, err := s.tokens.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "expires", Value: 1}}}); err != nil &&
			!isServerError(err, 85) && !isServerError(err, 86) {
			return translate(err)
		}
	} else {
		return translate(err)
	}
	if _, err := s.xids.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "expires", Value: 1}}}); err != nil {
		return translate(err)
	}
	if _, err := s.keyrings.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "profile", Value: 1}, {Key: "version", Value: -1}}}); err != nil {
		return translate(err)
	}
	for _, keys := range []bson.D{
		{{Key: "chain", Value: 1}, {Key: "seq", Value: 1}},
		{{Key: "time", Value: 1}, {Key: "chain", Value: 1}, {Key: "seq", Value: 1}},
		{{Key: "actor", Value: 1}, {Key: "time", Value: 1}},
		{{Key: "target", Value: 1}, {Key: "time", Value: 1}},
	} {
		if _, err := s.audit.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: keys}); err != nil {
			return translate(err)
		}
	}
	return nil
}

// TTLIndex reports whether the server expires records by itself.
func (s *Store) TTLIndex() bool { return s.ttl }

// Stats returns how many batches and records have been committed.
func (s *Store) Stats() (commits, records uint64) { return s.group.Stats() }

// Insert queues the record for the next group commit and waits until the
// server has acknowledged it with write concern majority, journaled.
func (s *Store) Insert(ctx context.Context, r *record.Record) error { return s.group.Insert(ctx, r) }

// commit claims the batch's XIDs, then inserts the records that may go in.
func (s *Store) commit(batch []*record.Record) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
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

// keyringDoc is one version of a keyring. Versions are documents of their
// own, with the profile and version in the _id: the unique _id decides
// which of two instances that read one version writes the next, which
// needs no atomic read-modify-write from the server (FerretDB's updates
// filtered on a version are not). Older versions are deleted after. The
// keys are stored as keys.ManagedKey is, under its fields' lower-cased
// names.
type keyringDoc struct {
	ID      string            `bson:"_id"`
	Profile string            `bson:"profile"`
	Version int64             `bson:"version"`
	Keys    []keys.ManagedKey `bson:"keys"`
}

func keyringID(profile string, version int64) string {
	return fmt.Sprintf("%s/%020d", profile, version)
}

func (d keyringDoc) ring() keys.Keyring {
	for i := range d.Keys {
		k := &d.Keys[i]
		k.Created, k.Activates, k.Retires, k.Deletes = k.Created.UTC(), utcOrZero(k.Activates), utcOrZero(k.Retires), utcOrZero(k.Deletes)
	}
	return keys.Keyring{Profile: d.Profile, Version: d.Version, Keys: d.Keys}
}

// utcOrZero gives back the zero time a BSON date cannot hold (it comes
// back as year 1 in UTC, not Go's zero Time).
func utcOrZero(t time.Time) time.Time {
	if t.Year() <= 1 {
		return time.Time{}
	}
	return t.UTC()
}

// Keyring returns a profile's keyring, its latest version; Version 0 when
// none is stored.
func (s *Store) Keyring(ctx context.Context, profile string) (keys.Keyring, error) {
	var d keyringDoc
	err := s.keyrings.FindOne(ctx, bson.D{{Key: "profile", Value: profile}},
		options.FindOne().SetSort(bson.D{{Key: "version", Value: -1}})).Decode(&d)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
		return keys.Keyring{Profile: profile}, nil
	case err != nil:
		return keys.Keyring{Profile: profile}, translate(err)
	}
	return d.ring(), nil
}

// PutKeyring stores ring as the version after the one it was read at: an
// insert under that version's _id, which only one writer can make.
func (s *Store) PutKeyring(ctx context.Context, ring keys.Keyring) (int64, error) {
	next := ring.Version + 1
	d := keyringDoc{ID: keyringID(ring.Profile, next), Profile: ring.Profile, Version: next, Keys: ring.Keys}
	_, err := s.keyrings.InsertOne(ctx, d)
	switch {
	case mongo.IsDuplicateKeyError(err):
		return 0, keys.ErrConflict
	case err != nil:
		return 0, translate(err)
	}
	// The insert wins only if no later version exists: older versions are
	// deleted below, so a writer that read a version long gone could
	// insert under an _id freed that way. The latest version is never
	// deleted, so a later one is there to be seen; then this write lost.
	n, err := s.keyrings.CountDocuments(ctx, bson.D{{Key: "profile", Value: ring.Profile}, {Key: "version", Value: bson.D{{Key: "$gt", Value: next}}}})
	switch {
	case err != nil:
		return 0, translate(err) // whether this write stands is unknown: the next read says
	case n > 0:
		_, _ = s.keyrings.DeleteOne(ctx, bson.D{{Key: "_id", Value: d.ID}})
		return 0, keys.ErrConflict
	}
	// The versions before are history; a failure here leaves them for the
	// next write to remove.
	_, _ = s.keyrings.DeleteMany(ctx, bson.D{{Key: "profile", Value: ring.Profile}, {Key: "version", Value: bson.D{{Key: "$lt", Value: next}}}})
	return next, nil
}

// Keyrings returns every profile's keyring, at its latest version.
func (s *Store) Keyrings(ctx context.Context) ([]keys.Keyring, error) {
	cur, err := s.keyrings.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "profile", Value: 1}, {Key: "version", Value: -1}}))
	if err != nil {
		return nil, translate(err)
	}
	var docs []keyringDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	var out []keys.Keyring
	for _, d := range docs {
		if len(out) == 0 || out[len(out)-1].Profile != d.Profile {
			out = append(out, d.ring())
		}
	}
	return out, nil
}

// purgeTimeout bounds one purge.
const purgeTimeout = 10 * time.Minute

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

// knownKey is a key history entry as stored, by fingerprint.
type knownKey struct {
	Fingerprint string    `bson:"_id"`
	Kid         string    `bson:"kid"`
	Alg         string    `bson:"alg"`
	Profiles    string    `bson:"profiles"`
	Recorded    bool      `bson:"recorded"`
	Lifetime    int64     `bson:"lifetime"`
	Added       time.Time `bson:"added"`
}

// RememberKeys adds keys to the key history, keeping the entries it has:
// an upsert that sets fields only when it inserts.
func (s *Store) RememberKeys(ctx context.Context, known []keys.KnownKey) error {
	for _, k := range known {
		doc := knownKey{Fingerprint: k.Fingerprint, Kid: k.Kid, Alg: k.Alg, Profiles: k.Profiles, Recorded: k.Recorded, Lifetime: int64(k.Lifetime), Added: k.Added}
		if _, err := s.keyHistory.UpdateOne(ctx, bson.D{{Key: "_id", Value: k.Fingerprint}},
			bson.D{{Key: "$setOnInsert", Value: doc}}, options.UpdateOne().SetUpsert(true)); err != nil && !mongo.IsDuplicateKeyError(err) {
			return translate(err)
		}
	}
	return nil
}

// KnownKeys returns the key history.
func (s *Store) KnownKeys(ctx context.Context) ([]keys.KnownKey, error) {
	cur, err := s.keyHistory.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "added", Value: 1}, {Key: "_id", Value: 1}}))
	if err != nil {
		return nil, translate(err)
	}
	var docs []knownKey
	if err := cur.All(ctx, &docs); err != nil {
		return nil, translate(err)
	}
	out := make([]keys.KnownKey, len(docs))
	for i, d := range docs {
		out[i] = keys.KnownKey{Fingerprint: d.Fingerprint, Kid: d.Kid, Alg: d.Alg, Profiles: d.Profiles, Recorded: d.Recorded,
			Lifetime: time.Duration(d.Lifetime), Added: d.Added.UTC()}
	}
	return out, nil
}

// Ping checks that the primary answers and, while commits fail, that a
// write is acknowledged with the commits' write concern.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return translate(err)
	}
	if s.group.Failing() == nil {
		return nil
	}
	_, err := s.xids.Database().Collection("probe").UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "at", Value: time.Now().UnixNano()}}}}, options.UpdateOne().SetUpsert(true))
	if err != nil {
		return fmt.Errorf("commits fail: %w", translate(err))
	}
	return nil
}

// Close stops the group committer after the inserts it has taken are
// committed, and disconnects.
func (s *Store) Close() error {
	s.group.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.client.Disconnect(ctx)
}

func isServerError(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}

// translate maps driver errors to the record contract's: a duplicate key
// is ErrDuplicate, anything else means the store cannot be used now
// (ErrUnavailable, still wrapping a context error when there was one).
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled):
		return err
	case mongo.IsDuplicateKeyError(err):
		return record.ErrDuplicate
	}
	return fmt.Errorf("%w: mongodb: %w", record.ErrUnavailable, err)
}
