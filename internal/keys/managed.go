package keys

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

// SealedKeys makes new managed keys sealed under s: an asymmetric key as
// PKCS #8 PEM, its kid the RFC 7638 thumbprint; a secret as its bytes, its
// kid random. The plaintext never leaves this function but sealed.
func SealedKeys(s *Sealer) MakeKey {
	return func(alg string) (record.ManagedKey, error) {
		material, err := Generate(alg)
		if err != nil {
			return record.ManagedKey{}, err
		}
		k, err := New("", alg, material)
		if err != nil {
			return record.ManagedKey{}, err
		}
		var kid string
		var plain []byte
		if secret, ok := material.([]byte); ok {
			var b [9]byte
			_, _ = rand.Read(b[:])
			kid, plain = "hs-"+base64.RawURLEncoding.EncodeToString(b[:]), secret
		} else {
			if kid, err = Thumbprint(k.Public()); err != nil {
				return record.ManagedKey{}, err
			}
			if plain, err = MarshalPrivatePEM(material); err != nil {
				return record.ManagedKey{}, err
			}
		}
		sealed, err := s.Seal(kid, plain)
		if err != nil {
			return record.ManagedKey{}, err
		}
		return record.ManagedKey{Kid: kid, Alg: alg, Private: sealed}, nil
	}
}

// OpenRing opens a keyring's keys: the current one, which signs, and every
// one (next, current, retired), which verify and are published. A key that
// does not open (a wrong master key, an altered row) is an error: an
// instance that cannot open its keys must not serve.
func OpenRing(ring record.Keyring, s *Sealer) (current *Key, all []*Key, err error) {
	for _, mk := range ring.Keys {
		plain, err := s.Open(mk.Kid, mk.Private)
		if err != nil {
			return nil, nil, err
		}
		var material any = plain
		if !IsHMAC(mk.Alg) {
			if material, err = ParsePrivatePEM(plain); err != nil {
				return nil, nil, fmt.Errorf("managed key %q: %w", mk.Kid, err)
			}
		}
		k, err := New(mk.Kid, mk.Alg, material)
		if err != nil {
			return nil, nil, fmt.Errorf("managed key %q: %w", mk.Kid, err)
		}
		k.publishOnly = mk.State == record.KeyNext
		all = append(all, k)
		if mk.State == record.KeyCurrent {
			current = k
		}
	}
	if current == nil {
		return nil, nil, fmt.Errorf("the keyring of %q has no current key", ring.Profile)
	}
	return current, all, nil
}

// syncAttempts bounds the compare-and-swap retries of one Sync: each
// retry means another instance wrote the keyring, and the next read sees
// what it wrote.
const syncAttempts = 5

// Sync brings a profile's keyring in the store to now under the policy and
// returns it: it reads the keyring, advances it, and writes it back by
// compare-and-swap, reading again when another instance wrote first.
// Every instance may call it at any time; the one whose write wins decides.
func Sync(ctx context.Context, store record.KeyStore, profile string, p Policy, newKey MakeKey, now time.Time) (record.Keyring, error) {
	for range syncAttempts {
		ring, err := store.Keyring(ctx, profile)
		if err != nil {
			return ring, err
		}
		keys, changed, err := Advance(ring.Keys, p, now, newKey)
		if err != nil || !changed {
			return ring, err
		}
		next := record.Keyring{Profile: profile, Version: ring.Version, Keys: keys}
		v, err := store.PutKeyring(ctx, next)
		switch {
		case err == nil:
			next.Version = v
			return next, nil
		case !errors.Is(err, record.ErrConflict):
			return ring, err
		}
	}
	return record.Keyring{}, fmt.Errorf("the keyring of %q kept changing under %d attempts to write it", profile, syncAttempts)
}
