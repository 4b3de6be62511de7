package keys

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jwtd/jwtd/internal/secretfile"
)

// AdoptKept brings the keys an earlier jwtd generated in the data
// directory into the key store, for built-in profiles that have no keys
// there yet, so that the tokens they signed keep verifying and the
// clients holding the seed layouts' secrets keep working.
//
// It returns the files it moved, which are no longer read.
func (m *Manager) AdoptKept(ctx context.Context, dataDir string, files secretfile.Policy, now time.Time, logger *slog.Logger) ([]string, error) {
	var adopted []string
	for _, name := range slices.Sorted(maps.Keys(m.Policies)) {
		p := m.Policies[name]
		if _, builtin := Builtin[name]; !builtin {
			continue
		}
		kept := Kept{Dir: dataDir, Name: name, Alg: p.Alg, Files: files, Text: p.Text}
		k, err := LoadKept(kept)
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
			if !slices.ContainsFunc(ring.Keys, func(mk ManagedKey) bool { return mk.Kid == k.Kid() }) {
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
