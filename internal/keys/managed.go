package keys

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// SealedKeys makes new managed keys sealed under s: an asymmetric key as
// PKCS #8 PEM, its kid the RFC 7638 thumbprint; a secret as its bytes, its
// kid random. With text, a secret is printable (hex digits), for clients
// that send it as a string. The plaintext never leaves this function but
// sealed.
func SealedKeys(s *Sealer, text bool) MakeKey {
	return func(alg string) (ManagedKey, error) {
		material, err := Generate(alg)
		if err != nil {
			return ManagedKey{}, err
		}
		kid := ""
		if secret, ok := material.([]byte); ok {
			kid = SecretKid()
			if text {
				material = hex.AppendEncode(nil, secret)
			}
		}
		k, err := New(kid, alg, material)
		if err != nil {
			return ManagedKey{}, err
		}
		if kid == "" {
			if k.kid, err = Thumbprint(k.Public()); err != nil {
				return ManagedKey{}, err
			}
		}
		return seal(s, k)
	}
}

// SecretKid is a new kid for a secret, which has no thumbprint to name it:
// "hs-" and 72 random bits, so that kids of keys made apart never meet.
func SecretKid() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return "hs-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// seal makes a key a managed one, its private material sealed under s.
func seal(s *Sealer, k *Key) (ManagedKey, error) {
	plain := k.Secret()
	if plain == nil {
		var err error
		if plain, err = MarshalPrivatePEM(k.private); err != nil {
			return ManagedKey{}, fmt.Errorf("key %q: %w", k.kid, err)
		}
	}
	sealed, err := s.Seal(k.kid, plain)
	if err != nil {
		return ManagedKey{}, err
	}
	return ManagedKey{Kid: k.kid, Alg: k.alg, Private: sealed}, nil
}

// OpenRing opens a keyring's keys: the current one, which signs, and every
// one (next, current, retired), which verify and are published. A key that
// does not open (a wrong master key, an altered row) is an error: an
// instance that cannot open its keys must not serve.
func OpenRing(ring Keyring, s *Sealer) (current *Key, all []*Key, err error) {
	for _, mk := range ring.Keys {
		plain, err := s.Open(mk.Kid, mk.Private)
		if err != nil {
			return nil, nil, fmt.Errorf("the keys of profile %q: %w", ring.Profile, err)
		}
		var material any = plain
		if !IsHMAC(mk.Alg) {
			if material, err = ParsePrivatePEM(plain); err != nil {
				return nil, nil, fmt.Errorf("managed key %q: %w", mk.Kid, err)
			}
		}
		k, err := New(mk.Kid, mk.Alg, material)
		if err != nil {
			return nil, nil, fmt.Errorf("managed key %q: %w", mk.Kid, err)
		}
		k.publishOnly = mk.State == KeyNext
		all = append(all, k)
		if mk.State == KeyCurrent {
			current = k
		}
	}
	if current == nil {
		return nil, nil, fmt.Errorf("the keyring of %q has no current key", ring.Profile)
	}
	return current, all, nil
}

// Errors of Manager.Rotate.
var (
	ErrNotManaged = errors.New("the profile's keys are not managed")
	ErrRotating   = errors.New("a rotation is under way")
)

// Manager keeps the keyrings of the managed profiles in the record store,
// sealed under its Sealer, each under its Policy. Every instance on one
// store has one; any of them may advance a keyring at any time, and a
// compare-and-swap on the keyring's version decides whose change stands.
type Manager struct {
	Store    KeyStore
	Sealer   *Sealer
	Policies map[string]Policy // by profile
}

// syncAttempts bounds the compare-and-swap retries of one change: each
// retry means another instance wrote the keyring, and the next read sees
// what it wrote.
const syncAttempts = 5

// ErrRegressed is Sync finding a keyring older than one it saw: a
// restored backup, or a row deleted by hand. Advancing it would sign with
// keys no verifier has, or with keys long retired.
var ErrRegressed = errors.New("the keyring went back to an older version")

// Sync brings every managed profile's keyring to now and returns them,
// with the changes this call wrote (even when a later profile fails, and
// the keyrings are not returned): each change of a shared keyring is
// returned by at most one instance, the one whose write stood and was
// told so. seen holds the
// versions this instance last read (nil at start): a keyring older than
// that is ErrRegressed, and is neither advanced nor written.
func (m *Manager) Sync(ctx context.Context, now time.Time, seen map[string]int64) (map[string]Keyring, []Change, error) {
	out := make(map[string]Keyring, len(m.Policies))
	var wrote []Change
	for _, profile := range m.profiles() {
		ring, changes, err := m.update(ctx, profile, now, true, func(ring Keyring) ([]ManagedKey, error) {
			if ring.Version < seen[profile] {
				return nil, fmt.Errorf("%w: profile %q is at version %d, after version %d was read (a restored backup, or a keyring deleted?); "+
					"restart jwtd to take the store as it is now", ErrRegressed, profile, ring.Version, seen[profile])
			}
			return ring.Keys, nil
		})
		wrote = append(wrote, changes...)
		if err != nil {
			return nil, wrote, err
		}
		out[profile] = ring
	}
	return out, wrote, nil
}

// Read returns every managed profile's keyring as stored, changing
// nothing: what a command other than serve uses. A profile without one is
// an error, since only serve makes keys.
func (m *Manager) Read(ctx context.Context) (map[string]Keyring, error) {
	out := make(map[string]Keyring, len(m.Policies))
	for _, profile := range m.profiles() {
		ring, err := m.Store.Keyring(ctx, profile)
		if err != nil {
			return nil, err
		}
		if ring.Version == 0 {
			return nil, fmt.Errorf("the key store has no keys for profile %q (jwtd serve makes them on its first start)", profile)
		}
		out[profile] = ring
	}
	return out, nil
}

// Rotate starts a rotation of a profile's keys now: it makes the current
// key due, and the next Sync (of any instance, under its policy) makes its
// successor, published at once and signing PublishLead later, so that a
// rotation by hand keeps the rule that verifiers have a key before it
// signs. It makes no key itself: a command run with another configuration
// than the servers' cannot set their timing.
func (m *Manager) Rotate(ctx context.Context, profile string, now time.Time) (Keyring, error) {
	if _, ok := m.Policies[profile]; !ok {
		return Keyring{}, fmt.Errorf("%w: profile %q signs with a configured key; rotate it by changing the configuration", ErrNotManaged, profile)
	}
	ring, _, err := m.update(ctx, profile, now, false, func(r Keyring) ([]ManagedKey, error) {
		ring := r.Keys
		out, ok := RotateNow(ring, now)
		if !ok {
			if i := slices.IndexFunc(ring, func(k ManagedKey) bool { return k.State == KeyNext }); i >= 0 {
				return nil, fmt.Errorf("%w: key %q signs from %s", ErrRotating, ring[i].Kid, ring[i].Activates.UTC().Format(time.RFC3339))
			}
		}
		return out, nil
	})
	return ring, err
}

// Adopt makes k, a key that already signs (one kept in a file by an
// earlier jwtd), the current key of a profile that has no keyring yet, so
// that what it signed keeps verifying. It reports false, and changes
// nothing, when the profile has keys already.
func (m *Manager) Adopt(ctx context.Context, profile string, k *Key, now time.Time) (bool, error) {
	p, ok := m.Policies[profile]
	if !ok {
		return false, fmt.Errorf("%w: %q", ErrNotManaged, profile)
	}
	mk, err := seal(m.Sealer, k)
	if err != nil {
		return false, err
	}
	mk.State, mk.Created, mk.Activates, mk.Retires = KeyCurrent, now, now, p.retires(now)
	_, err = m.Store.PutKeyring(ctx, Keyring{Profile: profile, Keys: []ManagedKey{mk}})
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// Reseal seals every stored key (of every profile, managed now or not)
// under the first master key, and returns how many it resealed: after it,
// the other master keys can be dropped.
func (m *Manager) Reseal(ctx context.Context, now time.Time) (int, error) {
	rings, err := m.Store.Keyrings(ctx)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, r := range rings {
		n := 0
		_, _, err := m.update(ctx, r.Profile, now, false, func(ring Keyring) ([]ManagedKey, error) {
			out := slices.Clone(ring.Keys)
			n = 0
			for i, k := range out {
				if m.Sealer.SealedUnderFirst(k.Private) {
					continue
				}
				plain, err := m.Sealer.Open(k.Kid, k.Private)
				if err != nil {
					return nil, err
				}
				if out[i].Private, err = m.Sealer.Seal(k.Kid, plain); err != nil {
					return nil, err
				}
				n++
			}
			return out, nil
		})
		if err != nil {
			return total, fmt.Errorf("resealing the keys of %q: %w", r.Profile, err)
		}
		total += n
	}
	return total, nil
}

// update reads a profile's keyring, applies change, and with advance (for
// a profile with a policy) Advance, and writes it back by compare-and-swap
// when anything changed, reading again when another instance wrote first;
// it returns the keyring and the changes of state it wrote. It writes
// nothing unless every stored key opens: an instance given a wrong master
// key must not add keys the others cannot open.
func (m *Manager) update(ctx context.Context, profile string, now time.Time, advance bool, change func(Keyring) ([]ManagedKey, error)) (Keyring, []Change, error) {
	p, managed := m.Policies[profile]
	for range syncAttempts {
		ring, err := m.Store.Keyring(ctx, profile)
		if err != nil {
			return ring, nil, err
		}
		for _, k := range ring.Keys {
			if _, err := m.Sealer.Open(k.Kid, k.Private); err != nil {
				return ring, nil, fmt.Errorf("the keys of profile %q: %w", profile, err)
			}
		}
		keys, err := change(ring)
		if err != nil {
			return ring, nil, err
		}
		if advance && managed {
			if keys, _, err = Advance(keys, p, now, SealedKeys(m.Sealer, p.Text)); err != nil {
				return ring, nil, err
			}
		}
		if slices.EqualFunc(keys, ring.Keys, sameManagedKey) {
			return ring, nil, nil
		}
		next := Keyring{Profile: profile, Version: ring.Version, Keys: keys}
		v, err := m.Store.PutKeyring(ctx, next)
		switch {
		case err == nil:
			next.Version = v
			return next, Changes(profile, ring.Keys, keys), nil
		case !errors.Is(err, ErrConflict):
			return ring, nil, err
		}
	}
	return Keyring{}, nil, fmt.Errorf("the keyring of %q kept changing under %d attempts to write it", profile, syncAttempts)
}

func sameManagedKey(a, b ManagedKey) bool {
	return a.Kid == b.Kid && a.State == b.State && a.Created.Equal(b.Created) && a.Activates.Equal(b.Activates) &&
		a.Retires.Equal(b.Retires) && a.Deletes.Equal(b.Deletes) && string(a.Private) == string(b.Private)
}

func (m *Manager) profiles() []string {
	names := make([]string, 0, len(m.Policies))
	for name := range m.Policies {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Info is what may be shown of a key: never its material.
type Info struct {
	Profile   string     `json:"profile"`
	Kid       string     `json:"kid"`
	Alg       string     `json:"alg"`
	State     string     `json:"state"` // next, current, retired, or configured
	Created   *time.Time `json:"created,omitempty"`
	Activates *time.Time `json:"activates,omitempty"`
	Retires   *time.Time `json:"retires,omitempty"`
	Deletes   *time.Time `json:"deletes,omitempty"`
}

// Infos describes a keyring's keys.
func Infos(ring Keyring) []Info {
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	out := make([]Info, 0, len(ring.Keys))
	for _, k := range ring.Keys {
		out = append(out, Info{Profile: ring.Profile, Kid: k.Kid, Alg: k.Alg, State: string(k.State),
			Created: at(k.Created), Activates: at(k.Activates), Retires: at(k.Retires), Deletes: at(k.Deletes)})
	}
	return out
}

// PendingRotations are the profiles of list whose rotation was started
// (their current key is due to retire) and whose next key no instance has
// made yet: the servers make it at their next sync.
func PendingRotations(list []Info, now time.Time) []string {
	var out []string
	for _, k := range list {
		if k.State != string(KeyCurrent) || k.Retires == nil || k.Retires.After(now) {
			continue
		}
		if !slices.ContainsFunc(list, func(o Info) bool { return o.Profile == k.Profile && o.State == string(KeyNext) }) {
			out = append(out, k.Profile)
		}
	}
	return out
}
