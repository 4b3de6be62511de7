package recordtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
)

// ManagedKeys is keys.Manager on a real store: instances that sync one
// profile at once agree on one current key; a rotation publishes the next
// key before it signs; the keys open with the master key and only with
// it, and stored reads the keyrings as the backend holds them (rows or
// documents, raw), where no key is in the clear.
func ManagedKeys(t *testing.T, store Store, stored func() [][]byte) {
	ctx := context.Background()
	oldMaster := newMasterKey()
	sealer, _ := keys.NewSealer(oldMaster)
	policy := keys.Policy{Alg: "ES256", RotateEvery: time.Hour, PublishLead: 10 * time.Minute, Keep: 20 * time.Minute}
	secrets := keys.Policy{Alg: "HS512", Text: true, PublishLead: time.Minute, Keep: time.Minute} // never rotates
	manager := func(s *keys.Sealer) *keys.Manager {
		return &keys.Manager{Store: store, Sealer: s, Policies: map[string]keys.Policy{"default": policy, "castlabs": secrets}}
	}
	m := manager(sealer)
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

	if _, err := m.Read(ctx); err == nil || !strings.Contains(err.Error(), "jwtd serve makes them") {
		t.Errorf("reading before any instance made keys: %v", err)
	}

	// Four instances start at once on an empty store.
	var wg sync.WaitGroup
	kids := make([]string, 4)
	wrote := make([][]keys.Change, 4)
	for i := range kids {
		wg.Go(func() {
			var rings map[string]keys.Keyring
			var err error
			rings, wrote[i], err = manager(sealer).Sync(ctx, t0, nil)
			if err != nil {
				t.Error(err)
				return
			}
			current, _, err := keys.OpenRing(rings["default"], sealer)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = current.Kid()
		})
	}
	wg.Wait()
	if kids[0] == "" || kids[1] != kids[0] || kids[2] != kids[0] || kids[3] != kids[0] {
		t.Fatalf("instances disagree on the current key: %v", kids)
	}
	// Each keyring was made by one of them, and only that one says so.
	var made []string
	for _, changes := range wrote {
		for _, c := range changes {
			made = append(made, fmt.Sprint(c.Profile, " ", c.Kind))
		}
	}
	if slices.Sort(made); !slices.Equal(made, []string{"castlabs activated", "default activated"}) {
		t.Errorf("the changes the four instances wrote: %v, want each keyring's first key activated once", made)
	}

	// A rotation: the next key is published, not signing, then signs.
	rings, _, err := m.Sync(ctx, t0.Add(55*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	current, all, err := keys.OpenRing(rings["default"], sealer)
	if err != nil || current.Kid() != kids[0] || len(all) != 2 || !all[1].PublishOnly() {
		t.Fatalf("with a next key: %v, %d keys, %v", current, len(all), err)
	}
	if _, err := m.Rotate(ctx, "default", t0.Add(56*time.Minute)); !errors.Is(err, keys.ErrRotating) {
		t.Errorf("rotating while a rotation is under way: %v", err)
	}
	// Published at 55 min, it signs PublishLead later: at 65 min.
	rings, _, err = m.Sync(ctx, t0.Add(66*time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	next, all, err := keys.OpenRing(rings["default"], sealer)
	if err != nil || next.Kid() == kids[0] || len(all) != 2 {
		t.Fatalf("after the rotation: %v, %d keys, %v", next, len(all), err)
	}
	sig, err := current.Sign("a.b")
	if err != nil || all[0].Verify("a.b", sig) != nil {
		t.Errorf("the retired key no longer verifies what it signed: %v", err)
	}

	// The secret never rotates by itself, is text, and rotates by hand,
	// published before it signs.
	secret, _, err := keys.OpenRing(rings["castlabs"], sealer)
	if err != nil {
		t.Fatal(err)
	}
	if len(secret.Secret()) != 128 || strings.Trim(string(secret.Secret()), "0123456789abcdef") != "" {
		t.Errorf("the castlabs secret is not 128 hex digits: %q", secret.Secret())
	}
	if later, _, err := m.Sync(ctx, t0.Add(10000*time.Hour), nil); err != nil || len(later["castlabs"].Keys) != 1 {
		t.Errorf("a secret that never rotates rotated: %+v, %v", later["castlabs"], err)
	}
	// Rotate only makes the current key due; the next sync makes its
	// successor under the policy.
	ring, err := m.Rotate(ctx, "castlabs", t0.Add(10001*time.Hour))
	if err != nil || len(ring.Keys) != 1 || !ring.Keys[0].Retires.Equal(t0.Add(10001*time.Hour)) {
		t.Fatalf("rotating the secret by hand: %+v, %v", ring, err)
	}
	rings, _, err = m.Sync(ctx, t0.Add(10001*time.Hour+time.Second), nil)
	if ring := rings["castlabs"]; err != nil || len(ring.Keys) != 2 || ring.Keys[1].State != keys.KeyNext ||
		!ring.Keys[1].Activates.Equal(t0.Add(10001*time.Hour+time.Second+time.Minute)) || !ring.Keys[0].Retires.Equal(ring.Keys[1].Activates) {
		t.Fatalf("the sync after a rotation by hand: %+v, %v", ring, err)
	}
	seen := map[string]int64{"castlabs": rings["castlabs"].Version + 1, "default": rings["default"].Version}
	if _, _, err := m.Sync(ctx, t0.Add(10001*time.Hour+time.Second), seen); !errors.Is(err, keys.ErrRegressed) {
		t.Errorf("a keyring older than one seen: %v", err)
	}
	if _, err := m.Rotate(ctx, "nope", t0); !errors.Is(err, keys.ErrNotManaged) {
		t.Errorf("rotating a profile that is not managed: %v", err)
	}

	// Only the master key opens them, and an instance with another one
	// writes nothing, even when a rotation is due.
	newMaster := newMasterKey()
	other, _ := keys.NewSealer(newMaster)
	if _, _, err := keys.OpenRing(rings["default"], other); !errors.Is(err, keys.ErrSealed) {
		t.Errorf("opened under another master key: %v", err)
	}
	before, _ := store.Keyring(ctx, "default")
	if _, _, err := manager(other).Sync(ctx, t0.Add(2000*time.Hour), nil); !errors.Is(err, keys.ErrSealed) {
		t.Errorf("a sync under another master key: %v", err)
	}
	if after, _ := store.Keyring(ctx, "default"); after.Version != before.Version {
		t.Errorf("a sync under another master key wrote version %d", after.Version)
	}
	// ...until a reseal under a new first master key, after which the old
	// one can go.
	both, _ := keys.NewSealer(newMaster, newMasterKey(), oldMaster)
	n, err := manager(both).Reseal(ctx, t0.Add(66*time.Minute))
	// default: retired, current and next (the sync at 10001 h rotated it
	// twice); castlabs: current and next.
	if err != nil || n != 5 {
		t.Fatalf("reseal: %d resealed, %v; want 5", n, err)
	}
	if n, err := manager(both).Reseal(ctx, t0.Add(66*time.Minute)); err != nil || n != 0 {
		t.Errorf("a second reseal resealed %d, %v", n, err)
	}
	rings, err = manager(other).Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ring := range rings {
		if _, _, err := keys.OpenRing(ring, other); err != nil {
			t.Errorf("after the reseal, the new master key alone does not open %q: %v", ring.Profile, err)
		}
		if _, _, err := keys.OpenRing(ring, sealer); !errors.Is(err, keys.ErrSealed) {
			t.Errorf("after the reseal, the old master key still opens %q: %v", ring.Profile, err)
		}
	}
	checkStored(t, stored(), secret.Secret())

	// A key kept by an earlier jwtd is adopted into an empty keyring only.
	kept, _ := keys.New("default-generated", "HS256", []byte(strings.Repeat("k", 32)))
	m = &keys.Manager{Store: store, Sealer: other, Policies: map[string]keys.Policy{"appverify": {Alg: "HS256", PublishLead: time.Minute, Keep: time.Minute}}}
	if ok, err := m.Adopt(ctx, "appverify", kept, t0); !ok || err != nil {
		t.Fatalf("adopting into an empty keyring: %v, %v", ok, err)
	}
	if ok, err := m.Adopt(ctx, "appverify", kept, t0); ok || err != nil {
		t.Errorf("adopting into a keyring that has keys: %v, %v", ok, err)
	}
	rings, _, err = m.Sync(ctx, t0.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if k, _, err := keys.OpenRing(rings["appverify"], other); err != nil || !k.Same(kept) || k.Kid() != kept.Kid() {
		t.Errorf("the adopted key does not sign: %v, %v", k, err)
	}
}

// checkStored looks through the keyrings as stored: no PEM, no secret in
// any encoding.
func checkStored(t *testing.T, docs [][]byte, secret []byte) {
	t.Helper()
	if len(docs) != 2 {
		t.Errorf("%d keyrings stored, want 2", len(docs))
	}
	for _, raw := range docs {
		for _, clear := range [][]byte{[]byte("PRIVATE"), []byte("BEGIN"), secret, []byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret))} {
			if bytes.Contains(raw, clear) {
				t.Errorf("a stored keyring holds %.20q in the clear", clear)
			}
		}
	}
}

// BenchmarkSync is one sync of three managed profiles with nothing to
// change: what every instance does every key_store.sync_interval.
func BenchmarkSync(b *testing.B, s keys.KeyStore) {
	k := make([]byte, keys.MasterKeySize)
	sealer, _ := keys.NewSealer(k)
	p := keys.Policy{Alg: "ES256", RotateEvery: time.Hour, PublishLead: time.Minute, Keep: time.Minute}
	m := &keys.Manager{Store: s, Sealer: sealer, Policies: map[string]keys.Policy{"default": p,
		"appverify": {Alg: "HS256", PublishLead: time.Minute, Keep: time.Minute}, "castlabs": {Alg: "HS512", Text: true, PublishLead: time.Minute, Keep: time.Minute}}}
	now := time.Now()
	if _, _, err := m.Sync(context.Background(), now, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Sync(context.Background(), now, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func newMasterKey() []byte {
	k := make([]byte, keys.MasterKeySize)
	_, _ = rand.Read(k)
	return k
}
