package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/clock"
	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/token"
)

// serveKeys is serve's keys: a keys.Runtime, which syncs the managed
// keyrings with the store and rebuilds the token service in running when
// they change, and the configured keys, which change on a reload (SIGHUP).
// It is what the HTTP API asks of the keys.
type serveKeys struct {
	rt      *keys.Runtime[*token.Service]
	clock   clock.Clock
	running *live
	logger  *slog.Logger
	// retire holds configured keys to their rules across reloads; managed
	// ones keep theirs in the store. Used under the Runtime's lock (check).
	retire keys.Retirements
	maxAge atomic.Int64 // key_store.jwks_max_age, read by the JWKS without a lock
}

// newServeKeys opens the managed keys (making them, and the embedded
// store's master key, on the first start), builds the token service and
// stores it in running. A key that does not open refuses the start.
func newServeKeys(ctx context.Context, cfg *config.Config, e env, store keys.KeyStore, running *live, logger *slog.Logger, m *metrics.Metrics, trail *audit.Trail) (*serveKeys, error) {
	events := &keyEvents{logger: logger, metrics: m, trail: trail, every: logevery.New(time.Minute)}
	k := &serveKeys{clock: clock.Real, running: running, logger: logger}
	k.rt = keys.NewRuntime(k.clock, running.tokens.Store, events)
	if _, err := k.configure(ctx, cfg, e, store, nil); err != nil {
		return nil, err
	}
	rings := k.rt.Rings()
	for _, name := range sortedNames(rings) {
		byState := countStates(rings[name])
		current := rings[name].Keys[slices.IndexFunc(rings[name].Keys, func(mk keys.ManagedKey) bool { return mk.State == keys.KeyCurrent })]
		logger.Info("managed keys", "profile", name, "alg", current.Alg, "current", current.Kid,
			"retires", timeOrNever(current.Retires), "next", byState["next"], "retired", byState["retired"])
	}
	return k, nil
}

// configure plans the keys of cfg, adopts the key files an earlier jwtd
// kept, and gives the runtime its setup (keys.Runtime.Configure).
func (k *serveKeys) configure(ctx context.Context, cfg *config.Config, e env, store keys.KeyStore, check func(*token.Service) error) (*token.Service, error) {
	plan, sealer, err := planAndSeal(cfg, e, true)
	if err != nil {
		return nil, err
	}
	manager := &keys.Manager{Store: store, Sealer: sealer, Policies: plan.policies}
	adopted, err := manager.AdoptKept(ctx, cfg.DataDir, cfg.KeyFiles(), k.clock.Now(), k.logger)
	if err != nil {
		return nil, err
	}
	for _, path := range adopted {
		k.logger.Info("moved a key an earlier jwtd kept in the data directory into the key store; the file is no longer read", "file", path)
	}
	svc, err := k.rt.Configure(ctx, keys.Setup[*token.Service]{
		Manager: manager,
		Every:   cfg.KeyStore.SyncInterval,
		Timeout: cfg.Store.Timeout,
		Build: func(rings map[string]keys.Keyring, known []keys.KnownKey) (*token.Service, error) {
			return plan.build(cfg, rings, sealer, known)
		},
	}, check)
	if err != nil {
		return nil, err
	}
	k.maxAge.Store(int64(cfg.KeyStore.JWKSMaxAge))
	return svc, nil
}

// reload applies a new configuration (SIGHUP): its keys, profiles and
// managed policies. A configured key that may still have live tokens is
// not removed; on any error everything running stays.
func (k *serveKeys) reload(ctx context.Context, cfg *config.Config, e env) (*token.Service, error) {
	return k.configure(ctx, cfg, e, k.rt.Manager().Store, func(next *token.Service) error {
		cur := k.running.tokens.Load()
		return k.retire.Check(keys.Use{Keys: cur.Keys(), Signing: cur.SigningTTLs()},
			keys.Use{Keys: next.Keys(), Signing: next.SigningTTLs()}, cur.Leeway(), k.clock.Now())
	})
}

// run syncs the managed keys until ctx ends.
func (k *serveKeys) run(ctx context.Context) { k.rt.Run(ctx) }

// Ready is nil unless the last sync of the managed keys failed.
func (k *serveKeys) Ready() error { return k.rt.Ready() }

// JWKSMaxAge is how long verifiers may cache the JWKS.
func (k *serveKeys) JWKSMaxAge() time.Duration { return time.Duration(k.maxAge.Load()) }

// List describes every key: the managed ones as the store holds them now,
// and the configured ones.
func (k *serveKeys) List(ctx context.Context) ([]keys.Info, error) {
	return listKeys(ctx, k.rt.Manager(), k.running.tokens.Load())
}

// Rotate starts a rotation of a managed profile's keys, and syncs at once
// so that this instance publishes the next key without waiting.
func (k *serveKeys) Rotate(ctx context.Context, profile string) ([]keys.Info, error) {
	if _, ok := k.running.tokens.Load().Profile(profile); !ok {
		return nil, fmt.Errorf("%w %q", token.ErrUnknownProfile, profile)
	}
	ring, err := k.rt.Rotate(ctx, profile)
	if err != nil {
		return nil, err
	}
	k.logger.Info("managed keys: rotation started by hand", "profile", profile)
	return keys.Infos(ring), nil
}

// keyEvents logs, counts and audits what the keys runtime does.
type keyEvents struct {
	logger  *slog.Logger
	metrics *metrics.Metrics
	trail   *audit.Trail
	every   *logevery.Every // throttles the lines of a sync failing again and again
	sealed  bool            // the last sync failed as the stored keys did not open
}

func (ev *keyEvents) Applied(changes []keys.Change, rings map[string]keys.Keyring) {
	for _, c := range changes {
		ev.metrics.KeyChanged(c.Profile, string(c.Kind))
		mk := c.Key
		switch c.Kind {
		case keys.Published:
			ev.logger.Info("managed key published; it signs from its activation", "profile", c.Profile, "kid", mk.Kid, "alg", mk.Alg, "activates", mk.Activates)
		case keys.Activated:
			ev.logger.Info("managed key activated; it signs now", "profile", c.Profile, "kid", mk.Kid, "alg", mk.Alg, "retires", timeOrNever(mk.Retires))
		case keys.Retired:
			ev.logger.Info("managed key retired; it verifies until it is deleted", "profile", c.Profile, "kid", mk.Kid, "deletes", mk.Deletes)
		case keys.Deleted:
			ev.logger.Info("managed key deleted; every token it signed has expired", "profile", c.Profile, "kid", mk.Kid)
		}
	}
	for name, ring := range rings {
		ev.metrics.Keys(name, countStates(ring))
	}
}

// Wrote records the state changes this instance wrote, once for all the
// instances sharing the store: "published" is a rotation starting, by the
// schedule or by hand.
func (ev *keyEvents) Wrote(changes []keys.Change) {
	for _, c := range changes {
		ev.trail.Record(context.Background(), audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionKeyState, //nolint:errcheck // logged by the trail
			Target: "profile:" + c.Profile, Detail: string(c.Kind) + " kid=" + c.Key.Kid})
	}
}

func (ev *keyEvents) SyncFailed(err error, first bool) {
	ev.metrics.KeySyncFailed()
	if ok, held := ev.every.Allow(); ok || first {
		ev.logger.Error("managed keys not synced; going on with the keys last read, and /readyz answers 503 until a sync succeeds",
			"err", err, "failures_since_last_line", held)
	}
	// A master key that stops opening the stored keys, once per spell,
	// though the store may have been failing for another reason first.
	sealed := errors.Is(err, keys.ErrSealed)
	if sealed && !ev.sealed {
		ev.trail.Record(context.Background(), audit.Entry{Actor: audit.ActorJWTD, Action: audit.ActionKeyOpenFail, Result: audit.ResultFailed, Detail: err.Error()}) //nolint:errcheck // logged by the trail
	}
	ev.sealed = sealed
}

func (ev *keyEvents) AdvanceFailed(err error) {
	ev.logger.Error("managed keys: the keys last read could not be advanced to now; going on with the keys in use", "err", err)
}

func (ev *keyEvents) Synced() {
	ev.sealed = false
	ev.logger.Info("managed keys synced again")
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
