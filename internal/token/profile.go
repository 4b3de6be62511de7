package token

import (
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
)

// Layout is a token's header and claims recipe.
type Layout string

// The three layouts. The seed layouts are byte-compatible with the tokens
// of the services jwtd replaces and carry no kid.
const (
	// LayoutAppVerify is seed 000 (TeleSign App Verify): header
	// {"alg":..,"typ":"JWT"}, claims iss, iat, exp, phn, xid, jti.
	LayoutAppVerify Layout = "appverify"
	// LayoutCastlabs is seed 003: header {"typ":"JWT","alg":..}, claims
	// iat, jti, payload {data, date}.
	LayoutCastlabs Layout = "castlabs"
	// LayoutDefault is jwtd's own: header {"alg","kid","typ"}, claims
	// iss, sub, aud, iat, exp, jti and the caller's data.
	LayoutDefault Layout = "default"
)

// ProfileSpec is a profile as configured.
type ProfileSpec struct {
	Key        string            // kid of the signing key
	Managed    *keys.ManagedSpec // instead of Key: keys jwtd makes, keeps and rotates
	VerifyKeys []string          // kids that still verify this profile's tokens (rotation)
	Layout     Layout
	Issuer     string
	Audience   string
	TTL        time.Duration
	Backdate   time.Duration // iat = now − backdate
	DataClaim  string        // default layout: the claim that carries caller data
	Record     *bool         // record every token (default true)
	StoreToken bool
}

// DefaultTTL is the lifetime of a profile's tokens when it sets none.
const DefaultTTL = 5 * time.Minute

// Lifetime is the profile's token lifetime, its ttl or DefaultTTL.
func (s ProfileSpec) Lifetime() time.Duration {
	if s.TTL == 0 {
		return DefaultTTL
	}
	return s.TTL
}

// BuiltinProfiles are the three built-in profiles' defaults; their Key is
// empty until configured or generated.
func BuiltinProfiles() map[string]ProfileSpec {
	return map[string]ProfileSpec{
		"appverify": {Layout: LayoutAppVerify, Issuer: "jwtd", TTL: 90 * time.Second, Backdate: 10 * time.Second},
		"castlabs":  {Layout: LayoutCastlabs, TTL: 24 * time.Hour},
		"default":   {Layout: LayoutDefault, Issuer: "jwtd", TTL: 5 * time.Minute, DataClaim: "data"},
	}
}

// Profile is a checked, ready-to-use profile.
type Profile struct {
	Name       string
	Layout     Layout
	Key        *keys.Key
	VerifyKeys []*keys.Key
	Issuer     string
	Audience   string
	TTL        time.Duration
	Backdate   time.Duration
	DataClaim  string
	Record     bool
	StoreToken bool

	headerSegment string // base64url of the header, fixed per profile
}

// KidInHeader reports whether the profile's tokens carry their kid.
func (p *Profile) KidInHeader() bool { return p.Layout == LayoutDefault }

var registeredClaims = []string{"iss", "sub", "aud", "iat", "exp", "nbf", "jti", "phn", "xid"}

func newProfile(name string, spec ProfileSpec, set *keys.Set) (*Profile, error) {
	if spec.Layout == "" {
		spec.Layout = LayoutDefault
	}
	p := &Profile{
		Name: name, Layout: spec.Layout, Issuer: spec.Issuer, Audience: spec.Audience,
		TTL: spec.TTL, Backdate: spec.Backdate, DataClaim: spec.DataClaim,
		Record: spec.Record == nil || *spec.Record, StoreToken: spec.StoreToken,
	}
	switch p.Layout {
	case LayoutAppVerify, LayoutCastlabs:
	case LayoutDefault:
		if p.DataClaim == "" {
			p.DataClaim = "data"
		}
		if slices.Contains(registeredClaims, p.DataClaim) {
			return nil, fmt.Errorf("profile %q: data_claim %q would overwrite a registered claim", name, p.DataClaim)
		}
	default:
		return nil, fmt.Errorf("profile %q: layout %q is not appverify, castlabs or default", name, p.Layout)
	}
	p.TTL = spec.Lifetime()
	if p.TTL < time.Second {
		return nil, fmt.Errorf("profile %q: ttl must be at least 1s", name)
	}
	if p.Backdate < 0 || p.Backdate >= p.TTL {
		return nil, fmt.Errorf("profile %q: backdate must be at least 0 and less than ttl", name)
	}
	k, ok := set.Lookup(spec.Key)
	if !ok {
		return nil, fmt.Errorf("profile %q: signing key %q is not among the keys", name, spec.Key)
	}
	if !k.CanSign() {
		return nil, fmt.Errorf("profile %q: key %q has no private part to sign with", name, spec.Key)
	}
	if k.PublishOnly() {
		return nil, fmt.Errorf("profile %q: key %q is publish_only and may not sign yet", name, spec.Key)
	}
	p.Key = k
	for _, kid := range spec.VerifyKeys {
		vk, ok := set.Lookup(kid)
		if !ok {
			return nil, fmt.Errorf("profile %q: verify key %q is not among the keys", name, kid)
		}
		p.VerifyKeys = append(p.VerifyKeys, vk)
	}
	var header string
	switch p.Layout {
	case LayoutAppVerify:
		header = fmt.Sprintf(`{"alg":%q,"typ":"JWT"}`, k.Alg())
	case LayoutCastlabs:
		header = fmt.Sprintf(`{"typ":"JWT","alg":%q}`, k.Alg())
	default:
		kid, err := marshal(k.Kid())
		if err != nil {
			return nil, err
		}
		header = fmt.Sprintf(`{"alg":%q,"kid":%s,"typ":"JWT"}`, k.Alg(), kid)
	}
	p.headerSegment = base64.RawURLEncoding.EncodeToString([]byte(header))
	return p, nil
}
