package main

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/config"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token"
	"github.com/spf13/pflag"
)

// buildService loads the configured keys, gives each built-in profile
// without a configured key the one jwtd keeps in the data directory, and
// checks the profiles against the keys. Only the server (generate) makes
// kept keys on its first start: a command that found none would otherwise
// sign or verify with keys the server does not have.
func buildService(cfg *config.Config, generate bool) (*token.Service, error) {
	list := make([]*keys.Key, 0, len(cfg.Keys)+3)
	for _, spec := range cfg.Keys {
		k, err := keys.Load(spec, cfg.Dir(), cfg.KeyFiles())
		if err != nil {
			return nil, err
		}
		list = append(list, k)
	}
	profiles := maps.Clone(cfg.Profiles)
	if profiles == nil {
		profiles = map[string]token.ProfileSpec{}
	}
	builtin := token.BuiltinProfiles()
	names := make([]string, 0, len(builtin))
	for name := range builtin {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		spec, ok := profiles[name]
		if !ok {
			spec = builtin[name]
		}
		if spec.Key != "" {
			continue
		}
		kept := keys.Kept{Dir: cfg.DataDir, Name: name, Alg: token.BuiltinAlg(name), Files: cfg.KeyFiles(),
			Text: spec.Layout == token.LayoutCastlabs}
		load := keys.LoadKept
		if generate {
			load = keys.LoadOrGenerate
		}
		k, err := load(kept)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w\nRun this command with the server's configuration: the same --config (JWTD_CONFIG), or --data-dir (JWTD_DATA_DIR) naming its data directory", err)
		}
		if err != nil {
			return nil, err
		}
		list = append(list, k)
		spec.Key = k.Kid()
		profiles[name] = spec
	}
	set, err := keys.NewSet(list...)
	if err != nil {
		return nil, err
	}
	return token.NewService(set, profiles, token.Options{Leeway: cfg.Leeway})
}

// loadForCLI reads the configuration a command's flags name and builds the
// token service with the keys the server made (never making any).
func loadForCLI(fs *pflag.FlagSet, e env) (*config.Config, *token.Service, error) {
	cfg, err := config.Load(fs, e.getenv)
	if err != nil {
		return nil, nil, err
	}
	svc, err := buildService(cfg, false)
	return cfg, svc, err
}

// rotation enforces, across reloads, that a key is not removed while tokens
// it signed may still be live: a key that signs now cannot be removed, and a
// key that stopped signing can be removed once the longest TTL of the
// profiles it signed for, and the verifier's leeway, have passed. It
// remembers only what this process saw; a restart starts afresh.
type rotation struct {
	retired map[string]time.Time // kid → when its tokens are all expired
}

// check refuses next if it drops a key that may have live tokens; on
// success it records the keys next stops signing with.
func (r *rotation) check(cur, next *token.Service, now time.Time) error {
	if r.retired == nil {
		r.retired = map[string]time.Time{}
	}
	signing := signingTTLs(cur)
	var refused []string
	for _, k := range cur.Keys().All() {
		if _, kept := next.Keys().Lookup(k.Kid()); kept {
			continue
		}
		if _, ok := signing[k.Kid()]; ok {
			refused = append(refused, fmt.Sprintf("%q signs now; make it verify-only first", k.Kid()))
		} else if until, ok := r.retired[k.Kid()]; ok && now.Before(until) {
			refused = append(refused, fmt.Sprintf("%q may have live tokens until %s", k.Kid(), until.Format(time.RFC3339)))
		}
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		return fmt.Errorf("refusing to remove keys: %s", strings.Join(refused, "; "))
	}
	nextSigning := signingTTLs(next)
	for kid, ttl := range signing {
		if _, still := nextSigning[kid]; !still {
			r.retired[kid] = now.Add(ttl + cur.Leeway())
		}
	}
	return nil
}

// signingTTLs maps each signing key's kid to the longest TTL it signs for.
func signingTTLs(s *token.Service) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range s.Profiles() {
		if p.TTL > out[p.Key.Kid()] {
			out[p.Key.Kid()] = p.TTL
		}
	}
	return out
}
