package recordtest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
)

// Keyrings are stored whole and changed by compare-and-swap on their
// version: of several writers that read one version, exactly one wins.
func testKeyrings(t *testing.T, s Store) {
	ctx := context.Background()
	ring, err := s.Keyring(ctx, "default")
	if err != nil || ring.Version != 0 || len(ring.Keys) != 0 {
		t.Fatalf("a keyring never stored: %+v %v", ring, err)
	}
	key := keys.ManagedKey{Kid: "k1", Alg: "ES256", State: keys.KeyNext, Created: base,
		Activates: base.Add(time.Hour), Private: []byte{0, 1, 2, 0xff}}
	ring.Keys = []keys.ManagedKey{key}
	v, err := s.PutKeyring(ctx, ring)
	if err != nil || v != 1 {
		t.Fatalf("first put: %d %v", v, err)
	}
	if _, err := s.PutKeyring(ctx, ring); !errors.Is(err, keys.ErrConflict) {
		t.Errorf("a second first put: %v, want ErrConflict", err)
	}
	got, err := s.Keyring(ctx, "default")
	if err != nil || got.Version != 1 || len(got.Keys) != 1 {
		t.Fatalf("read back: %+v %v", got, err)
	}
	k := got.Keys[0]
	if k.Kid != key.Kid || k.Alg != key.Alg || k.State != key.State || !k.Created.Equal(key.Created) ||
		!k.Activates.Equal(key.Activates) || !k.Retires.IsZero() || !k.Deletes.IsZero() || string(k.Private) != string(key.Private) {
		t.Errorf("read back %+v, want %+v", k, key)
	}

	// A rotation by several instances at once: one wins, the others are
	// told to read again.
	got.Keys[0].State = keys.KeyCurrent
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	for range 8 {
		wg.Go(func() {
			_, err := s.PutKeyring(ctx, got)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, keys.ErrConflict):
				lost.Add(1)
			default:
				t.Errorf("put: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != 7 {
		t.Errorf("%d won, %d lost; want 1 and 7", won.Load(), lost.Load())
	}
	if r, _ := s.Keyring(ctx, "default"); r.Version != 2 || r.Keys[0].State != keys.KeyCurrent {
		t.Errorf("after the race: %+v", r)
	}
	// A writer that read a version long superseded loses, however the
	// store keeps its history.
	v3 := got
	v3.Version = 2
	if _, err := s.PutKeyring(ctx, v3); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutKeyring(ctx, got); !errors.Is(err, keys.ErrConflict) {
		t.Errorf("a write from version 1 after version 3: %v, want ErrConflict", err)
	}
	if r, _ := s.Keyring(ctx, "default"); r.Version != 3 {
		t.Errorf("after a stale write: version %d, want 3", r.Version)
	}
	if _, err := s.PutKeyring(ctx, keys.Keyring{Profile: "castlabs", Keys: []keys.ManagedKey{{Kid: "c1", Alg: "HS512", State: keys.KeyCurrent, Created: base}}}); err != nil {
		t.Fatal(err)
	}
	rings, err := s.Keyrings(ctx)
	if err != nil || len(rings) != 2 || rings[0].Profile != "castlabs" || rings[1].Profile != "default" {
		t.Errorf("Keyrings: %+v %v", rings, err)
	}
}
