// Package mongo is jwtd's MongoDB record store (go.mongodb.org/mongo-driver/v2),
// for running several jwtd instances on one distributed database. Inserts go
// through the same group committer as the embedded store; the XID-to-phone
// binding is a document per XID, claimed atomically by an upsert, so that two
// instances cannot bind one XID to two phones.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

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
// makes the indexes. It fails if the server does not answer within ctx,
// and refuses a URI that weakens what the store promises (see
// clientOptions).
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
	co, err := clientOptions(uri, opts.Timeout)
	if err != nil {
		return nil, err
	}
	client, err := mongo.Connect(co)
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

// serverSelectionTimeout bounds the wait for a primary (during an
// election, say) when store.timeout is longer.
const serverSelectionTimeout = 5 * time.Second

// clientOptions is the driver's configuration: the URI's options, under
// what the store promises. A token is handed out only once its record is
// acknowledged by a majority of the replica set, journaled, so a URI
// asking for less (w=1, w=0, a tag, journal=false) is refused rather than
// overridden: whoever wrote it expects something jwtd would not do.
// Reads go to the primary, which has every acknowledged record: a URI
// reading from secondaries, which may lag, is refused too (Get Status
// could answer "unknown" for a token just handed out, or miss a
// revocation). Retryable writes stay on, so that a commit in flight when
// the primary steps down is retried once on the new one instead of
// failing; retryWrites=false is refused. Every operation, and the wait for
// a primary, is bounded by timeout (store.timeout).
func clientOptions(uri string, timeout time.Duration) (*options.ClientOptions, error) {
	co := options.Client().ApplyURI(uri)
	if err := co.Validate(); err != nil {
		return nil, fmt.Errorf("store.url: %v", err)
	}
	var refused []string
	if wc := co.WriteConcern; wc != nil {
		if w, ok := wc.W.(string); wc.W != nil && (!ok || w != "majority") {
			refused = append(refused, fmt.Sprintf("w=%v (jwtd writes with w=majority: a token handed out must survive the loss of the primary)", wc.W))
		}
		if wc.Journal != nil && !*wc.Journal {
			refused = append(refused, "journal=false (jwtd writes journaled: a token handed out must survive a crash)")
		}
	}
	if rp := co.ReadPreference; rp != nil && rp.Mode() != readpref.PrimaryMode {
		refused = append(refused, fmt.Sprintf("readPreference=%s (jwtd reads from the primary: a secondary may not have a record or revocation yet)", rp.Mode()))
	}
	if co.RetryWrites != nil && !*co.RetryWrites {
		refused = append(refused, "retryWrites=false (jwtd retries a commit cut off by an election once, on the new primary)")
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("store.url: remove %s from the URI", strings.Join(refused, "; "))
	}
	journal, retry := true, true
	return co.SetWriteConcern(&writeconcern.WriteConcern{W: "majority", Journal: &journal}).
		SetReadPreference(readpref.Primary()).
		SetRetryWrites(retry).
		SetTimeout(timeout).
		SetServerSelectionTimeout(min(timeout, serverSelectionTimeout)), nil
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
