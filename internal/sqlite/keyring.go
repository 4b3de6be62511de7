package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
)

// Keyring returns a profile's keyring; Version 0 when none is stored.
func (s *Store) Keyring(ctx context.Context, profile string) (keys.Keyring, error) {
	ring := keys.Keyring{Profile: profile}
	var blob []byte
	err := s.read.QueryRowContext(ctx, `SELECT version, keys FROM keyrings WHERE profile = ?`, profile).Scan(&ring.Version, &blob)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ring, nil
	case err != nil:
		return ring, unavailable(err)
	}
	if err := json.Unmarshal(blob, &ring.Keys); err != nil {
		return ring, fmt.Errorf("keyring of %q: %w", profile, err)
	}
	return ring, nil
}

// PutKeyring stores ring if its version is still the stored one, in one
// statement: of several instances that read one version, one wins.
func (s *Store) PutKeyring(ctx context.Context, ring keys.Keyring) (int64, error) {
	blob, err := json.Marshal(ring.Keys)
	if err != nil {
		return 0, err
	}
	var n int
	if ring.Version == 0 {
		n, err = s.exec(ctx, `INSERT INTO keyrings (profile, version, keys) VALUES (?, 1, ?) ON CONFLICT (profile) DO NOTHING`, ring.Profile, blob)
	} else {
		n, err = s.exec(ctx, `UPDATE keyrings SET version = version + 1, keys = ? WHERE profile = ? AND version = ?`, blob, ring.Profile, ring.Version)
	}
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, keys.ErrConflict
	}
	return ring.Version + 1, nil
}

// Keyrings returns every profile's keyring.
func (s *Store) Keyrings(ctx context.Context) ([]keys.Keyring, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT profile, version, keys FROM keyrings ORDER BY profile`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []keys.Keyring
	for rows.Next() {
		var ring keys.Keyring
		var blob []byte
		if err := rows.Scan(&ring.Profile, &ring.Version, &blob); err != nil {
			return nil, unavailable(err)
		}
		if err := json.Unmarshal(blob, &ring.Keys); err != nil {
			return nil, fmt.Errorf("keyring of %q: %w", ring.Profile, err)
		}
		out = append(out, ring)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}

// RememberKeys adds keys to the key history, keeping the entries it has.
func (s *Store) RememberKeys(ctx context.Context, known []keys.KnownKey) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, k := range known {
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_history (fingerprint, kid, alg, profiles, recorded, lifetime, added)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING`,
			k.Fingerprint, k.Kid, k.Alg, k.Profiles, k.Recorded, int64(k.Lifetime), k.Added.UnixNano()); err != nil {
			return unavailable(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// KnownKeys returns the key history.
func (s *Store) KnownKeys(ctx context.Context) ([]keys.KnownKey, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT fingerprint, kid, alg, profiles, recorded, lifetime, added FROM key_history ORDER BY added, fingerprint`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []keys.KnownKey
	for rows.Next() {
		var k keys.KnownKey
		var lifetime, added int64
		if err := rows.Scan(&k.Fingerprint, &k.Kid, &k.Alg, &k.Profiles, &k.Recorded, &lifetime, &added); err != nil {
			return nil, unavailable(err)
		}
		k.Lifetime, k.Added = time.Duration(lifetime), time.Unix(0, added).UTC()
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(err)
	}
	return out, nil
}
