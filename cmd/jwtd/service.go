package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

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

// masterKeyFile is where the embedded store's master key is made.
const masterKeyFile = "master.key"

// sealer returns the master keys the managed keys are sealed under:
// JWTD_MASTER_KEY, or key_store.master_key_file, or with the embedded
// store master.key in the data directory, which serve (create) makes on
// its first start. With MongoDB, whose keys every instance shares, the
// master key must be given. With no managed profile, none is needed.
func (plan keyPlan) sealer(cfg *config.Config, e env, create bool) (*keys.Sealer, error) {
	if len(plan.policies) == 0 {
		return nil, nil
	}
	var masters [][]byte
	var err error
	switch file := cfg.KeyStore.MasterKeyFile; {
	case e.getenv("JWTD_MASTER_KEY") != "":
		if masters, err = keys.ParseMasterKeys(e.getenv("JWTD_MASTER_KEY")); err != nil {
			return nil, fmt.Errorf("JWTD_MASTER_KEY: %w", err)
		}
	case file != "":
		if !filepath.IsAbs(file) && cfg.Dir() != "" {
			file = filepath.Join(cfg.Dir(), file)
		}
		if masters, err = keys.LoadMasterKeys(file, cfg.KeyFiles()); err != nil {
			return nil, fmt.Errorf("key_store.master_key_file: %w", err)
		}
	case strings.HasPrefix(cfg.StoreURL(), "sqlite://"):
		path := filepath.Join(cfg.DataDir, masterKeyFile)
		masters, err = keys.LoadOwnMasterKeys(path, cfg.KeyFiles(), create)
		if errors.Is(err, fs.ErrNotExist) {
			abs, _ := filepath.Abs(path)
			return nil, fmt.Errorf("no master key at %s (jwtd serve makes it on its first start): %w\n"+
				"Run this command with the server's configuration: the same --config (JWTD_CONFIG), or --data-dir (JWTD_DATA_DIR) naming its data directory", abs, err)
		}
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("the managed keys of profiles %s are kept in MongoDB, sealed under a master key that every instance "+
			"must share, and none was given: set JWTD_MASTER_KEY on every instance to one key made with "+
			"head -c 32 /dev/urandom | base64 (or name a file holding it in key_store.master_key_file)",
			strings.Join(sortedNames(plan.policies), ", "))
	}
	return keys.NewSealer(masters...)
}

// adoptKept brings the keys an earlier jwtd generated in the data
// directory into the key store, for built-in profiles that have no keys
// there yet, so that the tokens they signed keep verifying and the
// clients holding the seed layouts' secrets keep working.
func adoptKept(ctx context.Context, cfg *config.Config, m *keys.Manager, now time.Time, logger *slog.Logger) ([]string, error) {
	var adopted []string
	for _, name := range sortedNames(m.Policies) {
		p := m.Policies[name]
		if _, builtin := keys.Builtin[name]; !builtin {
			continue
		}
		kept := keys.Kept{Dir: cfg.DataDir, Name: name, Alg: p.Alg, Files: cfg.KeyFiles(), Text: p.Text}
		k, err := keys.LoadKept(kept)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return adopted, err
		}
		ring, err := m.Store.Keyring(ctx, name)
		if err != nil {
			return adopted, err
		}
		if ring.Version != 0 {
			if !slices.ContainsFunc(ring.Keys, func(mk keys.ManagedKey) bool { return mk.Kid == k.Kid() }) {
				logger.Warn("a key an earlier jwtd kept in the data directory is not the key store's (another instance's was moved there first): "+
					"tokens it signed no longer verify, and clients holding it need the store's (jwtd keys show)", "profile", name, "file", kept.Path())
			}
			continue
		}
		ok, err := m.Adopt(ctx, name, k, now)
		if err != nil {
			return adopted, fmt.Errorf("moving %s into the key store: %w", kept.Path(), err)
		}
		if ok {
			adopted = append(adopted, kept.Path())
		}
	}
	return adopted, nil
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
	plan, err := planKeys(cfg)
	if err != nil {
		return nil, err
	}
	sealer, err := plan.sealer(cfg, e, false)
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
