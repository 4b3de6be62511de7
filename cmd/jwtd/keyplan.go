package main

import (
	"context"
	"log/slog"
	"maps"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token"
	"github.com/spf13/pflag"
)

// keyPlan is what the configuration says of the keys: the profiles, with
// the built-in ones filled in, and the policies of the managed ones.
type keyPlan struct {
	profiles map[string]token.ProfileSpec
	policies map[string]keys.Policy
}

// planKeys reads the profiles of the configuration, the built-in ones
// filled in, and the policies of those whose keys jwtd makes
// (keys.Plan, which derives the timing rules).
func planKeys(cfg *config.Config) (keyPlan, error) {
	plan := keyPlan{profiles: maps.Clone(cfg.Profiles)}
	if plan.profiles == nil {
		plan.profiles = map[string]token.ProfileSpec{}
	}
	for name, spec := range token.BuiltinProfiles() {
		if _, ok := plan.profiles[name]; !ok {
			plan.profiles[name] = spec
		}
	}
	profiles := make(map[string]keys.ProfileKeys, len(plan.profiles))
	for name, spec := range plan.profiles {
		profiles[name] = keys.ProfileKeys{Key: spec.Key, Managed: spec.Managed, Lifetime: spec.Lifetime()}
	}
	var err error
	plan.policies, err = keys.Plan(profiles, keyTiming(cfg))
	return plan, err
}

// planAndSeal is planKeys and the plan's master keys (keyPlan.sealer).
func planAndSeal(cfg *config.Config, e env, create bool) (keyPlan, *keys.Sealer, error) {
	plan, err := planKeys(cfg)
	if err != nil {
		return keyPlan{}, nil, err
	}
	sealer, err := plan.sealer(cfg, e, create)
	return plan, sealer, err
}

// keyTiming is the configuration's managed-key timing.
func keyTiming(cfg *config.Config) keys.Timing {
	return keys.Timing{JWKSMaxAge: cfg.KeyStore.JWKSMaxAge, SyncInterval: cfg.KeyStore.SyncInterval, Leeway: cfg.Leeway}
}

// build makes the token service from the configured keys and the managed
// keyrings: a managed profile signs with its keyring's current key and
// verifies with all of its keys.
//
// known is the key history, which holds the tokens of keys that left the
// set to jwtd's rules.
func (plan keyPlan) build(cfg *config.Config, rings map[string]keys.Keyring, sealer *keys.Sealer, known []keys.KnownKey) (*token.Service, error) {
	list := make([]*keys.Key, 0, len(cfg.Keys)+3)
	for _, spec := range cfg.Keys {
		k, err := keys.Load(spec, cfg.Dir(), cfg.KeyFiles())
		if err != nil {
			return nil, err
		}
		list = append(list, k)
	}
	profiles := maps.Clone(plan.profiles)
	for _, name := range sortedNames(plan.policies) {
		current, all, err := keys.OpenRing(rings[name], sealer)
		if err != nil {
			return nil, err
		}
		spec := profiles[name]
		spec.Key = current.Kid()
		for _, k := range all {
			if k != current {
				spec.VerifyKeys = append(spec.VerifyKeys, k.Kid())
			}
		}
		profiles[name] = spec
		list = append(list, all...)
	}
	set, err := keys.NewSet(list...)
	if err != nil {
		return nil, err
	}
	return token.NewService(set, profiles, token.Options{Leeway: cfg.Leeway, Known: known})
}

// sealer returns the master keys the managed keys are sealed under
// (keys.OpenSealer): JWTD_MASTER_KEY, key_store.master_key_file, or with
// the embedded store <data_dir>/master.key, which serve (create) makes on
// its first start. With no managed profile, none is needed.
func (plan keyPlan) sealer(cfg *config.Config, e env, create bool) (*keys.Sealer, error) {
	if len(plan.policies) == 0 {
		return nil, nil
	}
	src := keys.MasterKeySource{Env: e.getenv("JWTD_MASTER_KEY"), File: cfg.KeyStore.MasterKeyFile, Files: cfg.KeyFiles(), Create: create}
	if src.File != "" && !filepath.IsAbs(src.File) && cfg.Dir() != "" {
		src.File = filepath.Join(cfg.Dir(), src.File)
	}
	if strings.HasPrefix(cfg.StoreURL(), "sqlite://") {
		src.Embedded = filepath.Join(cfg.DataDir, keys.MasterKeyFile)
	}
	return keys.OpenSealer(src, sortedNames(plan.policies))
}

// cliKeys is what a command other than serve works with: the
// configuration, the record store (the caller closes it), the key
// manager and the token service, built from the keys serve made.
type cliKeys struct {
	cfg     *config.Config
	store   storage
	manager *keys.Manager
	svc     *token.Service
}

// loadForCLI reads the configuration a command's flags name, opens the
// store, and builds the token service with the keys the server made
// (never making any).
func loadForCLI(ctx context.Context, fs *pflag.FlagSet, e env) (*cliKeys, error) {
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return nil, err
	}
	plan, sealer, err := planAndSeal(cfg, e, false)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := openStore(ctx, cfg, logger, nil)
	if err != nil {
		return nil, err
	}
	c := &cliKeys{cfg: cfg, store: store, manager: &keys.Manager{Store: store, Sealer: sealer, Policies: plan.policies}}
	rings, err := c.manager.Read(ctx)
	var known []keys.KnownKey
	if err == nil {
		known, err = store.KnownKeys(ctx)
	}
	if err == nil {
		c.svc, err = plan.build(cfg, rings, sealer, known)
	}
	if err != nil {
		store.Close()
		return nil, err
	}
	return c, nil
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
