package keys

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/ssh"
)

// go-jose refuses RSA JWKs over 4096 bits by default; jwtd's bound is
// MaxRSABits, checked by New with its own message.
func init() { jose.MaxRSAModulusBits = MaxRSABits + 1 }

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
//   - a public key, for RS, PS, ES and EdDSA, in any common encoding: PEM
//     (a certificate too, wherever the block starts), a JWK (JSON object),
//     DER in base64, base64url or hex, or an OpenSSH authorized_keys line;
//   - anything else is an HMAC secret: its UTF-8 bytes, for HS only.
//
// A private key, in any of those encodings (a JWK with d, p or q, a PEM or
// DER private key), is refused with ErrPrivateKey: whoever pasted it should
// be told it is to be kept, not be served.
//
// What parses as a public key is never an HMAC secret, and a key that does
// not fit alg is an error: that is what defeats key confusion (an HS token
// "signed" with a public key's published bytes).
func ForVerify(key []byte, alg string) (*Key, error) {
	if !Supported(alg) {
		return nil, fmt.Errorf("%w: algorithm %q is not supported", ErrUnsafeKey, alg)
	}
	text := bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(key), []byte("\ufeff")))
	if bytes.HasPrefix(text, []byte("{")) {
		if jwkHasPrivate(text) {
			return nil, privateKeyError(alg)
		}
		k, err := ParseJWK(text, alg)
		if err != nil {
			return nil, err
		}
		if k.Symmetric() != IsHMAC(alg) {
			return nil, fmt.Errorf("%w: the JWK does not fit %s", ErrUnsafeKey, alg)
		}
		return k, nil
	}
	pub, isPublic, err := parseAnyPublic(text)
	switch {
	case errors.Is(err, ErrPrivateKey):
		return nil, privateKeyError(alg)
	case IsHMAC(alg) && isPublic:
		return nil, fmt.Errorf("%w: %s needs a shared secret, and a public key was given", ErrUnsafeKey, alg)
	case IsHMAC(alg):
		return New("", alg, key)
	case !isPublic:
		return nil, fmt.Errorf("%w: %s needs a public key (PEM, JWK, base64 DER or OpenSSH)", ErrUnsafeKey, alg)
	case err != nil:
		return nil, err
	}
	return New("", alg, pub)
}

// parseAnyPublic reads text as a public key in any encoding ForVerify
// names. isPublic says the text is one (a PEM block of any kind counts, so
// that a private key or a broken block is not taken for a secret either);
// err, why it cannot be used.
func parseAnyPublic(text []byte) (pub any, isPublic bool, err error) {
	if bytes.Contains(text, []byte("-----BEGIN")) {
		if _, perr := ParsePrivatePEM(text); perr == nil || bytes.Contains(text, []byte("PRIVATE KEY-----")) {
			return nil, true, ErrPrivateKey
		}
		pub, err := ParsePublicPEM(text)
		return pub, true, err
	}
	// OpenSSH key types all have one of these in their names.
	if bytes.Contains(text, []byte("ssh-")) || bytes.Contains(text, []byte("ecdsa-sha2-")) {
		if k, _, _, _, err := ssh.ParseAuthorizedKey(text); err == nil {
			if ck, ok := k.(ssh.CryptoPublicKey); ok {
				return ck.CryptoPublicKey(), true, nil
			}
			return nil, true, fmt.Errorf("%w: OpenSSH key type %s is not supported", ErrUnsafeKey, k.Type())
		}
	}
	// DER starts with a SEQUENCE (0x30): "M" in base64, "30" in hex. Only
	// those are decoded, so an ordinary secret costs a byte comparison.
	if len(text) < 2 || text[0] != 'M' && !(text[0] == '3' && text[1] == '0') {
		return nil, false, nil
	}
	compact := bytes.Join(bytes.Fields(text), nil)
	var ders [][]byte
	if bytes.HasPrefix(compact, []byte("M")) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if der, err := enc.DecodeString(string(compact)); err == nil {
				ders = append(ders, der)
			}
		}
	}
	if bytes.HasPrefix(compact, []byte("30")) {
		if der, err := hex.DecodeString(string(compact)); err == nil {
			ders = append(ders, der)
		}
	}
	for _, der := range ders {
		if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
			return pub, true, nil
		}
		if pub, err := x509.ParsePKCS1PublicKey(der); err == nil {
			return pub, true, nil
		}
		if c, err := x509.ParseCertificate(der); err == nil {
			return c.PublicKey, true, nil
		}
		if isPrivateDER(der) {
			return nil, true, ErrPrivateKey
		}
	}
	return nil, false, nil
}

// ErrPrivateKey is a caller's key that is a private key: refused, since
// verifying needs only the public key (or, for HS, the shared secret).
var ErrPrivateKey = fmt.Errorf("%w: a private key was given", ErrUnsafeKey)

func privateKeyError(alg string) error {
	if IsHMAC(alg) {
		return fmt.Errorf("%w; %s verifies with the shared secret: send that, and keep private keys to yourself", ErrPrivateKey, alg)
	}
	return fmt.Errorf("%w; verifying needs only the public key (PEM \"PUBLIC KEY\", or a JWK without d, p, q): send that, and keep the private key to yourself", ErrPrivateKey)
}

// jwkHasPrivate reports whether a JWK carries private members (RFC 7518
// §6.2.2, §6.3.2, §6.2.1 for OKP): "d", "p" or "q". An "oct" key's "k"
// is a shared secret, which HS verification needs.
func jwkHasPrivate(data []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false // ParseJWK says what is wrong
	}
	for _, name := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := m[name]; ok {
			return true
		}
	}
	return false
}

func isPrivateDER(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}
