package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/token"
)

// signingKeys is serve's keys: the configured ones, and the managed
// keyrings it syncs with the store every key_store.sync_interval. It
// rebuilds the running token service when either changes: a reload
// (SIGHUP) or another instance's rotation.
type signingKeys struct {
	mu      sync.Mutex // serialises sync, reload and rotate; the fields below it
	cfg     *config.Config
	plan    keyPlan
	manager *keys.Manager
	rings   map[string]keys.Keyring
	known   []keys.KnownKey  // the key history, as last read
	retire  keys.Retirements // for configured keys; managed ones keep their rules in the store
	running *live
	logger  *slog.Logger
	metrics *metrics.Metrics
	every   *logevery.Every
	// audit records the state changes this instance applies, and a
	// master key that stops opening the stored keys (nil: none).
	audit *audit.Trail

	// Read without the lock, so that the JWKS and /readyz never wait on
	// a sync talking to the store.
	maxAge  atomic.Int64           // key_store.jwks_max_age
	failing atomic.Pointer[string] // why the last sync failed; nil when it succeeded
}

// newSigningKeys opens the managed keys (making them, and the embedded
// store's master key, on the first start), builds the token service and
// stores it in running. A key that does not open refuses the start.
func newSigningKeys(ctx context.Context, cfg *config.Config, e env, store keys.KeyStore, running *live, logger *slog.Logger, m *metrics.Metrics) (*signingKeys, error) {
	k := &signingKeys{running: running, logger: logger, metrics: m, every: logevery.New(time.Minute)}
	svc, err := k.prepare(ctx, cfg, e, store)
	if err != nil {
		return nil, err
	}
	running.tokens.Store(svc)
	for _, name := range sortedNames(k.rings) {
		byState := countStates(k.rings[name])
		m.Keys(name, byState)
		current := k.rings[name].Keys[slices.IndexFunc(k.rings[name].Keys, func(mk keys.ManagedKey) bool { return mk.State == keys.KeyCurrent })]
		logger.Info("managed keys", "profile", name, "alg", current.Alg, "current", current.Kid,
			"retires", timeOrNever(current.Retires), "next", byState["next"], "retired", byState["retired"])
	}
	return k, nil
}

// prepare plans the keys of cfg, syncs the managed ones and builds the
// token service from them, changing nothing in k until all of it worked.
func (k *signingKeys) prepare(ctx context.Context, cfg *config.Config, e env, store keys.KeyStore) (*token.Service, error) {
	plan, err := planKeys(cfg)
	if err != nil {
		return nil, err
	}
	sealer, err := plan.sealer(cfg, e, true)
	if err != nil {
		return nil, err
	}
	manager := &keys.Manager{Store: store, Sealer: sealer, Policies: plan.policies}
	now := time.Now()
	adopted, err := manager.AdoptKept(ctx, cfg.DataDir, cfg.KeyFiles(), now, k.logger)
	if err != nil {
		return nil, err
	}
	for _, path := range adopted {
		k.logger.Info("moved a key an earlier jwtd kept in the data directory into the key store; the file is no longer read", "file", path)
	}
	rings, err := manager.Sync(ctx, now, k.seen())
	var known []keys.KnownKey
	if err == nil {
		known, err = store.KnownKeys(ctx)
	}
	var svc *token.Service
	if err == nil {
		svc, err = plan.build(cfg, rings, sealer, known)
	}
	if err == nil {
		known, err = remember(ctx, store, svc, known)
	}
	switch {
	case errors.Is(err, keys.ErrSealed):
		return nil, fmt.Errorf("the managed keys: %w\nGive jwtd the master key the keys were sealed under (the one the other instances have), "+
			"first in JWTD_MASTER_KEY or key_store.master_key_file", err)
	case err != nil:
		return nil, fmt.Errorf("the managed keys: %w", err)
	}
	k.cfg, k.plan, k.manager, k.rings, k.known = cfg, plan, manager, rings, known
	k.maxAge.Store(int64(cfg.KeyStore.JWKSMaxAge))
	return svc, nil
}

// seen is the version of each keyring last read.
func (k *signingKeys) seen() map[string]int64 {
	out := make(map[string]int64, len(k.rings))
	for name, r := range k.rings {
		out[name] = r.Version
	}
	return out
}

// sync is one round of the loop: bring the keyrings to now, and if any
// changed (here or on another instance), rebuild the token service. On
// failure the lifecycle goes on from the keys last read (what a next key
// was published for, it signs at its time; a key past its deletion goes),
// as every other instance runs it, and /readyz fails until a sync
// succeeds.
func (k *signingKeys) sync(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.plan.policies) == 0 {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, k.cfg.KeyStore.SyncInterval+k.cfg.Store.Timeout)
	defer cancel()
	err := k.syncLocked(sctx)
	switch {
	case err != nil && ctx.Err() != nil:
	case err != nil:
		k.metrics.KeySyncFailed()
		if ok, held := k.every.Allow(); ok || k.failing.Load() == nil {
			k.logger.Error("managed keys not synced; going on with the keys last read, and /readyz answers 503 until a sync succeeds",
				"err", err, "failures_since_last_line", held)
		}
		if errors.Is(err, keys.ErrSealed) && k.failing.Load() == nil {
			k.audit.Record(ctx, audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionKeyOpenFail, Result: audit.ResultFailed, Detail: err.Error()}) //nolint:errcheck // logged by the trail
		}
		msg := err.Error()
		k.failing.Store(&msg)
		k.advanceLocally(time.Now())
	case k.failing.Load() != nil:
		k.failing.Store(nil)
		k.logger.Info("managed keys synced again")
	}
}

func (k *signingKeys) syncLocked(ctx context.Context) error {
	rings, err := k.manager.Sync(ctx, time.Now(), k.seen())
	if err != nil {
		return err
	}
	if !k.changed(rings) {
		return nil
	}
	known, err := k.manager.Store.KnownKeys(ctx)
	if err != nil {
		return err
	}
	svc, err := k.use(rings, known)
	if err != nil {
		return err
	}
	k.known, err = remember(ctx, k.manager.Store, svc, known)
	return err
}

// use makes rings the running keys, with known as the key history.
func (k *signingKeys) use(rings map[string]keys.Keyring, known []keys.KnownKey) (*token.Service, error) {
	svc, err := k.plan.build(k.cfg, rings, k.manager.Sealer, known)
	if err != nil {
		return nil, err
	}
	k.running.tokens.Store(svc)
	k.report(k.rings, rings)
	k.rings, k.known = rings, known
	return svc, nil
}

// remember adds the keys of svc that the key history lacks to it, and
// returns the history with them: a key is in the history from the first
// time an instance publishes it, long before any instance deletes it.
func remember(ctx context.Context, store keys.KeyStore, svc *token.Service, known []keys.KnownKey) ([]keys.KnownKey, error) {
	have := make(map[string]bool, len(known))
	for _, k := range known {
		have[k.Fingerprint] = true
	}
	var missing []keys.KnownKey
	for _, k := range svc.KnownKeys() {
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

var errNoNewKeys = errors.New("no new key while the store cannot be synced")

// advanceLocally runs the lifecycle on the keys last read, making none:
// Advance is a function of the keyring and the time, so this instance
// activates and deletes keys when every other one does.
func (k *signingKeys) advanceLocally(now time.Time) {
	rings := maps.Clone(k.rings)
	changed := false
	for name, r := range rings {
		next, ch, err := keys.Advance(r.Keys, k.plan.policies[name], now, func(string) (keys.ManagedKey, error) {
			return keys.ManagedKey{}, errNoNewKeys
		})
		if err == nil && ch {
			r.Keys = next
			rings[name] = r
			changed = true
		}
	}
	if !changed {
		return
	}
	if _, err := k.use(rings, k.known); err != nil {
		k.logger.Error("managed keys: advancing the keys last read", "err", err)
	}
}

// changed reports whether any keyring's version differs from the running ones.
func (k *signingKeys) changed(rings map[string]keys.Keyring) bool {
	for name, r := range rings {
		if k.rings[name].Version != r.Version {
			return true
		}
	}
	return len(rings) != len(k.rings)
}

// report logs and counts every state change between two sets of keyrings.
func (k *signingKeys) report(before, after map[string]keys.Keyring) {
	for _, name := range sortedNames(after) {
		was := map[string]keys.KeyState{}
		for _, mk := range before[name].Keys {
			was[mk.Kid] = mk.State
		}
		for _, mk := range after[name].Keys {
			state, seen := was[mk.Kid]
			delete(was, mk.Kid)
			if seen && state == mk.State {
				continue
			}
			change := map[keys.KeyState]string{keys.KeyNext: "published", keys.KeyCurrent: "activated", keys.KeyRetired: "retired"}[mk.State]
			k.metrics.KeyChanged(name, change)
			k.auditChange(name, mk.Kid, change)
			switch mk.State {
			case keys.KeyNext:
				k.logger.Info("managed key published; it signs from its activation", "profile", name, "kid", mk.Kid, "alg", mk.Alg, "activates", mk.Activates)
			case keys.KeyCurrent:
				k.logger.Info("managed key activated; it signs now", "profile", name, "kid", mk.Kid, "alg", mk.Alg, "retires", timeOrNever(mk.Retires))
			default:
				k.logger.Info("managed key retired; it verifies until it is deleted", "profile", name, "kid", mk.Kid, "deletes", mk.Deletes)
			}
		}
		for kid := range was {
			k.metrics.KeyChanged(name, "deleted")
			k.auditChange(name, kid, "deleted")
			k.logger.Info("managed key deleted; every token it signed has expired", "profile", name, "kid", kid)
		}
		k.metrics.Keys(name, countStates(after[name]))
	}
}

// auditChange records a state change of a managed key: "published" is a
// rotation starting, by the schedule or by hand.
func (k *signingKeys) auditChange(profile, kid, change string) {
	k.audit.Record(context.Background(), audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionKeyState, //nolint:errcheck // logged by the trail
		Target: "profile:" + profile, Detail: change + " kid=" + kid})
}

// reload applies a new configuration (SIGHUP): its keys, profiles and
// managed policies. A configured key that may still have live tokens is
// not removed; on any error everything running stays.
func (k *signingKeys) reload(ctx context.Context, cfg *config.Config, e env) (*token.Service, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	savedCfg, savedPlan, savedManager, savedRings, savedKnown := k.cfg, k.plan, k.manager, k.rings, k.known
	next, err := k.prepare(ctx, cfg, e, k.manager.Store)
	if err == nil {
		cur := k.running.tokens.Load()
		err = k.retire.Check(keys.Use{Keys: cur.Keys(), Signing: cur.SigningTTLs()},
			keys.Use{Keys: next.Keys(), Signing: next.SigningTTLs()}, cur.Leeway(), time.Now())
	}
	if err != nil {
		k.cfg, k.plan, k.manager, k.rings, k.known = savedCfg, savedPlan, savedManager, savedRings, savedKnown
		return nil, err
	}
	k.report(savedRings, k.rings)
	k.running.tokens.Store(next)
	return next, nil
}

// run syncs every key_store.sync_interval until ctx ends.
func (k *signingKeys) run(ctx context.Context) {
	for {
		k.mu.Lock()
		every := k.cfg.KeyStore.SyncInterval
		k.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		k.sync(ctx)
	}
}

// Ready is nil unless the last sync of the managed keys failed.
func (k *signingKeys) Ready() error {
	if msg := k.failing.Load(); msg != nil {
		return errors.New(*msg)
	}
	return nil
}

// JWKSMaxAge is how long verifiers may cache the JWKS.
func (k *signingKeys) JWKSMaxAge() time.Duration { return time.Duration(k.maxAge.Load()) }

// List describes every key: the managed ones as the store holds them now,
// and the configured ones.
func (k *signingKeys) List(ctx context.Context) ([]keys.Info, error) {
	k.mu.Lock()
	manager := k.manager
	k.mu.Unlock()
	return listKeys(ctx, manager, k.running.tokens.Load())
}

// Rotate starts a rotation of a managed profile's keys, and syncs at once
// so that this instance publishes the next key without waiting.
func (k *signingKeys) Rotate(ctx context.Context, profile string) ([]keys.Info, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.running.tokens.Load().Profile(profile); !ok {
		return nil, fmt.Errorf("%w %q", token.ErrUnknownProfile, profile)
	}
	if _, err := k.manager.Rotate(ctx, profile, time.Now()); err != nil {
		return nil, err
	}
	if err := k.syncLocked(ctx); err != nil {
		return nil, err
	}
	k.logger.Info("managed keys: rotation started by hand", "profile", profile)
	return keys.Infos(k.rings[profile]), nil
}

// listKeys describes the managed keys as stored and the configured keys
// of svc, by profile.
func listKeys(ctx context.Context, m *keys.Manager, svc *token.Service) ([]keys.Info, error) {
	var out []keys.Info
	if len(m.Policies) > 0 {
		rings, err := m.Read(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range sortedNames(rings) {
			out = append(out, keys.Infos(rings[name])...)
		}
	}
	for _, p := range svc.Profiles() {
		if _, managed := m.Policies[p.Name]; managed {
			continue
		}
		for i, key := range append([]*keys.Key{p.Key}, p.VerifyKeys...) {
			state := "configured"
			if i > 0 {
				state = "configured, verify only"
			}
			out = append(out, keys.Info{Profile: p.Name, Kid: key.Kid(), Alg: key.Alg(), State: state})
		}
	}
	return out, nil
}

func countStates(r keys.Keyring) map[string]int {
	out := map[string]int{}
	for _, mk := range r.Keys {
		out[string(mk.State)]++
	}
	return out
}

func timeOrNever(t time.Time) any {
	if t.IsZero() {
		return "never (rotated by hand)"
	}
	return t
}
