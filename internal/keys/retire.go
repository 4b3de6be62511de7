package keys

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Use is what a set of keys is used for: the keys, and for each key that
// signs, the longest token life it signs for.
type Use struct {
	Keys    *Set
	Signing map[string]time.Duration // kid → longest TTL
}

// Retirements enforces, across reloads of configured keys, that a key is
// not removed while tokens it signed may still be live: a key that signs
// now cannot be removed, and a key that stopped signing can be removed once
// the longest TTL it signed for and the verifier's leeway have passed. It
// remembers only what this process saw; managed keys keep this rule in the
// store, across restarts (Policy.Keep).
type Retirements struct {
	until map[string]time.Time // kid → when its tokens are all expired
}

// Check refuses to go from cur to next if next drops a key that may have
// live tokens; on success it records the keys next stops signing with.
func (r *Retirements) Check(cur, next Use, leeway time.Duration, now time.Time) error {
	if r.until == nil {
		r.until = map[string]time.Time{}
	}
	var refused []string
	for _, k := range cur.Keys.All() {
		if _, kept := next.Keys.Lookup(k.Kid()); kept {
			continue
		}
		if _, ok := cur.Signing[k.Kid()]; ok {
			refused = append(refused, fmt.Sprintf("%q signs now; make it verify-only first", k.Kid()))
		} else if until, ok := r.until[k.Kid()]; ok && now.Before(until) {
			refused = append(refused, fmt.Sprintf("%q may have live tokens until %s", k.Kid(), until.Format(time.RFC3339)))
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return fmt.Errorf("refusing to remove keys: %s", strings.Join(refused, "; "))
	}
	for kid, ttl := range cur.Signing {
		if _, still := next.Signing[kid]; !still {
			r.until[kid] = now.Add(ttl + leeway)
		}
	}
	return nil
}
