package keys

import (
	"fmt"
	"slices"
	"time"
)

// Policy is how the keys of a managed profile live, so that no verifier can
// trip over a rotation: a key is published PublishLead before it signs
// (verifiers that cache the JWKS for its max-age have it by then), signs
// for RotateEvery, and verifies for Keep after it stops signing (every
// token it signed is past its exp and the leeway by then).
type Policy struct {
	Alg string
	// Text makes a generated secret printable text whose bytes are the
	// key, for clients that can only send a key as a string (the castlabs
	// layout's Signing_key).
	Text bool
	// RotateEvery is how long a key signs; 0 is until a rotation by hand
	// (the seed layouts' secrets, which their clients hold).
	RotateEvery time.Duration
	// PublishLead is how long a key is published before it signs: the
	// JWKS max-age, two sync intervals and the leeway (jwks_max_age + 2 ×
	// sync_interval + leeway), so that a verifier caching the JWKS has it
	// first even from an instance a sync late, with clocks the leeway apart.
	PublishLead time.Duration
	// Keep is how long a key verifies after it stops signing: the
	// profile's longest token life, three leeways and a sync interval
	// (ttl + 3 × leeway + sync_interval), so that every token it signed,
	// even by an instance a sync late with its clock the leeway ahead, has
	// expired at every verifier before any instance deletes it.
	Keep time.Duration
}

// Check refuses a policy under which a key would sign before verifiers
// can have it, or rotate faster than it can be published.
func (p Policy) Check() error {
	switch {
	case !Supported(p.Alg):
		return fmt.Errorf("managed keys: alg %q is not supported", p.Alg)
	case p.RotateEvery < 0 || p.PublishLead <= 0 || p.Keep <= 0:
		return fmt.Errorf("managed keys: rotate_every must be at least 0, the publishing lead and the keep time positive")
	case p.RotateEvery > 0 && p.RotateEvery < p.PublishLead:
		return fmt.Errorf("managed keys: rotate_every (%s) is shorter than the time a key is published before it signs (%s)", p.RotateEvery, p.PublishLead)
	}
	return nil
}

// MakeKey makes a new key for a keyring: its kid, alg and sealed private
// material, in state next; Advance sets its times.
type MakeKey func(alg string) (ManagedKey, error)

// Advance brings a profile's managed keys to now under the policy, and
// reports whether anything changed (so that the caller writes the keyring,
// by compare-and-swap). It is a pure function of its arguments: any
// instance may run it, and the one whose write wins decides.
//
//   - A retired key past its deletion time goes.
//   - A next key whose activation time has come becomes current; the key
//     that was current retires, kept for Keep.
//   - With no current key at all (the first start), one is made that signs
//     at once: no verifier can have cached a key set yet.
//   - With a current key due to retire within PublishLead and no next key,
//     a next key is made, to sign when the current one retires, and never
//     less than PublishLead from now.
func Advance(ring []ManagedKey, p Policy, now time.Time, generate MakeKey) ([]ManagedKey, bool, error) {
	out := slices.Clone(ring)
	changed := false

	// Deletions.
	out = slices.DeleteFunc(out, func(k ManagedKey) bool {
		gone := k.State == KeyRetired && !k.Deletes.After(now)
		changed = changed || gone
		return gone
	})

	// Activation: the latest next key whose time has come.
	activate := -1
	for i, k := range out {
		if k.State == KeyNext && !k.Activates.After(now) && (activate < 0 || k.Activates.After(out[activate].Activates)) {
			activate = i
		}
	}
	if activate >= 0 {
		for i := range out {
			if out[i].State == KeyCurrent || out[i].State == KeyNext && i != activate && !out[i].Activates.After(now) {
				out[i].State, out[i].Retires, out[i].Deletes = KeyRetired, now, now.Add(p.Keep)
			}
		}
		out[activate].State = KeyCurrent
		out[activate].Retires = p.retires(out[activate].Activates)
		changed = true
	}

	current := slices.IndexFunc(out, func(k ManagedKey) bool { return k.State == KeyCurrent })
	hasNext := slices.ContainsFunc(out, func(k ManagedKey) bool { return k.State == KeyNext })
	switch {
	case current < 0 && !hasNext:
		k, err := generate(p.Alg)
		if err != nil {
			return ring, false, err
		}
		k.State, k.Created, k.Activates, k.Retires = KeyCurrent, now, now, p.retires(now)
		out = append(out, k)
		changed = true
	case current >= 0 && !hasNext && !out[current].Retires.IsZero() && !out[current].Retires.After(now.Add(p.PublishLead)):
		k, err := generate(p.Alg)
		if err != nil {
			return ring, false, err
		}
		k.State, k.Created = KeyNext, now
		k.Activates = out[current].Retires
		if earliest := now.Add(p.PublishLead); k.Activates.Before(earliest) {
			// Published late (a rotation by hand, an instance that was
			// down): the current key signs until its successor can.
			k.Activates = earliest
			out[current].Retires = earliest
		}
		out = append(out, k)
		changed = true
	}
	return out, changed, nil
}

// retires is when a key that signs from activates stops: the zero time
// when the policy never rotates.
func (p Policy) retires(activates time.Time) time.Time {
	if p.RotateEvery == 0 {
		return time.Time{}
	}
	return activates.Add(p.RotateEvery)
}

// RotateNow makes a keyring's current key due now, so that the next
// Advance publishes its successor, which signs PublishLead later: a
// rotation started by hand keeps the rule that verifiers have a key
// before it signs.
func RotateNow(ring []ManagedKey, now time.Time) ([]ManagedKey, bool) {
	out := slices.Clone(ring)
	if slices.ContainsFunc(out, func(k ManagedKey) bool { return k.State == KeyNext }) {
		return out, false // a rotation is under way already
	}
	for i := range out {
		if out[i].State == KeyCurrent && (out[i].Retires.IsZero() || out[i].Retires.After(now)) {
			out[i].Retires = now
			return out, true
		}
	}
	return out, false
}
