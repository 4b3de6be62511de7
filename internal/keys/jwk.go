package keys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// jwkMeta holds the JWK members go-jose does not check for us.
type jwkMeta struct {
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
}

// ParseJWK reads one JSON Web Key as a verification (or signing) key. The
// algorithm is the JWK's own "alg"; alg, when not empty, must agree with it or
// stands in for a missing one. Keys marked for encryption are refused.
func ParseJWK(data []byte, alg string) (*Key, error) {
	var meta jwkMeta
	if err := json.Unmarshal(data, &meta); err != nil {
		return nil, fmt.Errorf("JWK: %w", err)
	}
	if meta.Use != "" && meta.Use != "sig" {
		return nil, fmt.Errorf("%w: JWK use is %q, not \"sig\"", ErrUnsafeKey, meta.Use)
	}
	if meta.KeyOps != nil && !slices.Contains(meta.KeyOps, "verify") && !slices.Contains(meta.KeyOps, "sign") {
		return nil, fmt.Errorf("%w: JWK key_ops %q allow neither sign nor verify", ErrUnsafeKey, meta.KeyOps)
	}
	switch {
	case meta.Alg == "" && alg == "":
		return nil, errors.New("JWK has no alg")
	case meta.Alg == "":
		meta.Alg = alg
	case alg != "" && meta.Alg != alg:
		return nil, fmt.Errorf("%w: JWK is for %s, not %s", ErrUnsafeKey, meta.Alg, alg)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("JWK: %w", err)
	}
	return New(jwk.KeyID, meta.Alg, jwk.Key)
}

// ParseJWKSet reads a JWK Set. Besides each key's own checks it refuses sets
// that are ambiguous: two keys with one kid, secrets next to asymmetric keys,
// or public keys next to private ones.
func ParseJWKSet(data []byte) (*Set, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("JWK set: %w", err)
	}
	if len(raw.Keys) == 0 {
		return nil, errors.New("JWK set has no keys")
	}
	list := make([]*Key, 0, len(raw.Keys))
	for i, r := range raw.Keys {
		k, err := ParseJWK(r, "")
		if err != nil {
			return nil, fmt.Errorf("JWK set key %d: %w", i, err)
		}
		list = append(list, k)
	}
	first := list[0]
	for _, k := range list[1:] {
		if k.Symmetric() != first.Symmetric() {
			return nil, fmt.Errorf("%w: JWK set mixes secrets and asymmetric keys", ErrUnsafeKey)
		}
		if k.CanSign() != first.CanSign() {
			return nil, fmt.Errorf("%w: JWK set mixes public and private keys", ErrUnsafeKey)
		}
	}
	return NewSet(list...)
}

// ForVerify turns a key sent by a caller (the seed 003 Signing_key) into a
// verify key for a token whose header says alg:
//   - a PEM public key or certificate, for RS, PS, ES and EdDSA;
//   - a JWK (JSON object), whose key type must fit alg;
//   - anything else is an HMAC secret: its UTF-8 bytes, for HS only.
//
// A key that does not fit alg is an error, which is what defeats key
// confusion (an HS token "signed" with a public key's bytes).
func ForVerify(key []byte, alg string) (*Key, error) {
	trimmed := bytes.TrimSpace(key)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN")):
		if IsHMAC(alg) {
			return nil, fmt.Errorf("%w: %s needs a shared secret, and a public key was given", ErrUnsafeKey, alg)
		}
		pub, err := ParsePublicPEM(trimmed)
		if err != nil {
			return nil, err
		}
		return New("", alg, pub)
	case bytes.HasPrefix(trimmed, []byte("{")):
		k, err := ParseJWK(trimmed, alg)
		if err != nil {
			return nil, err
		}
		if k.Symmetric() != IsHMAC(alg) {
			return nil, fmt.Errorf("%w: the JWK does not fit %s", ErrUnsafeKey, alg)
		}
		return k, nil
	}
	if !Supported(alg) {
		return nil, fmt.Errorf("%w: algorithm %q is not supported", ErrUnsafeKey, alg)
	}
	if !IsHMAC(alg) {
		return nil, fmt.Errorf("%w: %s needs a PEM public key or a JWK", ErrUnsafeKey, alg)
	}
	return New("", alg, key)
}
