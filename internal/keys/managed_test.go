package keys

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/mongo"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/sqlite"
	"github.com/jwtd/jwtd/internal/testservice"
)

// Managed keys on both real stores: instances that sync one profile at
// once agree on one current key; a rotation publishes the next key before
// it signs; the keys open with the master key and only with it.
func TestManagedKeys(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) record.Store{
		"sqlite": func(t *testing.T) record.Store {
			s, err := sqlite.Open(filepath.Join(t.TempDir(), "jwtd.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"mongodb": func(t *testing.T) record.Store {
			url := testservice.MongoURL(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := mongo.Open(ctx, strings.TrimSuffix(url, "/")+"/jwtdkeys_"+strings.ReplaceAll(t.Name(), "/", "_"), mongo.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	} {
		t.Run(name, func(t *testing.T) { testManagedKeys(t, open(t)) })
	}
}

func testManagedKeys(t *testing.T, store record.Store) {
	ctx := context.Background()
	sealer, _ := NewSealer(masterKey(t))
	policy := Policy{Alg: "ES256", RotateEvery: time.Hour, PublishLead: 10 * time.Minute, Keep: 20 * time.Minute}
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

	// Four instances start at once on an empty store.
	var wg sync.WaitGroup
	kids := make([]string, 4)
	for i := range kids {
		wg.Go(func() {
			ring, err := Sync(ctx, store, "default", policy, SealedKeys(sealer), t0)
			if err != nil {
				t.Error(err)
				return
			}
			current, _, err := OpenRing(ring, sealer)
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

	// A rotation: the next key is published, not signing, then signs.
	ring, err := Sync(ctx, store, "default", policy, SealedKeys(sealer), t0.Add(55*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	current, all, err := OpenRing(ring, sealer)
	if err != nil || current.Kid() != kids[0] || len(all) != 2 || !all[1].PublishOnly() {
		t.Fatalf("with a next key: %v, %d keys, %v", current, len(all), err)
	}
	// Published at 55 min, it signs PublishLead later: at 65 min.
	ring, err = Sync(ctx, store, "default", policy, SealedKeys(sealer), t0.Add(66*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	next, all, err := OpenRing(ring, sealer)
	if err != nil || next.Kid() == kids[0] || len(all) != 2 {
		t.Fatalf("after the rotation: %v, %d keys, %v", next, len(all), err)
	}
	sig, err := current.Sign("a.b")
	if err != nil || all[0].Verify("a.b", sig) != nil {
		t.Errorf("the retired key no longer verifies what it signed: %v", err)
	}

	// Only the master key opens them.
	other, _ := NewSealer(masterKey(t))
	if _, _, err := OpenRing(ring, other); !errors.Is(err, ErrSealed) {
		t.Errorf("opened under another master key: %v", err)
	}

	// A secret, for the raw check below.
	hs, err := Sync(ctx, store, "castlabs", Policy{Alg: "HS512", RotateEvery: time.Hour, PublishLead: time.Minute, Keep: time.Minute}, SealedKeys(sealer), t0)
	if err != nil {
		t.Fatal(err)
	}
	secretKey, _, err := OpenRing(hs, sealer)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := store.(*sqlite.Store); ok {
		checkRawRows(t, s, secretKey.Secret())
	}
}

// checkRawRows reads the keyrings table as stored: no PEM, no secret in
// any encoding.
func checkRawRows(t *testing.T, s *sqlite.Store, secret []byte) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.Path()+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT keys FROM keyrings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		n++
		for _, clear := range [][]byte{[]byte("PRIVATE"), []byte("BEGIN"), secret, []byte(base64.StdEncoding.EncodeToString(secret)), []byte(base64.RawURLEncoding.EncodeToString(secret))} {
			if bytes.Contains(raw, clear) {
				t.Errorf("a stored keyring holds %.20q in the clear", clear)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d keyrings stored, want 2", n)
	}
}
