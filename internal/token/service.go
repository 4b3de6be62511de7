package token

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
)

// MaxLeeway bounds the clock-skew allowance of verification.
const MaxLeeway = 60 * time.Second

// Errors of issuing.
var (
	ErrUnknownProfile = errors.New("unknown profile")
	ErrTTLTooLong     = errors.New("ttl exceeds the profile's")
	ErrInvalidRequest = errors.New("invalid request")
	// ErrBusy is a verification refused for want of capacity: try again.
	ErrBusy = errors.New("too many verifications at once")
)

// Options are a Service's clock, randomness and leeway. The zero value uses
// the system clock, crypto/rand and no leeway.
type Options struct {
	Now    func() time.Time
	Rand   io.Reader
	Leeway time.Duration
	// CallerKeySlots bounds the verifications with a caller's asymmetric
	// key (VerifyWithKey) that run at once: parsing an RSA key of 8192 bits
	// and verifying with it costs milliseconds of CPU, and nobody is
	// authenticated on that route. 0 is twice the CPUs Go uses.
	CallerKeySlots int
}

// Service mints and verifies tokens with one set of keys and profiles. It is
// immutable and safe for concurrent use; a reload builds a new one.
type Service struct {
	keys     *keys.Set
	profiles map[string]*Profile
	kidless  map[string][]*keys.Key // alg → candidate keys for kid-less tokens, signing keys first
	jwks     []byte
	opts     Options

	recorded map[*keys.Key]bool          // keys only recording profiles sign or verify with
	noExpTTL map[*keys.Key]time.Duration // keys of profiles whose tokens carry no exp: their lifetime

	callerKeySlots chan struct{} // a semaphore: see Options.CallerKeySlots
}

// NewService checks the profiles against the keys and builds a Service.
func NewService(set *keys.Set, specs map[string]ProfileSpec, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Leeway < 0 || opts.Leeway > MaxLeeway {
		return nil, fmt.Errorf("leeway %s is outside 0–%s", opts.Leeway, MaxLeeway)
	}
	if opts.CallerKeySlots <= 0 {
		opts.CallerKeySlots = 2 * runtime.GOMAXPROCS(0)
	}
	s := &Service{keys: set, profiles: make(map[string]*Profile, len(specs)), kidless: map[string][]*keys.Key{}, opts: opts,
		recorded: map[*keys.Key]bool{}, noExpTTL: map[*keys.Key]time.Duration{},
		callerKeySlots: make(chan struct{}, opts.CallerKeySlots)}
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := newProfile(name, specs[name], set)
		if err != nil {
			return nil, err
		}
		s.profiles[name] = p
	}
	// Kid-less candidates: every kid-less profile's signing key, then their
	// verify-only keys, so the key most tokens were signed with is tried first.
	for _, signing := range []bool{true, false} {
		for _, name := range names {
			p := s.profiles[name]
			if p.KidInHeader() {
				continue
			}
			list := p.VerifyKeys
			if signing {
				list = []*keys.Key{p.Key}
			}
			for _, k := range list {
				if !slices.Contains(s.kidless[k.Alg()], k) {
					s.kidless[k.Alg()] = append(s.kidless[k.Alg()], k)
				}
			}
		}
	}
	// What jwtd knows of its own tokens by the key that signed them: that
	// they are recorded (every profile the key serves records), and, for
	// layouts without exp, how long they live (the longest TTL of the
	// profiles the key serves).
	unrecorded := map[*keys.Key]bool{}
	for _, name := range names {
		p := s.profiles[name]
		for _, k := range append([]*keys.Key{p.Key}, p.VerifyKeys...) {
			s.recorded[k] = p.Record && !unrecorded[k]
			if !p.Record {
				unrecorded[k] = true
			}
			if p.Layout == LayoutCastlabs && p.TTL > s.noExpTTL[k] {
				s.noExpTTL[k] = p.TTL
			}
		}
	}
	jwks, err := set.JWKS()
	if err != nil {
		return nil, err
	}
	s.jwks = jwks
	return s, nil
}

// Profile returns a profile by name.
func (s *Service) Profile(name string) (*Profile, bool) {
	p, ok := s.profiles[name]
	return p, ok
}

// Leeway is the clock-skew allowance of verification: how long past its
// exp a token still verifies.
func (s *Service) Leeway() time.Duration { return s.opts.Leeway }

// Keys returns the key set.
func (s *Service) Keys() *keys.Set { return s.keys }

// JWKS returns the published key set as JSON.
func (s *Service) JWKS() []byte { return s.jwks }

// Request is what a caller asks to be put in a token. Which fields a layout
// uses: appverify Phone and XID; castlabs Data; default Subject, Audience and
// Data. TTL, when set, may only shorten the profile's.
type Request struct {
	Phone    string
	XID      string
	Subject  string
	Audience string
	Data     json.RawMessage
	TTL      time.Duration
}

// Issued is a minted token with what a record of it needs.
type Issued struct {
	Token     string
	Profile   string
	JTI       string
	Kid       string
	Alg       string
	IssuedAt  time.Time // the iat claim
	ExpiresAt time.Time // the exp claim (for castlabs, which has none: iat + ttl)
	MintedAt  time.Time // the service clock when minting, full precision
}

// newJTI returns 16 bytes as 32 lowercase hex digits: the minting time in
// milliseconds (6 bytes, big-endian) and 80 random bits, as UUIDv7 lays
// them out. Unique, and with 80 random bits not to be guessed, but in time order,
// so that a store's jti index grows at its end instead of being rewritten
// at a random page for every token.
func newJTI(now time.Time, rand io.Reader) (string, error) {
	var b [16]byte
	ms := uint64(now.UnixMilli())
	for i := range 6 {
		b[i] = byte(ms >> (8 * (5 - i)))
	}
	if _, err := io.ReadFull(rand, b[6:]); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// maxClaimText bounds sub and aud: identifiers, not documents.
const maxClaimText = 256

// Check refuses a request the profile cannot make a token of: a ttl above
// the profile's (ErrTTLTooLong), or, with ErrInvalidRequest, one that would
// mint an expired token, sub or aud over 256 bytes, a ttl for the castlabs
// layout (which has no exp to carry it), or, for the appverify layout, no
// phone number. Issue checks it; a caller may check it earlier, before
// counting the request against a limit.
func (p *Profile) Check(r Request) error {
	if len(r.Subject) > maxClaimText || len(r.Audience) > maxClaimText {
		return fmt.Errorf("%w: sub and aud are at most %d bytes", ErrInvalidRequest, maxClaimText)
	}
	switch {
	case r.TTL > p.TTL:
		return fmt.Errorf("%w: %s > %s", ErrTTLTooLong, r.TTL, p.TTL)
	case r.TTL > 0 && r.TTL < p.Backdate+time.Second:
		// exp is whole seconds after iat, which is backdated: a shorter
		// ttl would mint a token that has expired already.
		return fmt.Errorf("%w: ttl %s is too short; this profile's tokens are backdated %s, so ttl must be at least %s",
			ErrInvalidRequest, r.TTL, p.Backdate, p.Backdate+time.Second)
	}
	if p.Layout == LayoutCastlabs && r.TTL > 0 {
		return fmt.Errorf("%w: profile %q's tokens carry no exp (the castlabs layout) and live the profile's ttl; a ttl cannot shorten them", ErrInvalidRequest, p.Name)
	}
	if p.Layout == LayoutAppVerify && r.Phone == "" {
		return fmt.Errorf("%w: profile %q puts the phone number in every token (the appverify layout): give one", ErrInvalidRequest, p.Name)
	}
	return nil
}

// Issue mints a token with the named profile. A request that cannot make a
// token this service would verify is refused with ErrInvalidRequest: sub or
// aud over 256 bytes, data that is not JSON, or a token over MaxTokenBytes.
func (s *Service) Issue(profile string, r Request) (*Issued, error) {
	p, ok := s.profiles[profile]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProfile, profile)
	}
	if err := p.Check(r); err != nil {
		return nil, err
	}
	ttl := p.TTL
	if r.TTL > 0 {
		ttl = r.TTL
	}
	now := s.opts.Now()
	jti, err := newJTI(now, s.opts.Rand)
	if err != nil {
		return nil, err
	}
	iat := now.Add(-p.Backdate).Unix()
	exp := iat + int64(ttl/time.Second)

	body, err := p.appendClaims(make([]byte, 0, 256), r, jti, iat, exp, now)
	if err != nil {
		return nil, err
	}
	// Header, payload and a signature of up to 64 bytes (HS512, ES256,
	// EdDSA) in one buffer; a longer signature grows it once.
	n := len(p.headerSegment) + 1 + base64.RawURLEncoding.EncodedLen(len(body))
	if n > MaxTokenBytes {
		return nil, fmt.Errorf("%w: the token would be longer than the %d bytes a verifier accepts; send less data", ErrInvalidRequest, MaxTokenBytes)
	}
	tok := make([]byte, n, n+1+base64.RawURLEncoding.EncodedLen(64))
	copy(tok, p.headerSegment)
	tok[len(p.headerSegment)] = '.'
	base64.RawURLEncoding.Encode(tok[len(p.headerSegment)+1:], body)
	sig, err := p.Key.Sign(string(tok))
	if err != nil {
		return nil, fmt.Errorf("signing with %q: %w", p.Key.Kid(), err)
	}
	tok = append(tok, '.')
	tok = base64.RawURLEncoding.AppendEncode(tok, sig)
	if len(tok) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: the token would be longer than the %d bytes a verifier accepts; send less data", ErrInvalidRequest, MaxTokenBytes)
	}
	return &Issued{
		Token:   string(tok),
		Profile: p.Name, JTI: jti, Kid: p.Key.Kid(), Alg: p.Key.Alg(),
		IssuedAt: time.Unix(iat, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(), MintedAt: now.UTC(),
	}, nil
}

// appendClaims appends the profile's claims set, compact and in its
// layout's order, without HTML escaping, as the seeds' Python made it.
func (p *Profile) appendClaims(b []byte, r Request, jti string, iat, exp int64, now time.Time) ([]byte, error) {
	switch p.Layout {
	case LayoutAppVerify:
		b = appendMember(b, '{', "iss", p.Issuer)
		b = appendInt(b, "iat", iat)
		b = appendInt(b, "exp", exp)
		b = appendMember(b, ',', "phn", r.Phone)
		b = appendMember(b, ',', "xid", r.XID)
		b = appendMember(b, ',', "jti", jti)
		return append(b, '}'), nil
	case LayoutCastlabs:
		b = append(b, `{"iat":`...)
		b = strconv.AppendInt(b, iat, 10)
		b = appendMember(b, ',', "jti", jti)
		b = append(b, `,"payload":{"data":`...)
		var err error
		if b, err = appendData(b, r.Data); err != nil {
			return nil, err
		}
		b = appendMember(b, ',', "date", now.UTC().Format(time.DateOnly))
		return append(b, "}}"...), nil
	}
	aud := r.Audience
	if aud == "" {
		aud = p.Audience
	}
	b = append(b, '{')
	for _, m := range [...]struct{ name, value string }{{"iss", p.Issuer}, {"sub", r.Subject}, {"aud", aud}} {
		if m.value != "" { // omitted when empty
			b = appendMember(b, 0, m.name, m.value)
			b = append(b, ',')
		}
	}
	b = append(b, `"iat":`...)
	b = strconv.AppendInt(b, iat, 10)
	b = appendInt(b, "exp", exp)
	b = appendMember(b, ',', "jti", jti)
	if len(r.Data) > 0 {
		b = append(b, ',')
		b = appendString(b, p.DataClaim)
		b = append(b, ':')
		var err error
		if b, err = appendData(b, r.Data); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMember appends sep (unless zero), "name":"value".
func appendMember(b []byte, sep byte, name, value string) []byte {
	if sep != 0 {
		b = append(b, sep)
	}
	b = appendString(b, name)
	b = append(b, ':')
	return appendString(b, value)
}

func appendInt(b []byte, name string, v int64) []byte {
	b = append(b, ',')
	b = appendString(b, name)
	b = append(b, ':')
	return strconv.AppendInt(b, v, 10)
}

// appendString appends s as a JSON string. Plain ASCII, the common case
// (phone numbers, XIDs, jtis, most names), is copied as it is; anything else
// goes through encoding/json, whose escaping jwtd's tokens have always had.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			q, _ := marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendData appends the caller's data, compacted.
func appendData(b []byte, data json.RawMessage) ([]byte, error) {
	if len(data) == 0 {
		return append(b, "null"...), nil
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, data); err != nil {
		return nil, fmt.Errorf("%w: data is not JSON", ErrInvalidRequest)
	}
	return buf.Bytes(), nil
}

// marshal is compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Verified is a token that passed every check.
type Verified struct {
	JWS    *JWS
	Claims *Claims
	Key    *keys.Key
}

// Verify applies every verification rule to a token: the JWS layer (Decode,
// CheckHeader), the key pinned by kid (or, for a kid-less token, the
// keys of the kid-less profiles with its alg), the signature, and the claims.
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

// RecordFunc looks up the record of the token with a jti: whether there is
// one, and whether it was revoked. Its errors are the store's: they mean the
// record could not be read.
type RecordFunc func(ctx context.Context, jti string) (found, revoked bool, err error)

// Introspect is Verify, then the token's record, by jti (never by token
// string, since base64 is malleable): a token that was revoked is an error
// wrapping ErrRevoked, and a token signed with a key only recording
// profiles use that has no record (purged, or never recorded) one wrapping
// ErrUnrecorded. An error that wraps no reason (see IsReason) means the
// record could not be read, and the token must not be taken as active.
func (s *Service) Introspect(ctx context.Context, tok string, lookup RecordFunc) (*Verified, error) {
	v, err := s.Verify(tok)
	if err != nil {
		return nil, err
	}
	if v.Claims.JTI == "" {
		if s.recorded[v.Key] {
			return nil, fmt.Errorf("%w: the token has no jti, and its key's profiles record every token they mint", ErrUnrecorded)
		}
		return v, nil
	}
	found, revoked, err := lookup(ctx, v.Claims.JTI)
	switch {
	case err != nil:
		return nil, err
	case revoked:
		return nil, fmt.Errorf("%w: jti %s was revoked", ErrRevoked, v.Claims.JTI)
	case !found && s.recorded[v.Key]:
		return nil, fmt.Errorf("%w: no record of jti %s, and its key's profiles record every token they mint", ErrUnrecorded, v.Claims.JTI)
	}
	return v, nil
}

// Revocations says whether the token with a jti was revoked, from memory
// (record.RevocationList): VerifyWithKey asks it on every call.
type Revocations interface {
	Revoked(jti string) bool
}

// Checked is what verifying a token with a caller's key found: the token's
// own header and claims JSON, as sent, and why it does not verify (nil when
// it does).
type Checked struct {
	Header []byte
	Claims []byte
	Err    error
}

// VerifyWithKey verifies a token with a key the caller gives (seed 003's
// Signing_key): an HMAC secret (its bytes), a PEM public key or a JWK, which
// must fit the token's alg (keys.ForVerify). It applies the header policy,
// the signature, then the time claims the token has, at the service's clock
// and leeway: a signature over an expired token does not make it good. exp is
// not required, since the seed's own tokens have none.
//
// The error is non-nil only when the token cannot be read as a JWS with a
// claims object, so that there is nothing to show, or, as ErrBusy, when
// every slot for asymmetric caller keys is taken; a token that reads but
// does not verify is reported in Checked.Err.
func (s *Service) VerifyWithKey(tok string, key []byte, revoked Revocations) (Checked, error) {
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
	return Checked{Header: j.RawHeader, Claims: j.Payload, Err: s.checkWithKey(j, c, claimsErr, key, revoked)}, nil
}

// checkWithKey reports the first failure in the order a verifier meets
// them: header, key, signature, the claims, then what jwtd knows of its own
// tokens: the lifetime of a token without exp that one of its profiles
// minted, and revocation.
func (s *Service) checkWithKey(j *JWS, c *Claims, claimsErr error, key []byte, revoked Revocations) error {
	if err := j.CheckHeader(); err != nil {
		return err
	}
	k, err := keys.ForVerify(key, j.Header.Alg)
	if err != nil {
		return fmt.Errorf("%w: Signing_key: %v", ErrBadSignature, err)
	}
	if err := j.VerifyWith(k); err != nil {
		return err
	}
	if claimsErr != nil {
		return claimsErr
	}
	if c.Expires.IsZero() && !c.IssuedAt.IsZero() {
		if ttl, ok := s.ownLifetime(k); ok {
			c.Expires = c.IssuedAt.Add(ttl)
		}
	}
	if err := c.checkTimes(s.opts.Now(), s.opts.Leeway); err != nil {
		return err
	}
	// Revocation is asked only of jwtd's own tokens: a token signed with
	// someone else's key says nothing about jwtd's records, and /verifyToken
	// must not tell anyone which jtis were revoked.
	if revoked != nil && c.JTI != "" && s.ownKey(k) && revoked.Revoked(c.JTI) {
		return fmt.Errorf("%w: jti %s was revoked", ErrRevoked, c.JTI)
	}
	return nil
}

// ownKey reports whether the caller's key is one of jwtd's.
func (s *Service) ownKey(caller *keys.Key) bool {
	for _, k := range s.keys.All() {
		if caller.Same(k) {
			return true
		}
	}
	return false
}

// LongestNoExpTTL is the longest lifetime of the tokens of profiles whose
// layout carries no exp (castlabs): how long after its iat such a token of
// jwtd's still verifies at /verifyToken, and so how long a revocation of
// one must be remembered.
func (s *Service) LongestNoExpTTL() time.Duration {
	var longest time.Duration
	for _, ttl := range s.noExpTTL {
		longest = max(longest, ttl)
	}
	return longest
}

// ownLifetime is how long a token without exp lives when one of jwtd's
// exp-less (castlabs) profiles minted it: when the key it verified with is
// one of theirs.
func (s *Service) ownLifetime(caller *keys.Key) (time.Duration, bool) {
	for k, ttl := range s.noExpTTL {
		if caller.Same(k) {
			return ttl, true
		}
	}
	return 0, false
}

func (s *Service) verifySignature(j *JWS) (*keys.Key, error) {
	if j.Header.HasKid {
		k, ok := s.keys.Lookup(j.Header.Kid)
		if !ok {
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

// SigningTTLs maps each signing key's kid to the longest TTL it signs for.
func (s *Service) SigningTTLs() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range s.profiles {
		if p.TTL > out[p.Key.Kid()] {
			out[p.Key.Kid()] = p.TTL
		}
	}
	return out
}

// Profiles returns the profiles sorted by name.
func (s *Service) Profiles() []*Profile {
	out := make([]*Profile, 0, len(s.profiles))
	for _, p := range s.profiles {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
