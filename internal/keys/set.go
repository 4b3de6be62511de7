package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// Set is an immutable collection of keys with unique kids, in the order
// they were given.
type Set struct {
	list  []*Key
	byKid map[string]*Key
}

// NewSet builds a Set; two keys with one kid are an error.
func NewSet(list ...*Key) (*Set, error) {
	s := &Set{list: list, byKid: make(map[string]*Key, len(list))}
	for _, k := range list {
		if _, dup := s.byKid[k.kid]; dup {
			return nil, fmt.Errorf("%w: kid %q is used by two keys", ErrUnsafeKey, k.kid)
		}
		s.byKid[k.kid] = k
	}
	return s, nil
}

// Lookup returns the key with this kid. The kid is only ever a map key: it
// never names a file, a URL or a query.
func (s *Set) Lookup(kid string) (*Key, bool) {
	k, ok := s.byKid[kid]
	return k, ok
}

// All returns the keys in order. The slice must not be modified.
func (s *Set) All() []*Key { return s.list }

// JWKS returns the JSON Web Key Set of the asymmetric keys, public halves
// only, each with its kid, alg, "use":"sig" and nothing else. HMAC secrets
// are never in it.
func (s *Set) JWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.list {
		pub := k.Public()
		if pub == nil {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: pub, KeyID: k.kid, Algorithm: k.alg, Use: "sig"})
	}
	return json.Marshal(set)
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a public key, base64url:
// a kid that anyone holding the public key can recompute.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Generate makes new key material for alg: a random secret as long as the
// hash output for HS, a 3072-bit RSA key for RS and PS, a key on the
// algorithm's curve for ES, an Ed25519 key for EdDSA.
func Generate(alg string) (any, error) {
	info, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("algorithm %q is not supported", alg)
	}
	switch info.family {
	case familyHMAC:
		secret := make([]byte, info.hash.Size())
		_, err := rand.Read(secret)
		return secret, err
	case familyRSA:
		return rsa.GenerateKey(rand.Reader, 3072)
	case familyEC:
		return ecdsa.GenerateKey(info.curve, rand.Reader)
	default:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
}
