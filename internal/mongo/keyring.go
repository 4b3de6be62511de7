package mongo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/jwtd/jwtd/internal/keys"
)

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
