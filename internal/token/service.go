package token

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
)

// MaxLeeway bounds the clock-skew allowance of verification.
const MaxLeeway = 60 * time.Second

// Errors of issuing.
var (
	ErrUnknownProfile = errors.New("unknown profile")
	ErrTTLTooLong     = errors.New("ttl exceeds the profile's")
)

// Options are a Service's clock, randomness and leeway. The zero value uses
// the system clock, crypto/rand and no leeway.
type Options struct {
	Now    func() time.Time
	Rand   io.Reader
	Leeway time.Duration
}

// Service mints and verifies tokens with one set of keys and profiles. It is
// immutable and safe for concurrent use; a reload builds a new one.
type Service struct {
	keys     *keys.Set
	profiles map[string]*Profile
	kidless  map[string][]*keys.Key // alg → candidate keys for kid-less tokens, signing keys first
	jwks     []byte
	opts     Options
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
	s := &Service{keys: set, profiles: make(map[string]*Profile, len(specs)), kidless: map[string][]*keys.Key{}, opts: opts}
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

// Issue mints a token with the named profile.
func (s *Service) Issue(profile string, r Request) (*Issued, error) {
	p, ok := s.profiles[profile]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownProfile, profile)
	}
	ttl := p.TTL
	if r.TTL > 0 {
		if r.TTL > p.TTL {
			return nil, fmt.Errorf("%w: %s > %s", ErrTTLTooLong, r.TTL, p.TTL)
		}
		ttl = r.TTL
	}
	var nonce [16]byte
	if _, err := io.ReadFull(s.opts.Rand, nonce[:]); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	jti := hex.EncodeToString(nonce[:])
	now := s.opts.Now()
	iat := now.Add(-p.Backdate).Unix()
	exp := iat + int64(ttl/time.Second)

	var claims any
	switch p.Layout {
	case LayoutAppVerify:
		claims = appVerifyClaims{Iss: p.Issuer, Iat: iat, Exp: exp, Phn: r.Phone, Xid: r.XID, Jti: jti}
	case LayoutCastlabs:
		c := castlabsClaims{Iat: iat, Jti: jti}
		c.Payload.Data, c.Payload.Date = r.Data, now.UTC().Format(time.DateOnly)
		claims = c
	default:
		aud := r.Audience
		if aud == "" {
			aud = p.Audience
		}
		claims = defaultClaims{Iss: p.Issuer, Sub: r.Subject, Aud: aud, Iat: iat, Exp: exp, Jti: jti}
	}
	body, err := marshal(claims)
	if err != nil {
		return nil, err
	}
	if p.Layout == LayoutDefault && len(r.Data) > 0 {
		name, err := marshal(p.DataClaim)
		if err != nil {
			return nil, err
		}
		var data bytes.Buffer
		if err := json.Compact(&data, r.Data); err != nil {
			return nil, fmt.Errorf("data is not JSON: %w", err)
		}
		body = append(body[:len(body)-1], ',')
		body = append(append(append(body, name...), ':'), data.Bytes()...)
		body = append(body, '}')
	}
	input := p.headerSegment + "." + base64.RawURLEncoding.EncodeToString(body)
	sig, err := p.Key.Sign(input)
	if err != nil {
		return nil, fmt.Errorf("signing with %q: %w", p.Key.Kid(), err)
	}
	return &Issued{
		Token:   input + "." + base64.RawURLEncoding.EncodeToString(sig),
		Profile: p.Name, JTI: jti, Kid: p.Key.Kid(), Alg: p.Key.Alg(),
		IssuedAt: time.Unix(iat, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(), MintedAt: now.UTC(),
	}, nil
}

type appVerifyClaims struct {
	Iss string `json:"iss"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Phn string `json:"phn"`
	Xid string `json:"xid"`
	Jti string `json:"jti"`
}

type castlabsClaims struct {
	Iat     int64  `json:"iat"`
	Jti     string `json:"jti"`
	Payload struct {
		Data json.RawMessage `json:"data"`
		Date string          `json:"date"`
	} `json:"payload"`
}

type defaultClaims struct {
	Iss string `json:"iss,omitempty"`
	Sub string `json:"sub,omitempty"`
	Aud string `json:"aud,omitempty"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

// marshal is compact JSON without HTML escaping, as the seeds' Python made it.
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

// Verify applies all of SPEC §5 to a token: the JWS layer (Decode,
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
	c, err := s.CheckClaims(j, true)
	if err != nil {
		return nil, err
	}
	return &Verified{JWS: j, Claims: c, Key: key}, nil
}

// CheckClaims reads a JWS's payload as JWT claims and applies exp, nbf and
// iat at the service's clock and leeway. Without requireExp, a token with
// no exp passes (the seed 003 layout has none); one that has it is held to it.
func (s *Service) CheckClaims(j *JWS, requireExp bool) (*Claims, error) {
	c, err := parseClaims(j.Payload, requireExp)
	if err != nil {
		return nil, err
	}
	if err := c.checkTimes(s.opts.Now(), s.opts.Leeway); err != nil {
		return nil, err
	}
	return c, nil
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

// Profiles returns the profiles sorted by name.
func (s *Service) Profiles() []*Profile {
	out := make([]*Profile, 0, len(s.profiles))
	for _, p := range s.profiles {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
