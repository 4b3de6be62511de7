package keys_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtd/jwtd/internal/clock"
	"github.com/jwtd/jwtd/internal/keys"
)

// The keys runtime's tests run in a synctest bubble on a clock.Fake, over
// an in-memory key store: Advance moves the clock a sync interval, and
// synctest.Wait returns once Run has synced and waits on its next timer.
// Nothing sleeps.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// rotating signs for an hour, is published 10 minutes before and kept 20
// minutes after; the runtime syncs every minute.
var rotating = keys.Policy{Alg: "HS256", RotateEvery: time.Hour, PublishLead: 10 * time.Minute, Keep: 20 * time.Minute}

const every = time.Minute

// memKeys is a KeyStore in memory, with compare-and-swap on versions, that
// fails every call while fail is set (RememberKeys while forget is, reads
// of profile failProfile always). interfere, if set, runs once right after
// a keyring is read: another instance's write before this one's.
type memKeys struct {
	mu          sync.Mutex
	rings       map[string]keys.Keyring
	known       []keys.KnownKey
	fail        error
	forget      error
	failProfile string
	interfere   func()
	conflicts   int
}

func (s *memKeys) Keyring(_ context.Context, profile string) (keys.Keyring, error) {
	s.mu.Lock()
	if s.fail != nil || profile == s.failProfile {
		s.mu.Unlock()
		return keys.Keyring{}, cmp.Or(s.fail, errors.New("no such table"))
	}
	r := s.rings[profile]
	r.Profile, r.Keys = profile, slices.Clone(r.Keys)
	interfere := s.interfere
	s.interfere = nil
	s.mu.Unlock()
	if interfere != nil {
		interfere()
	}
	return r, nil
}

func (s *memKeys) PutKeyring(_ context.Context, ring keys.Keyring) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return 0, s.fail
	}
	if s.rings[ring.Profile].Version != ring.Version {
		s.conflicts++
		return 0, keys.ErrConflict
	}
	ring.Version++
	ring.Keys = slices.Clone(ring.Keys)
	if s.rings == nil {
		s.rings = map[string]keys.Keyring{}
	}
	s.rings[ring.Profile] = ring
	return ring.Version, nil
}

func (s *memKeys) Keyrings(context.Context) ([]keys.Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []keys.Keyring
	for _, r := range s.rings {
		out = append(out, r)
	}
	return out, s.fail
}

func (s *memKeys) RememberKeys(_ context.Context, known []keys.KnownKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.forget != nil {
		return s.forget
	}
	for _, k := range known {
		if !slices.ContainsFunc(s.known, func(h keys.KnownKey) bool { return h.Fingerprint == k.Fingerprint }) {
			s.known = append(s.known, k)
		}
	}
	return nil
}

func (s *memKeys) KnownKeys(context.Context) ([]keys.KnownKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.known), s.fail
}

func (s *memKeys) failing(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *memKeys) history() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, k := range s.known {
		out = append(out, k.Kid)
	}
	return out
}

// built is what the tests' runtimes build: the keys, opened.
type built struct {
	signing string // the default profile's current kid
	all     []string
}

func (b *built) KnownKeys() []keys.KnownKey {
	var out []keys.KnownKey
	for _, kid := range b.all {
		out = append(out, keys.KnownKey{Fingerprint: "fp:" + kid, Kid: kid})
	}
	return out
}

// instance is one jwtd's keys runtime in a test, with what it was told.
type instance struct {
	rt     *keys.Runtime[*built]
	mu     sync.Mutex
	using  *built
	events []string
}

func (in *instance) use(b *built) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.using = b
}

func (in *instance) note(format string, args ...any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.events = append(in.events, fmt.Sprintf(format, args...))
}

func (in *instance) Applied(changes []keys.Change, _ map[string]keys.Keyring) {
	for _, c := range changes {
		in.note("applied %s %s", c.Kind, c.Key.Kid)
	}
}

func (in *instance) Wrote(changes []keys.Change) {
	for _, c := range changes {
		in.note("wrote %s %s", c.Kind, c.Key.Kid)
	}
}

func (in *instance) SyncFailed(err error, first bool) { in.note("failed first=%v: %v", first, err) }
func (in *instance) AdvanceFailed(err error)          { in.note("advance failed: %v", err) }
func (in *instance) Synced()                          { in.note("synced") }

// took returns the events since the last call, and the kid that signs.
func (in *instance) took() ([]string, string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.events
	in.events = nil
	return out, in.using.signing
}

func setup(store keys.KeyStore, sealer *keys.Sealer) keys.Setup[*built] {
	return keys.Setup[*built]{
		Manager: &keys.Manager{Store: store, Sealer: sealer, Policies: map[string]keys.Policy{"default": rotating}},
		Every:   every,
		Timeout: time.Second,
		Build: func(rings map[string]keys.Keyring, _ []keys.KnownKey) (*built, error) {
			current, all, err := keys.OpenRing(rings["default"], sealer)
			if err != nil {
				return nil, err
			}
			b := &built{signing: current.Kid()}
			for _, k := range all {
				b.all = append(b.all, k.Kid())
			}
			return b, nil
		},
	}
}

func start(t *testing.T, clk clock.Clock, store keys.KeyStore, sealer *keys.Sealer) *instance {
	t.Helper()
	in := &instance{}
	in.rt = keys.NewRuntime(clk, in.use, in)
	if _, err := in.rt.Configure(t.Context(), setup(store, sealer), nil); err != nil {
		t.Fatal(err)
	}
	go in.rt.Run(t.Context())
	synctest.Wait() // Run waits on its first timer
	return in
}

func testSealer(t *testing.T) *keys.Sealer {
	t.Helper()
	s, err := keys.NewSealer(newMasterKey())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// step moves the clock on by d, a sync interval at a time, letting the
// runtimes sync at each.
func step(clk *clock.Fake, d time.Duration) {
	for range d / every {
		clk.Advance(every)
		synctest.Wait()
	}
}

func wantEvents(t *testing.T, in *instance, when string, want ...string) string {
	t.Helper()
	got, signing := in.took()
	if !slices.Equal(got, want) {
		t.Errorf("%s: events %q, want %q", when, got, want)
	}
	return signing
}

// A key's whole life under the runtime's clock: made at the start,
// published its lead before it signs, signing for its hour, kept, deleted;
// every key it used in the history, the deleted one too.
func TestRuntimeLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		store := &memKeys{}
		in := start(t, clk, store, testSealer(t))
		first := in.using.signing
		got, _ := in.took()
		if len(got) != 1 || !strings.HasPrefix(got[0], "wrote activated hs-") {
			t.Errorf("the start wrote %q, want the first key activated", got)
		}

		step(clk, 49*time.Minute)
		wantEvents(t, in, "49 minutes in")

		step(clk, time.Minute) // 10 minutes before the first key's hour is up
		got, signing := in.took()
		if len(got) != 2 || !strings.HasPrefix(got[0], "applied published") || !strings.HasPrefix(got[1], "wrote published") || signing != first {
			t.Fatalf("at 50 minutes: events %q, signing %s; want the next key published, %s signing", got, signing, first)
		}
		next := strings.TrimPrefix(got[1], "wrote published ")

		step(clk, 10*time.Minute)
		if signing := wantEvents(t, in, "at the hour",
			"applied retired "+first, "applied activated "+next, "wrote retired "+first, "wrote activated "+next); signing != next {
			t.Errorf("at the hour %s signs, want %s", signing, next)
		}

		step(clk, 19*time.Minute)
		wantEvents(t, in, "19 minutes after the retirement")
		step(clk, time.Minute)
		wantEvents(t, in, "the keep time after the retirement", "applied deleted "+first, "wrote deleted "+first)
		if h := store.history(); !slices.Contains(h, first) || !slices.Contains(h, next) {
			t.Errorf("the key history %q lacks %s or %s", h, first, next)
		}
		if err := in.rt.Ready(); err != nil {
			t.Errorf("Ready: %v", err)
		}
	})
}

// A store that cannot be reached: Ready fails from the first failed sync,
// the failure is told once as the first, the next key signs at its time
// from the keys last read (nothing written), and the first sync that
// succeeds writes what the instance already applied.
func TestRuntimeStoreDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		store := &memKeys{}
		in := start(t, clk, store, testSealer(t))
		step(clk, 50*time.Minute)
		in.took()
		next := in.rt.Rings()["default"].Keys[1].Kid

		down := errors.New("connection refused")
		store.failing(down)
		step(clk, time.Minute)
		wantEvents(t, in, "the first failed sync", "failed first=true: connection refused")
		if err := in.rt.Ready(); err == nil || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("Ready with the store down: %v", err)
		}
		step(clk, 8*time.Minute)
		if got, _ := in.took(); len(got) != 8 || got[7] != "failed first=false: connection refused" {
			t.Errorf("eight more failed syncs told %q", got)
		}

		step(clk, time.Minute) // the hour: the next key's activation
		got, signing := in.took()
		if signing != next || !slices.Contains(got, "applied activated "+next) || slices.ContainsFunc(got, func(e string) bool { return strings.HasPrefix(e, "wrote") }) {
			t.Errorf("at the activation with the store down: events %q, signing %s; want %s signing, applied, nothing written", got, signing, next)
		}

		store.failing(nil)
		step(clk, time.Minute)
		got, signing = in.took()
		if signing != next || !slices.Contains(got, "synced") || !slices.Contains(got, "wrote activated "+next) || slices.ContainsFunc(got, func(e string) bool { return strings.HasPrefix(e, "applied") }) {
			t.Errorf("back: events %q, signing %s; want the activation written, nothing applied again, synced", got, signing)
		}
		if err := in.rt.Ready(); err != nil {
			t.Errorf("Ready after a sync succeeded: %v", err)
		}
	})
}

// Two instances on one store: a rotation on one is applied by the other
// at its next sync, and each change is written, and told, by one of them.
func TestRuntimeTwoInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		store, sealer := &memKeys{}, testSealer(t)
		a := start(t, clk, store, sealer)
		b := start(t, clk, store, sealer)
		if a.using.signing != b.using.signing {
			t.Fatalf("the instances sign with %s and %s", a.using.signing, b.using.signing)
		}
		wantEvents(t, b, "b's start (a made the key)")
		a.took()

		ring, err := a.rt.Rotate(t.Context(), "default")
		if err != nil || len(ring.Keys) != 2 || ring.Keys[1].State != keys.KeyNext {
			t.Fatalf("Rotate: %v, %+v", err, ring)
		}
		next := ring.Keys[1].Kid
		if !ring.Keys[1].Activates.Equal(t0.Add(rotating.PublishLead)) {
			t.Errorf("the next key signs from %s, want the publishing lead from now", ring.Keys[1].Activates)
		}
		wantEvents(t, a, "the rotation on a", "applied published "+next, "wrote published "+next)
		step(clk, time.Minute)
		wantEvents(t, b, "b's next sync", "applied published "+next)

		step(clk, 9*time.Minute)
		ga, sa := a.took()
		gb, sb := b.took()
		var wrote []string
		for _, e := range append(ga, gb...) {
			if strings.HasPrefix(e, "wrote") {
				wrote = append(wrote, e)
			}
		}
		if sa != next || sb != next || len(wrote) != 2 {
			t.Errorf("at the activation a signs with %s, b with %s, want %s; written: %q, want the activation and retirement once", sa, sb, next, wrote)
		}

		if _, err := a.rt.Rotate(t.Context(), "appverify"); !errors.Is(err, keys.ErrNotManaged) {
			t.Errorf("rotating a profile without managed keys: %v", err)
		}
	})
}

// A configuration refused, by its check, its build or a master key that
// does not open the stored keys, changes nothing running.
func TestRuntimeConfigureRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		store, sealer := &memKeys{}, testSealer(t)
		in := start(t, clk, store, sealer)
		signing := in.using.signing
		in.took()

		using := in.using
		refused := errors.New("refusing to remove keys")
		if _, err := in.rt.Configure(t.Context(), setup(store, sealer), func(*built) error { return refused }); !errors.Is(err, refused) {
			t.Errorf("a refused check: %v", err)
		}
		broken := setup(store, sealer)
		broken.Build = func(map[string]keys.Keyring, []keys.KnownKey) (*built, error) {
			return nil, errors.New("no such key file")
		}
		if _, err := in.rt.Configure(t.Context(), broken, nil); err == nil || !strings.Contains(err.Error(), "no such key file") {
			t.Errorf("a failing build: %v", err)
		}
		if _, err := in.rt.Configure(t.Context(), setup(store, testSealer(t)), nil); !errors.Is(err, keys.ErrSealed) || !strings.Contains(err.Error(), "Give jwtd the master key") {
			t.Errorf("another master key: %v", err)
		}
		if in.using != using || in.using.signing != signing || in.rt.Manager().Sealer != sealer {
			t.Errorf("a refused configuration changed what runs")
		}
		wantEvents(t, in, "refused configurations")
	})
}

// A key the history could not take is added at the next sync that can,
// though the keyrings did not change again.
func TestRuntimeHistoryRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		store := &memKeys{}
		in := start(t, clk, store, testSealer(t))
		store.mu.Lock()
		store.forget = errors.New("disk full")
		store.mu.Unlock()
		step(clk, 50*time.Minute) // publishes the next key
		next := in.rt.Rings()["default"].Keys[1].Kid
		if err := in.rt.Ready(); err == nil || !strings.Contains(err.Error(), "key history: disk full") {
			t.Errorf("Ready after the history could not be written: %v", err)
		}
		if slices.Contains(store.history(), next) {
			t.Fatalf("the history took %s while it could not be written", next)
		}
		store.mu.Lock()
		store.forget = nil
		store.mu.Unlock()
		step(clk, time.Minute)
		if !slices.Contains(store.history(), next) || in.rt.Ready() != nil {
			t.Errorf("a sync later the history is %q and Ready %v; want %s in it", store.history(), in.rt.Ready(), next)
		}
	})
}

// Two instances that advance one keyring at once: the one whose
// compare-and-swap loses reads again, finds the change made, and reports
// nothing; the change is reported once.
func TestManagerReportsAWriteOnce(t *testing.T) {
	ctx := t.Context()
	store, sealer := &memKeys{}, testSealer(t)
	a := &keys.Manager{Store: store, Sealer: sealer, Policies: map[string]keys.Policy{"default": rotating}}
	b := &keys.Manager{Store: store, Sealer: sealer, Policies: a.Policies}
	if _, wrote, err := a.Sync(ctx, t0, nil); err != nil || len(wrote) != 1 || wrote[0].Kind != keys.Activated {
		t.Fatalf("the first sync: %v, wrote %+v", err, wrote)
	}
	publish := t0.Add(50 * time.Minute)
	var wroteA []keys.Change
	store.interfere = func() { // b has read the keyring; a writes first
		var err error
		if _, wroteA, err = a.Sync(ctx, publish, nil); err != nil {
			t.Error(err)
		}
	}
	rings, wroteB, err := b.Sync(ctx, publish, nil)
	if err != nil {
		t.Fatal(err)
	}
	if store.conflicts != 1 || len(wroteA) != 1 || wroteA[0].Kind != keys.Published || len(wroteB) != 0 {
		t.Errorf("%d conflicts; a wrote %+v, b wrote %+v; want one conflict, and the publication reported by a alone", store.conflicts, wroteA, wroteB)
	}
	if n := len(rings["default"].Keys); n != 2 {
		t.Errorf("b's keyring has %d keys after the race, want the current and the one next key", n)
	}
}

// A sync that fails on one profile still reports what it wrote for the
// profiles before it: those writes stand.
func TestManagerReportsWritesBeforeAFailure(t *testing.T) {
	store, sealer := &memKeys{failProfile: "zz"}, testSealer(t)
	m := &keys.Manager{Store: store, Sealer: sealer, Policies: map[string]keys.Policy{"default": rotating, "zz": rotating}}
	rings, wrote, err := m.Sync(t.Context(), t0, nil)
	if err == nil || rings != nil || len(wrote) != 1 || wrote[0].Profile != "default" || wrote[0].Kind != keys.Activated {
		t.Errorf("Sync with profile zz failing: %v, rings %v, wrote %+v; want the error and default's first key reported", err, rings, wrote)
	}
}

// While the store is down, keys that cannot be built once advanced are
// told of, and the keys in use stay.
func TestRuntimeAdvanceFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		store, sealer := &memKeys{}, testSealer(t)
		in := &instance{}
		in.rt = keys.NewRuntime(clk, in.use, in)
		s := setup(store, sealer)
		build := s.Build
		var broken bool
		s.Build = func(rings map[string]keys.Keyring, known []keys.KnownKey) (*built, error) {
			if broken {
				return nil, errors.New("a configured key file went missing")
			}
			return build(rings, known)
		}
		if _, err := in.rt.Configure(t.Context(), s, nil); err != nil {
			t.Fatal(err)
		}
		go in.rt.Run(t.Context())
		synctest.Wait()
		step(clk, 50*time.Minute)
		using := in.using
		in.took()
		store.failing(errors.New("connection refused"))
		broken = true
		step(clk, 10*time.Minute) // the next key's activation comes while syncs fail
		got, _ := in.took()
		if !slices.Contains(got, "advance failed: a configured key file went missing") || in.using != using {
			t.Errorf("events %q; the build in use changed: %v; want the failed advance told and the keys kept", got, in.using != using)
		}
	})
}

func newMasterKey() []byte {
	k := make([]byte, keys.MasterKeySize)
	_, _ = rand.Read(k)
	return k
}
