package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// ErrUnsafeKey is wrapped by every error that refuses a key.
var ErrUnsafeKey = errors.New("unsafe key")

// MinRSABits and MaxRSABits bound the RSA moduli jwtd signs or verifies
// with: below the minimum is weak, above the maximum is a cheap way to make
// /verifyToken spend a lot of CPU on a caller's key.
const (
	MinRSABits = 2048
	MaxRSABits = 8192

	minRSAExponent = 1<<16 + 1
	maxRSAExponent = 1 << 32
)

// family is what kind of key material an algorithm needs.
type family int

const (
	familyHMAC family = iota + 1
	familyRSA
	familyEC
	familyEd25519
)

type algInfo struct {
	family family
	method jwt.SigningMethod
	hash   crypto.Hash    // HMAC: the minimum secret length is hash.Size()
	curve  elliptic.Curve // EC only
}

// pss returns a PS method that requires the salt length to equal the hash
// length when verifying (RFC 7518 §3.5); golang-jwt's defaults accept any.
func pss(m *jwt.SigningMethodRSAPSS) *jwt.SigningMethodRSAPSS {
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: m.Hash}
	return &jwt.SigningMethodRSAPSS{SigningMethodRSA: m.SigningMethodRSA, Options: opts, VerifyOptions: opts}
}

var algorithms = map[string]algInfo{
	"HS256": {family: familyHMAC, method: jwt.SigningMethodHS256, hash: crypto.SHA256},
	"HS384": {family: familyHMAC, method: jwt.SigningMethodHS384, hash: crypto.SHA384},
	"HS512": {family: familyHMAC, method: jwt.SigningMethodHS512, hash: crypto.SHA512},
	"RS256": {family: familyRSA, method: jwt.SigningMethodRS256},
	"RS384": {family: familyRSA, method: jwt.SigningMethodRS384},
	"RS512": {family: familyRSA, method: jwt.SigningMethodRS512},
	"PS256": {family: familyRSA, method: pss(jwt.SigningMethodPS256)},
	"PS384": {family: familyRSA, method: pss(jwt.SigningMethodPS384)},
	"PS512": {family: familyRSA, method: pss(jwt.SigningMethodPS512)},
	"ES256": {family: familyEC, method: jwt.SigningMethodES256, curve: elliptic.P256()},
	"ES384": {family: familyEC, method: jwt.SigningMethodES384, curve: elliptic.P384()},
	"ES512": {family: familyEC, method: jwt.SigningMethodES512, curve: elliptic.P521()},
	"EdDSA": {family: familyEd25519, method: jwt.SigningMethodEdDSA},
}

// Supported reports whether alg is an algorithm jwtd signs and verifies.
// "none" is never one.
func Supported(alg string) bool {
	_, ok := algorithms[alg]
	return ok
}

// IsHMAC reports whether alg is one of the HS algorithms.
func IsHMAC(alg string) bool { return algorithms[alg].family == familyHMAC }

// Key is one key pinned to one algorithm. Its zero value is not usable; build
// one with New. A Key is immutable and safe for concurrent use.
type Key struct {
	kid         string
	alg         string
	method      jwt.SigningMethod
	private     any // []byte, *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey; nil when verify-only
	public      any // []byte, *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey
	publishOnly bool
}

// New checks that material is a safe key for alg and returns it as a Key.
// material is a []byte HMAC secret, or a private or public RSA, ECDSA or
// Ed25519 key; a public key makes a verify-only Key.
func New(kid, alg string, material any) (*Key, error) {
	info, ok := algorithms[alg]
	if !ok {
		return nil, fmt.Errorf("%w: algorithm %q is not supported", ErrUnsafeKey, alg)
	}
	k := &Key{kid: kid, alg: alg, method: info.method}
	switch m := material.(type) {
	case []byte:
		if info.family != familyHMAC {
			return nil, fmt.Errorf("%w: %s needs an asymmetric key, not a secret", ErrUnsafeKey, alg)
		}
		if len(m) < info.hash.Size() {
			return nil, fmt.Errorf("%w: %s secret is %d bytes; RFC 7518 §3.2 requires at least %d",
				ErrUnsafeKey, alg, len(m), info.hash.Size())
		}
		secret := append([]byte(nil), m...)
		k.private, k.public = secret, secret
	case *rsa.PrivateKey:
		k.private, k.public = m, &m.PublicKey
	case *ecdsa.PrivateKey:
		k.private, k.public = m, &m.PublicKey
	case ed25519.PrivateKey:
		k.private, k.public = m, m.Public()
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		k.public = m
	default:
		return nil, fmt.Errorf("%w: unsupported key type %T", ErrUnsafeKey, material)
	}
	if err := checkPublic(alg, info, k.public); err != nil {
		return nil, err
	}
	return k, nil
}

// checkPublic verifies that the public half fits the algorithm's family and
// is strong enough.
func checkPublic(alg string, info algInfo, pub any) error {
	switch p := pub.(type) {
	case []byte:
		return nil // checked by the caller
	case *rsa.PublicKey:
		if info.family != familyRSA {
			return fmt.Errorf("%w: %s cannot use an RSA key", ErrUnsafeKey, alg)
		}
		if n := p.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return fmt.Errorf("%w: RSA modulus is %d bits; %d to %d accepted", ErrUnsafeKey, n, MinRSABits, MaxRSABits)
		}
		// NIST SP 800-56B and FIPS 186-5: odd, above 2^16; the upper bound
		// is ours, since every bit of the exponent is paid for by each
		// verification (keys in use have 65537).
		if e := int64(p.E); e < minRSAExponent || e >= maxRSAExponent || e%2 == 0 {
			return fmt.Errorf("%w: RSA public exponent %d; an odd number from 65537 up to 2^32 (excluded) is accepted", ErrUnsafeKey, p.E)
		}
		if rocaVulnerable(p.N) {
			return fmt.Errorf("%w: RSA modulus has the ROCA fingerprint (CVE-2017-15361)", ErrUnsafeKey)
		}
	case *ecdsa.PublicKey:
		if info.family != familyEC {
			return fmt.Errorf("%w: %s cannot use an EC key", ErrUnsafeKey, alg)
		}
		if p.Curve != info.curve {
			return fmt.Errorf("%w: %s needs curve %s, the key is on %s", ErrUnsafeKey, alg, info.curve.Params().Name, p.Curve.Params().Name)
		}
		point, err := p.Bytes()
		if err == nil {
			_, err = ecdsa.ParseUncompressedPublicKey(p.Curve, point) // checks the point is on the curve
		}
		if err != nil {
			return fmt.Errorf("%w: EC public key is not a valid point", ErrUnsafeKey)
		}
	case ed25519.PublicKey:
		if info.family != familyEd25519 {
			return fmt.Errorf("%w: %s cannot use an Ed25519 key", ErrUnsafeKey, alg)
		}
		if len(p) != ed25519.PublicKeySize {
			return fmt.Errorf("%w: Ed25519 public key is %d bytes", ErrUnsafeKey, len(p))
		}
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrUnsafeKey, pub)
	}
	return nil
}

// Kid is the key id.
func (k *Key) Kid() string { return k.kid }

// Alg is the one algorithm this key signs and verifies with.
func (k *Key) Alg() string { return k.alg }

// Symmetric reports whether the key is an HMAC secret.
func (k *Key) Symmetric() bool { _, ok := k.public.([]byte); return ok }

// Secret is an HMAC key's secret (a copy), or nil for an asymmetric key.
func (k *Key) Secret() []byte {
	if s, ok := k.public.([]byte); ok {
		return bytes.Clone(s)
	}
	return nil
}

// CanSign reports whether the key holds private material.
func (k *Key) CanSign() bool { return k.private != nil }

// PublishOnly reports whether the key is announced in the JWKS before it may
// sign (rotation: publish first, sign later).
func (k *Key) PublishOnly() bool { return k.publishOnly }

// Public returns the public key, or nil for an HMAC secret, which is never
// published.
func (k *Key) Public() crypto.PublicKey {
	if k.Symmetric() {
		return nil
	}
	return k.public
}

// Same reports whether k and o verify the same signatures: the same
// algorithm and the same secret (compared in constant time) or public key.
func (k *Key) Same(o *Key) bool {
	if k.alg != o.alg {
		return false
	}
	a, aok := k.public.([]byte)
	b, bok := o.public.([]byte)
	if aok || bok {
		return aok && bok && subtle.ConstantTimeCompare(a, b) == 1
	}
	pub, ok := k.public.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(o.public)
}

// Sign signs the JWS signing input (base64url header "." base64url payload).
func (k *Key) Sign(signingInput string) ([]byte, error) {
	if k.private == nil {
		return nil, fmt.Errorf("key %q is verify-only", k.kid)
	}
	return k.method.Sign(signingInput, k.private)
}

// Verify checks sig over the signing input. It returns nil only for a valid
// signature made with this key and this key's algorithm.
func (k *Key) Verify(signingInput string, sig []byte) error {
	return k.method.Verify(signingInput, sig, k.public)
}

// rocaPrimes and the generator 65537 give the ROCA fingerprint test of
// Nemec et al. (CCS 2017): a modulus from the vulnerable Infineon library
// is, modulo each of these primes, a power of 65537.
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
	73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

func rocaVulnerable(n *big.Int) bool {
	var r big.Int
	for _, p := range rocaPrimes {
		residue := r.Mod(n, big.NewInt(p)).Int64()
		g, x, found := 65537%p, int64(1), false
		for i := int64(0); i < p; i++ {
			if x == residue {
				found = true
				break
			}
			x = x * g % p
		}
		if !found {
			return false
		}
	}
	return true
}
