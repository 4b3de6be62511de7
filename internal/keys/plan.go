package keys

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Builtin is how jwtd makes the keys of a built-in profile that has no
// configured key: the default profile's rotate every DefaultRotateEvery;
// the seed layouts' secrets, which their clients hold, change only by
// hand (jwtd keys rotate).
var Builtin = map[string]Policy{
	"default":   {Alg: "ES256", RotateEvery: DefaultRotateEvery},
	"appverify": {Alg: "HS256"},
	"castlabs":  {Alg: "HS512", Text: true},
}

// DefaultRotateEvery is how long a managed key signs unless a profile says.
const DefaultRotateEvery = 720 * time.Hour

// Timing is what the managed keys' timing rules are derived from: the
// JWKS's max-age, how often every instance syncs the keyrings, and the
// clock skew verification allows.
type Timing struct {
	JWKSMaxAge   time.Duration
	SyncInterval time.Duration
	Leeway       time.Duration
}

// PublishLead is how long a managed key is published before it signs:
// verifiers that cache the JWKS for its max-age have it by then, though
// every instance may take a sync interval to publish it (and the second
// one covers a sync's own time), and the clock of the instance that
// activates it may be the leeway ahead of the one that made it.
func (t Timing) PublishLead() time.Duration { return t.JWKSMaxAge + 2*t.SyncInterval + t.Leeway }

// Keep is how long a managed key verifies after it stops signing, for a
// profile whose tokens live lifetime: an instance may sign with it until
// its next sync, with a clock up to the leeway ahead of the verifier's;
// the verifier accepts the token until its exp plus the leeway; and the
// instance that deletes the key may be the leeway ahead of the one that
// retired it.
func (t Timing) Keep(lifetime time.Duration) time.Duration {
	return lifetime + 3*t.Leeway + t.SyncInterval
}

// ProfileKeys is what a profile's configuration says of its keys: a
// configured key (Key), managed keys (Managed), or, for a built-in
// profile, neither; and how long its tokens live.
type ProfileKeys struct {
	Key      string
	Managed  *ManagedSpec
	Lifetime time.Duration
}

// Plan returns the policies of the profiles whose keys jwtd makes: those
// with Managed, and the built-in ones with neither a key nor Managed. A
// built-in profile's managed keys keep its algorithm (what its clients
// expect) unless another is asked for.
func Plan(profiles map[string]ProfileKeys, t Timing) (map[string]Policy, error) {
	names := make([]string, 0, len(profiles))
	for name := range profiles {
		names = append(names, name)
	}
	sort.Strings(names)
	policies := map[string]Policy{}
	var errs []error
	for _, name := range names {
		spec := profiles[name]
		var p Policy
		switch builtin, isBuiltin := Builtin[name]; {
		case spec.Key != "" && spec.Managed != nil:
			errs = append(errs, fmt.Errorf("profiles.%s: give key (a configured key) or managed (keys jwtd makes and rotates), not both", name))
			continue
		case spec.Key != "":
			continue
		case spec.Managed != nil:
			p = Policy{Alg: spec.Managed.Alg, RotateEvery: spec.Managed.RotateEvery}
			if isBuiltin && (p.Alg == "" || p.Alg == builtin.Alg) {
				p.Alg, p.Text = builtin.Alg, builtin.Text
			}
			if p.Alg == "" {
				p.Alg = "ES256"
			}
			if p.RotateEvery == 0 {
				p.RotateEvery = DefaultRotateEvery
			}
		case isBuiltin:
			p = builtin
		default:
			continue // the token service says it has no key
		}
		p.PublishLead = t.PublishLead()
		p.Keep = t.Keep(spec.Lifetime)
		if err := p.Check(); err != nil {
			errs = append(errs, fmt.Errorf("profiles.%s.managed: %s", name, strings.TrimPrefix(err.Error(), "managed keys: ")))
			continue
		}
		policies[name] = p
	}
	return policies, errors.Join(errs...)
}
