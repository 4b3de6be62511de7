package token

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/record"
)

// One verdict for a token, wherever it is asked (POST /v1/introspect, the
// seed's /verifyToken, jwtd token verify, the console): the JWS layer,
// the key, the signature, the claims and their times, then what jwtd
// knows of its own tokens (rules):
//   - a token jwtd recorded is the token it recorded: its SHA-256 must be
//     the record's (else forged), its record must not be revoked;
//   - a token of a key whose profiles record every token has a record
//     (else unrecorded: purged, or never minted by jwtd);
//   - a token of a key jwtd no longer has is refused (key_retired), but
//     for the reasons above, which say more.
//
// A key is jwtd's when it is in the key set or in the history of keys
// jwtd has had (Options.Known), matched by fingerprint
// (keys.Fingerprint), so that a caller holding an old or re-encoded secret
// is held to the same rules.

// Verified is a token that passed every check.
type Verified struct {
	JWS    *JWS
	Claims *Claims
	Key    *keys.Key
}

// ownKey is what the service knows of one of jwtd's keys: of every key
// with its fingerprint, when several kids share one material.
type ownKey struct {
	keys.KnownKey
	algs  []string // the algorithms jwtd uses it with
	inSet bool     // in the key set now
}

// learnKeys indexes the key set and the history by fingerprint. A key in
// the set is described by its profiles now; the history describes the
// rest.
func (s *Service) learnKeys() {
	served := map[*keys.Key][]string{}
	for _, p := range s.Profiles() {
		for _, k := range append([]*keys.Key{p.Key}, p.VerifyKeys...) {
			served[k] = append(served[k], p.Name)
		}
	}
	now := s.opts.Now().UTC()
	for _, k := range s.keys.All() {
		own := ownKey{KnownKey: keys.KnownKey{Kid: k.Kid(), Alg: k.Alg(), Profiles: strings.Join(served[k], ","),
			Recorded: s.recorded[k], Lifetime: s.noExpTTL[k], Added: now}, algs: []string{k.Alg()}, inSet: true}
		for _, fp := range keys.Fingerprints(k) {
			own.Fingerprint = fp
			s.own[fp] = merge(s.own[fp], own)
		}
	}
	for _, k := range s.opts.Known {
		if _, inSet := s.keys.Lookup(k.Kid); !inSet {
			s.gone[k.Kid] = true
		}
		if _, ok := s.own[k.Fingerprint]; !ok {
			s.own[k.Fingerprint] = ownKey{KnownKey: k, algs: slices.DeleteFunc([]string{k.Alg}, func(a string) bool { return a == "" })}
		}
	}
}

// merge is what jwtd's rules hold of a material that several keys share:
// recorded only if every key's profiles record, the longest lifetime of
// their exp-less tokens, each key's algorithm.
func merge(a, b ownKey) ownKey {
	if a.Fingerprint == "" {
		return b
	}
	a.Recorded = a.Recorded && b.Recorded
	a.Lifetime = max(a.Lifetime, b.Lifetime)
	a.algs = append(a.algs, b.algs...)
	return a
}

// KnownKeys describes every key of the set as the key history keeps it,
// one entry per fingerprint.
func (s *Service) KnownKeys() []keys.KnownKey {
	var out []keys.KnownKey
	for _, own := range s.own {
		if own.inSet {
			out = append(out, own.KnownKey)
		}
	}
	return out
}

// RecordFunc reads the record of the token with a jti (record.Store's
// ByJTI): record.ErrNotFound when there is none; any other error means the
// record could not be read.
type RecordFunc func(ctx context.Context, jti string) (*record.Record, error)

// Verify applies the rules that need no record to a token, with jwtd's
// keys: the JWS layer (Decode, CheckHeader), the key pinned by kid (or,
// for a kid-less token, the keys of the kid-less profiles with its alg),
// the signature, and the claims. Introspect adds the record.
func (s *Service) Verify(tok string) (*Verified, error) {
	j, err := Decode(tok)
	if err != nil {
		return nil, err
	}
	if err := j.CheckHeader(); err != nil {
		return nil, err
	}
	key, err := s.verifySignature(j)
	if err != nil {
		return nil, err
	}
	c, err := parseClaims(j.Payload)
	if err != nil {
		return nil, err
	}
	if c.Expires.IsZero() {
		// exp is required, but for the tokens of jwtd's exp-less
		// (castlabs) profiles, which live their profile's ttl from iat,
		// as at /verifyToken.
		ttl, ok := s.noExpTTL[key]
		if !ok || c.IssuedAt.IsZero() {
			return nil, badClaim("claim \"exp\" is required")
		}
		c.Expires = c.IssuedAt.Add(ttl)
	}
	if err := c.checkTimes(s.opts.Now(), s.opts.Leeway); err != nil {
		return nil, err
	}
	return &Verified{JWS: j, Claims: c, Key: key}, nil
}

// Introspect is the verdict on a token with jwtd's keys: Verify, then the
// record (see the rules above). An error that wraps no reason (see
// IsReason) means the record could not be read, and the token must not be
// taken as active.
func (s *Service) Introspect(ctx context.Context, tok string, lookup RecordFunc) (*Verified, error) {
	v, err := s.Verify(tok)
	if errors.Is(err, ErrKeyRetired) || errors.Is(err, ErrBadSignature) {
		return nil, s.goneKeyVerdict(ctx, tok, err, lookup)
	}
	if err != nil {
		return nil, err
	}
	if err := s.rules(ctx, tok, v.Claims.JTI, s.recorded[v.Key], lookup); err != nil {
		return nil, err
	}
	return v, nil
}

// goneKeyVerdict is the verdict on a token no key of the set verifies:
// if it is, to the byte, a token jwtd recorded (the record's SHA-256 is
// as good as a signature), its key left the set, and it answers what its
// record says: expired, revoked, or else key_retired, as /verifyToken
// does with the old key. Otherwise err stands.
func (s *Service) goneKeyVerdict(ctx context.Context, tok string, err error, lookup RecordFunc) error {
	j, derr := Decode(tok)
	if derr != nil {
		return err
	}
	c, cerr := parseClaims(j.Payload)
	if cerr != nil {
		return err
	}
	if decided, verdict := s.byRecord(ctx, tok, c.JTI, lookup); decided {
		return verdict
	}
	return err
}

// byRecord decides the verdict on a token of a key that left the key set
// when the token is, to the byte, one jwtd recorded: what its record says
// (expired, revoked), or else key_retired. decided is false when the
// token is no record of jwtd's, or has no jti; the record's unreadability
// decides (fail closed).
func (s *Service) byRecord(ctx context.Context, tok, jti string, lookup RecordFunc) (decided bool, verdict error) {
	if jti == "" {
		return false, nil
	}
	rec, err := lookup(ctx, jti)
	switch {
	case errors.Is(err, record.ErrNotFound):
		return false, nil
	case err != nil:
		return true, err
	case rec.TokenSHA256 != HashToken(tok):
		return false, nil
	case !s.opts.Now().Before(rec.Expires.Add(s.opts.Leeway)):
		return true, fmt.Errorf("%w: jti %s expired at %s", ErrExpired, jti, rec.Expires.Format(time.RFC3339))
	case !rec.Revoked.IsZero():
		return true, fmt.Errorf("%w: jti %s was revoked", ErrRevoked, jti)
	}
	return true, fmt.Errorf("%w: jti %s was signed with a key jwtd had (kid %s) and no longer verifies with", ErrKeyRetired, jti, rec.Kid)
}

// rules are what jwtd knows of its own tokens: the record of a token
// signed with one of its keys, by jti (never by token string, since
// base64 is malleable), and the token's hash against the record's.
func (s *Service) rules(ctx context.Context, tok, jti string, recorded bool, lookup RecordFunc) error {
	if jti == "" {
		if recorded {
			return fmt.Errorf("%w: the token has no jti, and its key's profiles record every token they mint", ErrUnrecorded)
		}
		return nil
	}
	rec, err := lookup(ctx, jti)
	switch {
	case errors.Is(err, record.ErrNotFound) && recorded:
		return fmt.Errorf("%w: no record of jti %s, and its key's profiles record every token they mint", ErrUnrecorded, jti)
	case errors.Is(err, record.ErrNotFound):
		return nil
	case err != nil:
		return err
	case rec.TokenSHA256 != HashToken(tok):
		return fmt.Errorf("%w: jti %s is a token jwtd recorded, and this is not that token (its claims or signature differ)", ErrForged, jti)
	case !rec.Revoked.IsZero():
		return fmt.Errorf("%w: jti %s was revoked", ErrRevoked, jti)
	}
	return nil
}

// Checked is what verifying a token with a caller's key found: the token's
// own header and claims JSON, as sent, and why it does not verify (nil when
// it does).
type Checked struct {
	Header []byte
	Claims []byte
	Err    error
}

// VerifyWithKey is the verdict on a token with a key the caller gives
// (seed 003's Signing_key): an HMAC secret (its bytes), a PEM public key
// or a JWK, which must fit the token's alg (keys.ForVerify; private keys
// are refused). It applies the header policy, the signature, then the time
// claims the token has, at the service's clock and leeway: a signature
// over an expired token does not make it good. exp is not required, since
// the seed's own tokens have none. When the caller's key is one of jwtd's,
// now or before (by fingerprint), jwtd's rules follow, as at Introspect:
// a token of a key jwtd has had is never good for holding that key alone.
//
// The error is non-nil only when the token cannot be read as a JWS with a
// claims object, so that there is nothing to show; as ErrBusy, when every
// slot for asymmetric caller keys is taken; as keys.ErrPrivateKey, when the
// caller's key is a private key; or when the record of a token of jwtd's
// could not be read. A token that reads but does not verify is
// reported in Checked.Err.
func (s *Service) VerifyWithKey(ctx context.Context, tok string, key []byte, lookup RecordFunc) (Checked, error) {
	j, err := Decode(tok)
	if err != nil {
		return Checked{}, err
	}
	c, claimsErr := parseClaims(j.Payload)
	var bad *claimError
	if claimsErr != nil && !errors.As(claimsErr, &bad) {
		return Checked{}, claimsErr // not a claims object: nothing to show
	}
	if keys.Supported(j.Header.Alg) && !keys.IsHMAC(j.Header.Alg) {
		select {
		case s.callerKeySlots <- struct{}{}:
			defer func() { <-s.callerKeySlots }()
		default:
			return Checked{}, fmt.Errorf("%w: %d verifications with a caller's public key are running", ErrBusy, cap(s.callerKeySlots))
		}
	}
	err = s.checkWithKey(ctx, tok, j, c, claimsErr, key, lookup)
	switch {
	case err == nil, IsReason(err):
	case errors.Is(err, keys.ErrPrivateKey), errors.Is(err, record.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return Checked{}, err
	default: // the record could not be read: no verdict
		return Checked{}, fmt.Errorf("%w: reading the token's record: %w", record.ErrUnavailable, err)
	}
	return Checked{Header: j.RawHeader, Claims: j.Payload, Err: err}, nil
}

// checkWithKey reports the first failure in the order a verifier meets
// them: header, key, signature, the claims, then, for jwtd's own keys,
// the lifetime of a token without exp, the record, and the key's state.
func (s *Service) checkWithKey(ctx context.Context, tok string, j *JWS, c *Claims, claimsErr error, key []byte, lookup RecordFunc) error {
	if err := j.CheckHeader(); err != nil {
		return err
	}
	k, err := keys.ForVerify(key, j.Header.Alg)
	switch {
	case errors.Is(err, keys.ErrPrivateKey):
		return err // refused, not a verdict: the caller is told to keep it
	case err != nil:
		return fmt.Errorf("%w: Signing_key: %v", ErrBadSignature, err)
	}
	if err := j.VerifyWith(k); err != nil {
		return err
	}
	if claimsErr != nil {
		return claimsErr
	}
	own, isOwn := s.own[keys.Fingerprint(k, j.Header.Alg)]
	switch {
	case isOwn && len(own.algs) > 0 && !slices.Contains(own.algs, j.Header.Alg):
		// jwtd's material under another algorithm is no token of jwtd's.
		return fmt.Errorf("%w: the key is jwtd's (kid %s) for %s, and this token is %s", ErrBadSignature, own.Kid, strings.Join(own.algs, ", "), j.Header.Alg)
	case isOwn && own.Lifetime > 0 && c.Expires.IsZero() && c.IssuedAt.IsZero():
		// As Verify: jwtd's exp-less tokens live from their iat.
		return badClaim("claim \"exp\" is required, or \"iat\" for a token of a key whose tokens live from it")
	}
	if isOwn && !own.inSet {
		// As introspection answers it: by the record, when it is one.
		if decided, verdict := s.byRecord(ctx, tok, c.JTI, lookup); decided {
			return verdict
		}
	}
	if isOwn && c.Expires.IsZero() && !c.IssuedAt.IsZero() && own.Lifetime > 0 {
		c.Expires = c.IssuedAt.Add(own.Lifetime)
	}
	if err := c.checkTimes(s.opts.Now(), s.opts.Leeway); err != nil {
		return err
	}
	// A token signed with someone else's key says nothing about jwtd's
	// records, and /verifyToken must not tell anyone which jtis exist.
	if !isOwn {
		return nil
	}
	if err := s.rules(ctx, tok, c.JTI, own.Recorded, lookup); err != nil {
		return err
	}
	if !own.inSet {
		return fmt.Errorf("%w: the key is one jwtd had (kid %s) and no longer verifies with", ErrKeyRetired, own.Kid)
	}
	return nil
}

func (s *Service) verifySignature(j *JWS) (*keys.Key, error) {
	if j.Header.HasKid {
		k, ok := s.keys.Lookup(j.Header.Kid)
		switch {
		case !ok && s.gone[j.Header.Kid]:
			return nil, fmt.Errorf("%w: kid %s is a key jwtd had and no longer verifies with", ErrKeyRetired, j.Header.Kid)
		case !ok:
			return nil, fmt.Errorf("%w: no key has this kid", ErrUnknownKid)
		}
		return k, j.VerifyWith(k)
	}
	candidates := s.kidless[j.Header.Alg]
	if len(candidates) == 0 {
		return nil, fmt.Errorf("%w: the token has no kid and no kid-less profile uses %s", ErrUnknownKid, j.Header.Alg)
	}
	for _, k := range candidates {
		if j.VerifyWith(k) == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: signature does not verify", ErrBadSignature)
}

// LongestNoExpTTL is the longest lifetime of the tokens of profiles whose
// layout carries no exp (castlabs): how long after its iat such a token of
// jwtd's still verifies at /verifyToken.
func (s *Service) LongestNoExpTTL() time.Duration {
	var longest time.Duration
	for _, ttl := range s.noExpTTL {
		longest = max(longest, ttl)
	}
	return longest
}

// HashToken is the hex SHA-256 of a token, as records keep it.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
