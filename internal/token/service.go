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
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/plaintext"
	"github.com/jwtd/jwtd/internal/suggest"
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
	// Known is the history of the keys jwtd has had (KnownKeys), which
	// holds its tokens to its rules after their key left the key set.
	Known  []keys.KnownKey
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
	own      map[string]ownKey           // every key jwtd has or had, by fingerprint (keys.Fingerprint)
	gone     map[string]bool             // kids of keys jwtd had and no longer has

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
		recorded: map[*keys.Key]bool{}, noExpTTL: map[*keys.Key]time.Duration{}, own: map[string]ownKey{}, gone: map[string]bool{},
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
	s.learnKeys()
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
	for _, f := range [...]struct{ name, text string }{{"sub", r.Subject}, {"aud", r.Audience}} {
		if err := plaintext.Check(f.name, f.text); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
		}
	}
	switch {
	case r.TTL > p.TTL:
		return fmt.Errorf("%w: %s > %s; ask for %s or less, or raise profiles.%s.ttl", ErrTTLTooLong, r.TTL, p.TTL, p.TTL, p.Name)
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
		return nil, s.UnknownProfile(profile)
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
// UnknownProfile is the error for a profile name s lacks: ErrUnknownProfile,
// the profile most likely meant, and every profile's name.
func (s *Service) UnknownProfile(name string) error {
	var names []string
	for _, p := range s.Profiles() {
		names = append(names, p.Name)
	}
	hint := ""
	if near := suggest.Nearest(name, names); near != "" {
		hint = fmt.Sprintf("did you mean %s? ", near)
	}
	return fmt.Errorf("%w %q: %sthe profiles are %s", ErrUnknownProfile, name, hint, strings.Join(names, ", "))
}

func (s *Service) Profiles() []*Profile {
	out := make([]*Profile, 0, len(s.profiles))
	for _, p := range s.profiles {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
