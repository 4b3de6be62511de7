package keys

import (
	"crypto"
	"crypto/sha256"
	_ "crypto/sha512" // HS384 and HS512 fingerprints
	"encoding/base64"
	"slices"
	"strings"
)

// Fingerprint names a key's material without holding it: two keys have
// one fingerprint exactly when they verify the same signatures under alg.
//
// For an asymmetric key it is the RFC 7638 thumbprint of its public key,
// whatever the algorithm. For an HMAC secret it is the SHA-256 of the key
// as HMAC uses it under alg (RFC 2104): a secret longer than the hash's
// block is hashed first, and a shorter one is padded with zero bytes to the
// block, so "secret", "secret\x00" and a JWK of either have one fingerprint.
// A fingerprint of a secret says nothing a token signed with it does not:
// both let a guess of the secret be checked, and no more.
func Fingerprint(k *Key, alg string) string {
	secret, ok := k.public.([]byte)
	if !ok {
		tp, err := Thumbprint(k.public)
		if err != nil {
			return "" // unreachable: New accepts only keys go-jose marshals
		}
		return "jwk:" + tp
	}
	info, ok := algorithms[alg]
	if !ok || info.family != familyHMAC {
		return ""
	}
	return hmacFingerprint(info.hash, alg, secret)
}

// Fingerprints are every fingerprint a key may be met under: its one
// thumbprint, or for a secret one per HMAC algorithm, since a holder of the
// secret may sign a token of any HS algorithm with it.
func Fingerprints(k *Key) []string {
	if !k.Symmetric() {
		return []string{Fingerprint(k, k.alg)}
	}
	var out []string
	for alg, info := range algorithms {
		if info.family == familyHMAC {
			out = append(out, Fingerprint(k, alg))
		}
	}
	slices.Sort(out)
	return out
}

func hmacFingerprint(h crypto.Hash, alg string, secret []byte) string {
	block := 64 // SHA-256's
	if h == crypto.SHA384 || h == crypto.SHA512 {
		block = 128
	}
	var padded [128]byte
	if len(secret) > block {
		d := h.New()
		d.Write(secret)
		copy(padded[:], d.Sum(nil))
	} else {
		copy(padded[:], secret)
	}
	sum := sha256.Sum256(padded[:block])
	var b strings.Builder
	b.Grow(len("hmac::") + len(alg) + base64.RawURLEncoding.EncodedLen(len(sum)))
	b.WriteString("hmac:")
	b.WriteString(alg)
	b.WriteByte(':')
	var enc [43]byte
	base64.RawURLEncoding.Encode(enc[:], sum[:])
	b.Write(enc[:])
	return b.String()
}
