package keys

import (
	"context"
	"errors"
	"time"
)

// KeyState is where a managed key is in its life: published before it
// signs, signing, then verifying only until its last token is past expiry.
type KeyState string

const (
	KeyNext    KeyState = "next"    // in the JWKS, not signing yet
	KeyCurrent KeyState = "current" // signing
	KeyRetired KeyState = "retired" // verifying only
)

// ManagedKey is one key jwtd made and keeps in the store. Private is the
// key's material sealed under the master key (keys.Sealer): the store
// never holds it in the clear.
type ManagedKey struct {
	Kid     string    `json:"kid"`
	Alg     string    `json:"alg"`
	State   KeyState  `json:"state"`
	Created time.Time `json:"created"`
	// When it signs (next → current), stops signing (current → retired)
	// and may be deleted: the zero time for what is not yet scheduled.
	Activates time.Time `json:"activates,omitzero"`
	Retires   time.Time `json:"retires,omitzero"`
	Deletes   time.Time `json:"deletes,omitzero"`
	Private   []byte    `json:"private"`
}

// Keyring is a profile's managed keys, stored as one document so that a
// rotation (next becomes current, current becomes retired) is one change.
// Instances change it by compare-and-swap on Version: the version they
// read, which the store increments.
type Keyring struct {
	Profile string
	Version int64 // 0 for a keyring not yet stored
	Keys    []ManagedKey
}

// ErrConflict is PutKeyring when another instance changed the keyring
// since it was read: read it again, and decide again.
var ErrConflict = errors.New("the keyring changed since it was read")

// KeyStore is the part of a Store that keeps keyrings.
//
// Keyring returns a profile's keyring, or one with Version 0 and no keys
// when it has none. PutKeyring stores ring if the stored version is still
// ring.Version (0: none stored), and returns the new version; otherwise
// ErrConflict, and nothing is written. Keyrings returns every profile's.
//
// RememberKeys adds keys to the history of every key jwtd has signed or
// verified with, keeping an entry already there (by Fingerprint) as it is;
// KnownKeys returns the whole history. Entries are never removed: a key's
// tokens may be presented long after the key left the key set.
type KeyStore interface {
	Keyring(ctx context.Context, profile string) (Keyring, error)
	PutKeyring(ctx context.Context, ring Keyring) (int64, error)
	Keyrings(ctx context.Context) ([]Keyring, error)
	RememberKeys(ctx context.Context, known []KnownKey) error
	KnownKeys(ctx context.Context) ([]KnownKey, error)
}

// KnownKey is one entry of the key history: a key jwtd made or was
// configured with, by the fingerprint of its material (keys.Fingerprint),
// never the material itself, and what jwtd's rules need of its tokens once
// the key has left the key set.
type KnownKey struct {
	Fingerprint string
	Kid         string
	Alg         string
	Profiles    string        // the profiles it served when first seen, comma-separated
	Recorded    bool          // every one of them records its tokens
	Lifetime    time.Duration // of its tokens that carry no exp (castlabs layout): from iat; 0 for none
	Added       time.Time
}
