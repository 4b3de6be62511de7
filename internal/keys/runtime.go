package keys

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtd/jwtd/internal/clock"
)

// ChangeKind is how a managed key moved in its life.
type ChangeKind string

const (
	Published ChangeKind = "published" // made, in the JWKS before it signs
	Activated ChangeKind = "activated" // signs now
	Retired   ChangeKind = "retired"   // verifies only
	Deleted   ChangeKind = "deleted"   // gone: every token it signed has expired
)

// A Change is one managed key moving in its life.
type Change struct {
	Profile string
	Kind    ChangeKind
	Key     ManagedKey // as it is now; a deleted key as it was
}

// Changes lists what moved from before to after, two states of one
// profile's keys: the keys of after whose state is new, in after's order,
// then the keys after no longer has.
func Changes(profile string, before, after []ManagedKey) []Change {
	was := make(map[string]ManagedKey, len(before))
	for _, k := range before {
		was[k.Kid] = k
	}
	var out []Change
	for _, k := range after {
		old, seen := was[k.Kid]
		delete(was, k.Kid)
		if seen && old.State == k.State {
			continue
		}
		kind := map[KeyState]ChangeKind{KeyNext: Published, KeyCurrent: Activated, KeyRetired: Retired}[k.State]
		out = append(out, Change{Profile: profile, Kind: kind, Key: k})
	}
	for _, k := range before {
		if _, gone := was[k.Kid]; gone {
			out = append(out, Change{Profile: profile, Kind: Deleted, Key: k})
		}
	}
	return out
}

// Built is what a Runtime builds from the keys: in jwtd, the token
// service. KnownKeys are the keys it signs and verifies with, as the key
// history records them.
type Built interface {
	KnownKeys() []KnownKey
}

// Setup is what a configuration gives a Runtime.
type Setup[T Built] struct {
	Manager *Manager
	// Every is how often the keyrings are synced (key_store.sync_interval);
	// a sync may take Every and Timeout (store.timeout) before it fails.
	Every, Timeout time.Duration
	// Build makes what signs and verifies from the managed keyrings (and
	// whatever else the configuration holds) and the key history.
	Build func(rings map[string]Keyring, known []KnownKey) (T, error)
}

// Events is told what a Runtime does: for logs, metrics and the audit
// trail. Its methods must not call the Runtime. All but Wrote are called
// with the Runtime's lock held, one at a time, and should not wait.
type Events interface {
	// Applied: this instance now signs and verifies with rings; changes
	// are what moved since the keys it used before (none at the first
	// Configure). Every instance reports each change it applies.
	Applied(changes []Change, rings map[string]Keyring)
	// Wrote: this instance wrote changes to the store. Of the instances
	// sharing a store, at most one reports each change: the one whose
	// compare-and-swap stood and was told so (a write whose answer was
	// lost, such as a MongoDB timeout after the write stood, is reported
	// by none). It is called after the Runtime's lock is released, maybe
	// from two goroutines at once, and may wait (an audit entry written).
	Wrote(changes []Change)
	// SyncFailed: a sync failed; first unless the one before it failed
	// too. The Runtime goes on with the keys last read (see Sync).
	SyncFailed(err error, first bool)
	// AdvanceFailed: while syncs fail, the keys last read could not be
	// built once advanced to now; the Runtime keeps the keys it uses.
	AdvanceFailed(err error)
	// Synced: a sync succeeded after failures.
	Synced()
}

// Runtime runs one instance's managed keys over time. It syncs the
// keyrings with the store every Setup.Every: any instance may make,
// activate, retire or delete a key, and the store's compare-and-swap keeps
// one outcome. When the keyrings change (here, on another instance, or by
// a reconfiguration) it builds anew and hands the build to use. Every key
// a build uses joins the key history, where it stays: at Configure before
// the build is used, on a sync as it is used (a key the history could not
// take is added at a later sync; until then it is in the key set).
//
// When a sync fails the Runtime goes on from the keys last read,
// advancing them by its clock (what a next key was published for, it
// signs at its time; a key past its deletion goes), as every other
// instance does, makes no key, and Ready reports the failure until a sync
// succeeds.
//
// Configure comes first: Run, Sync and Rotate need a setup.
type Runtime[T Built] struct {
	clock  clock.Clock
	use    func(T)
	events Events

	mu    sync.Mutex // serialises Configure, Sync and Rotate; guards the fields below
	wrote []Change   // what this instance wrote, told to events.Wrote once mu is released
	setup Setup[T]
	built T
	rings map[string]Keyring // as last used; nil before the first Configure
	known []KnownKey         // the key history, as last read and added to

	failing atomic.Pointer[string] // why the last sync failed; nil when it succeeded
}

// NewRuntime is a Runtime on clk that hands what it builds to use and
// tells events what it does. It has no keys until Configure.
func NewRuntime[T Built](clk clock.Clock, use func(T), events Events) *Runtime[T] {
	return &Runtime[T]{clock: clk, use: use, events: events}
}

// Configure takes s as the Runtime's setup (at the start, and on every
// reload): it syncs the keyrings of s's policies, builds, adds the build's
// keys to the history, and, if check (nil: none) accepts the build, uses
// it and returns it. On any error nothing running changes.
func (r *Runtime[T]) Configure(ctx context.Context, s Setup[T], check func(next T) error) (T, error) {
	r.mu.Lock()
	defer r.unlock()
	var zero T
	rings, wrote, err := s.Manager.Sync(ctx, r.clock.Now(), r.seen())
	r.report(wrote)
	var known []KnownKey
	if err == nil {
		known, err = s.Manager.Store.KnownKeys(ctx)
	}
	var built T
	if err == nil {
		built, err = s.Build(rings, known)
	}
	if err == nil {
		known, err = remember(ctx, s.Manager.Store, built, known)
	}
	if err == nil && check != nil {
		err = check(built)
	}
	switch {
	case errors.Is(err, ErrSealed):
		return zero, fmt.Errorf("the managed keys: %w\nGive jwtd the master key the keys were sealed under (the one the other instances have), "+
			"first in JWTD_MASTER_KEY or key_store.master_key_file", err)
	case err != nil:
		return zero, fmt.Errorf("the managed keys: %w", err)
	}
	r.setup = s
	r.install(built, rings, known)
	return built, nil
}

// Run syncs every Setup.Every until ctx ends.
func (r *Runtime[T]) Run(ctx context.Context) {
	for {
		r.mu.Lock()
		t := r.clock.NewTimer(r.setup.Every)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		r.Sync(ctx)
	}
}

// Sync is one round of Run: it brings the keyrings to now and, if any
// changed (here or on another instance), builds and uses the new keys.
func (r *Runtime[T]) Sync(ctx context.Context) {
	r.mu.Lock()
	defer r.unlock()
	if len(r.setup.Manager.Policies) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, r.setup.Every+r.setup.Timeout)
	defer cancel()
	err := r.syncLocked(sctx)
	switch {
	case err != nil && ctx.Err() != nil: // shutting down
	case err != nil:
		first := r.failing.Load() == nil
		msg := err.Error()
		r.failing.Store(&msg)
		r.events.SyncFailed(err, first)
		r.advanceLocally()
	case r.failing.Load() != nil:
		r.failing.Store(nil)
		r.events.Synced()
	}
}

func (r *Runtime[T]) syncLocked(ctx context.Context) error {
	m := r.setup.Manager
	rings, wrote, err := m.Sync(ctx, r.clock.Now(), r.seen())
	r.report(wrote)
	if err != nil {
		return err
	}
	if r.changed(rings) {
		known, err := m.Store.KnownKeys(ctx)
		if err != nil {
			return err
		}
		built, err := r.setup.Build(rings, known)
		if err != nil {
			return err
		}
		r.install(built, rings, known)
	}
	// Also when nothing changed: a key a failed write left out of the
	// history is added at the next sync.
	r.known, err = remember(ctx, m.Store, r.built, r.known)
	return err
}

// install uses built, made from rings and the history known.
func (r *Runtime[T]) install(built T, rings map[string]Keyring, known []KnownKey) {
	var changes []Change
	if r.rings != nil {
		for _, name := range slices.Sorted(maps.Keys(rings)) {
			changes = append(changes, Changes(name, r.rings[name].Keys, rings[name].Keys)...)
		}
	}
	r.built, r.rings, r.known = built, rings, known
	r.use(built)
	r.events.Applied(changes, maps.Clone(rings))
}

// report keeps what this instance wrote for events.Wrote.
func (r *Runtime[T]) report(wrote []Change) { r.wrote = append(r.wrote, wrote...) }

// unlock releases the lock, then tells events what was written while it
// was held: an audit entry may be written then, and nothing waits on it.
func (r *Runtime[T]) unlock() {
	wrote := r.wrote
	r.wrote = nil
	r.mu.Unlock()
	if len(wrote) > 0 {
		r.events.Wrote(wrote)
	}
}

var errNoNewKeys = errors.New("no new key while the store cannot be synced")

// advanceLocally runs the lifecycle on the keys last read, making none:
// Advance is a function of the keyring and the time, so this instance
// activates and deletes keys when every other one does.
func (r *Runtime[T]) advanceLocally() {
	rings := maps.Clone(r.rings)
	changed := false
	for name, ring := range rings {
		next, ch, err := Advance(ring.Keys, r.setup.Manager.Policies[name], r.clock.Now(), func(string) (ManagedKey, error) {
			return ManagedKey{}, errNoNewKeys
		})
		if err == nil && ch {
			ring.Keys = next
			rings[name] = ring
			changed = true
		}
	}
	if !changed {
		return
	}
	built, err := r.setup.Build(rings, r.known)
	if err != nil {
		r.events.AdvanceFailed(err)
		return
	}
	r.install(built, rings, r.known)
}

// Rotate starts a rotation of a managed profile's keys (Manager.Rotate)
// and syncs at once, so that this instance publishes the next key without
// waiting, and returns the profile's keyring.
func (r *Runtime[T]) Rotate(ctx context.Context, profile string) (Keyring, error) {
	r.mu.Lock()
	defer r.unlock()
	if _, err := r.setup.Manager.Rotate(ctx, profile, r.clock.Now()); err != nil {
		return Keyring{}, err
	}
	if err := r.syncLocked(ctx); err != nil {
		return Keyring{}, err
	}
	return r.rings[profile], nil
}

// Ready is nil unless the last sync failed. It never waits on a sync.
func (r *Runtime[T]) Ready() error {
	if msg := r.failing.Load(); msg != nil {
		return errors.New(*msg)
	}
	return nil
}

// Manager is the current setup's key manager.
func (r *Runtime[T]) Manager() *Manager {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setup.Manager
}

// Rings are the keyrings in use (their Keys shared: do not change them).
func (r *Runtime[T]) Rings() map[string]Keyring {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.rings)
}

// seen is the version of each keyring last read.
func (r *Runtime[T]) seen() map[string]int64 {
	out := make(map[string]int64, len(r.rings))
	for name, ring := range r.rings {
		out[name] = ring.Version
	}
	return out
}

// changed reports whether any keyring's version differs from the ones in use.
func (r *Runtime[T]) changed(rings map[string]Keyring) bool {
	for name, ring := range rings {
		if r.rings[name].Version != ring.Version {
			return true
		}
	}
	return len(rings) != len(r.rings)
}

// remember adds the keys of built that the history known lacks to the
// store's history, and returns the history with them: a key is in the
// history from the first time an instance publishes it, long before any
// instance deletes it.
func remember(ctx context.Context, store KeyStore, built Built, known []KnownKey) ([]KnownKey, error) {
	have := make(map[string]bool, len(known))
	for _, k := range known {
		have[k.Fingerprint] = true
	}
	var missing []KnownKey
	for _, k := range built.KnownKeys() {
		if !have[k.Fingerprint] {
			missing = append(missing, k)
		}
	}
	if len(missing) == 0 {
		return known, nil
	}
	if err := store.RememberKeys(ctx, missing); err != nil {
		return known, fmt.Errorf("adding keys to the key history: %w", err)
	}
	return append(known, missing...), nil
}
