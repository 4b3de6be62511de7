package keys

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The timing Plan derives, simulated: instances whose clocks differ by
// up to the leeway, each syncing the keyring every sync interval at its
// own phase, sign tokens with the key they last read; a verifier with a
// clock of its own caches the JWKS of a random instance for its max-age,
// and introspection asks any instance. No token may meet an unknown kid
// while the verifier (or the instance asked) still accepts it: until its
// exp plus the leeway. The worst case is at the extremes, so the clocks
// are put there, and half the syncs fail (the instance is drained until
// one succeeds), so that any instance may be the first to act.
//
// The simulation is sensitive to the margins: taking the leeway out of
// the publishing lead, or the sync interval or two leeways out of the keep
// time, fails it within 40 seeds. (The keep time's third leeway covers an
// ordering of clocks this model does not reach: see Timing.Keep.)
func TestKeyTimingUnderSkew(t *testing.T) {
	timing := Timing{Leeway: 30 * time.Second, SyncInterval: 10 * time.Second, JWKSMaxAge: time.Minute}
	policies, err := Plan(map[string]ProfileKeys{"default": {Managed: &ManagedSpec{Alg: "ES256", RotateEvery: 8 * time.Minute}, Lifetime: 3 * time.Minute}}, timing)
	if err != nil {
		t.Fatal(err)
	}
	policy := policies["default"]
	for seed := range uint64(40) {
		if err := simulateKeyTiming(seed, policy, timing.Leeway, timing.SyncInterval, timing.JWKSMaxAge, 3*time.Minute); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
}

// simulateKeyTiming runs three instances and six verifiers for two hours
// of one-second steps, and returns the first token that could not be
// verified while it should have been.
func simulateKeyTiming(seed uint64, p Policy, leeway, syncEvery, maxAge, ttl time.Duration) error {
	rng := rand.New(rand.NewPCG(seed, 1))
	skew := func() time.Duration { // the clocks sit at the edges of a spread of one leeway
		if rng.IntN(2) == 0 {
			return -leeway / 2
		}
		return leeway / 2
	}
	n := 0
	newKey := func(alg string) (ManagedKey, error) {
		n++
		return ManagedKey{Kid: fmt.Sprint("k", n), Alg: alg}, nil
	}
	type clock struct {
		offset time.Duration
		next   time.Duration // its next sync (instance) or JWKS fetch (verifier)
		view   []ManagedKey
		ready  bool // an instance whose last sync succeeded: one that failed is drained by /readyz
	}
	start := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	var store []ManagedKey
	instances, verifiers := make([]*clock, 3), make([]*clock, 6)
	for i := range instances {
		instances[i] = &clock{offset: skew()} // each syncs before it serves
	}
	for i := range verifiers {
		verifiers[i] = &clock{offset: skew(), next: time.Duration(rng.Int64N(int64(maxAge)))}
	}
	expires := map[string]time.Time{} // kid → the latest exp it signed, on its signer's clock
	has := func(ring []ManagedKey, kid string) bool {
		return slices.ContainsFunc(ring, func(k ManagedKey) bool { return k.Kid == kid })
	}
	for now := time.Duration(0); now < 2*time.Hour; now += time.Second {
		for _, in := range instances {
			if now < in.next {
				continue
			}
			if now > 0 && rng.IntN(2) == 0 {
				// Half the rounds fail (the store away, a restart), and
				// the instance is not ready until one succeeds: then any
				// instance, the one furthest behind too, may be the first
				// to rotate, activate or delete.
				in.next, in.ready = now+syncEvery, false
				continue
			}
			next, changed, err := Advance(store, p, start.Add(now+in.offset), newKey)
			if err != nil {
				return err
			}
			if changed {
				store = next
			}
			in.view, in.ready = slices.Clone(store), true
			in.next = now + syncEvery
			if now == 0 {
				in.next = time.Duration(rng.Int64N(int64(syncEvery))) // then at its own phase
			}
		}
		ready := slices.DeleteFunc(slices.Clone(instances), func(in *clock) bool { return !in.ready })
		if len(ready) == 0 {
			continue
		}
		for _, v := range verifiers {
			if now == 0 || now >= v.next { // the JWKS of any ready instance, cached for max-age at most
				v.view = slices.Clone(ready[rng.IntN(len(ready))].view)
				if now > 0 {
					v.next = now + maxAge
				}
			}
		}
		for _, in := range ready {
			if cur := slices.IndexFunc(in.view, func(k ManagedKey) bool { return k.State == KeyCurrent }); cur >= 0 {
				if exp := start.Add(now + in.offset + ttl); exp.After(expires[in.view[cur].Kid]) {
					expires[in.view[cur].Kid] = exp
				}
			}
		}
		for kid, exp := range expires {
			stillAccepted := func(c *clock) bool { return !start.Add(now + c.offset).After(exp.Add(leeway)) }
			for i, v := range verifiers {
				if stillAccepted(v) && !has(v.view, kid) {
					return fmt.Errorf("at %s verifier %d, caching the JWKS, meets kid %s, unknown to it, in a token it still accepts", now, i, kid)
				}
			}
			for i, in := range ready {
				if stillAccepted(in) && !has(in.view, kid) {
					return fmt.Errorf("at %s instance %d meets kid %s, unknown to it, in a token it still accepts", now, i, kid)
				}
			}
		}
	}
	if n < 10 {
		return fmt.Errorf("only %d keys in two hours of 8-minute rotations", n)
	}
	return nil
}
