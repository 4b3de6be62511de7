package keys

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

func generator() (MakeKey, *int) {
	n := 0
	return func(alg string) (ManagedKey, error) {
		n++
		return ManagedKey{Kid: fmt.Sprintf("k%d", n), Alg: alg, Private: []byte("sealed")}, nil
	}, &n
}

var testPolicy = Policy{Alg: "ES256", RotateEvery: time.Hour, PublishLead: 10 * time.Minute, Keep: 20 * time.Minute}

func state(ring []ManagedKey) map[string]KeyState {
	out := map[string]KeyState{}
	for _, k := range ring {
		out[k.Kid] = k.State
	}
	return out
}

// The lifecycle step by step: first key signs at once; its successor is
// published PublishLead before it signs; the old one verifies for Keep,
// then goes.
func TestAdvanceSteps(t *testing.T) {
	gen, made := generator()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ring, changed, err := Advance(nil, testPolicy, t0, gen)
	if err != nil || !changed || len(ring) != 1 || ring[0].State != KeyCurrent || !ring[0].Retires.Equal(t0.Add(time.Hour)) {
		t.Fatalf("first start: %+v %v %v", ring, changed, err)
	}
	if _, changed, _ := Advance(ring, testPolicy, t0.Add(49*time.Minute), gen); changed {
		t.Error("changed before the successor is due")
	}
	ring, changed, _ = Advance(ring, testPolicy, t0.Add(50*time.Minute), gen)
	if !changed || len(ring) != 2 || ring[1].State != KeyNext || !ring[1].Activates.Equal(t0.Add(time.Hour)) {
		t.Fatalf("successor: %+v", ring)
	}
	if _, changed, _ := Advance(ring, testPolicy, t0.Add(59*time.Minute), gen); changed {
		t.Error("changed before the successor's activation")
	}
	ring, _, _ = Advance(ring, testPolicy, t0.Add(61*time.Minute), gen)
	if s := state(ring); s["k1"] != KeyRetired || s["k2"] != KeyCurrent || !ring[0].Deletes.Equal(t0.Add(81*time.Minute)) {
		t.Fatalf("activation: %+v", ring)
	}
	ring, _, _ = Advance(ring, testPolicy, t0.Add(81*time.Minute), gen)
	if s := state(ring); len(s) != 1 || s["k2"] != KeyCurrent || *made != 2 {
		t.Fatalf("deletion: %+v", ring)
	}
}

// A rotation started by hand still publishes the new key PublishLead
// before it signs, and a second request while one is under way changes
// nothing.
func TestRotateNow(t *testing.T) {
	gen, _ := generator()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ring, _, _ := Advance(nil, testPolicy, t0, gen)
	now := t0.Add(5 * time.Minute)
	ring, ok := RotateNow(ring, now)
	if !ok {
		t.Fatal("RotateNow refused")
	}
	ring, _, _ = Advance(ring, testPolicy, now, gen)
	if len(ring) != 2 || ring[1].State != KeyNext || !ring[1].Activates.Equal(now.Add(testPolicy.PublishLead)) {
		t.Fatalf("%+v", ring)
	}
	if _, ok := RotateNow(ring, now); ok {
		t.Error("a second rotation while one is under way")
	}
	if _, changed, _ := Advance(ring, testPolicy, now.Add(9*time.Minute), gen); changed {
		t.Error("the new key signed before it was published for PublishLead")
	}
}

// Over many rotations, at random moments (as instances that wake up when
// they do): always exactly one current key after the first start; every
// key after the first is in the keyring PublishLead before it signs; none
// goes before Keep after it stopped signing.
func TestAdvanceInvariants(t *testing.T) {
	gen, _ := generator()
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	type life struct{ seen, current, stopped, gone time.Time }
	lives := map[string]*life{}
	var ring []ManagedKey
	for step := 0; step < 5000; step++ {
		now = now.Add(time.Duration(rng.Int64N(int64(testPolicy.PublishLead / 3))))
		if rng.IntN(200) == 0 {
			ring, _ = RotateNow(ring, now)
		}
		var err error
		ring, _, err = Advance(ring, testPolicy, now, gen)
		if err != nil {
			t.Fatal(err)
		}
		present := map[string]bool{}
		currents := 0
		for _, k := range ring {
			present[k.Kid] = true
			l := lives[k.Kid]
			if l == nil {
				l = &life{seen: now}
				lives[k.Kid] = l
			}
			switch k.State {
			case KeyCurrent:
				currents++
				if l.current.IsZero() {
					l.current = now
				}
			case KeyRetired:
				if l.stopped.IsZero() {
					l.stopped = now
				}
			}
		}
		if currents != 1 {
			t.Fatalf("at %s: %d current keys: %+v", now, currents, ring)
		}
		for kid, l := range lives {
			if !present[kid] && l.gone.IsZero() {
				l.gone = now
			}
		}
	}
	rotations := 0
	for kid, l := range lives {
		if kid != "k1" && !l.current.IsZero() {
			rotations++
			if l.current.Sub(l.seen) < testPolicy.PublishLead {
				t.Errorf("%s signed %s after it was published", kid, l.current.Sub(l.seen))
			}
		}
		if !l.gone.IsZero() && l.gone.Sub(l.stopped) < testPolicy.Keep {
			t.Errorf("%s went %s after it stopped signing", kid, l.gone.Sub(l.stopped))
		}
	}
	if rotations < 20 {
		t.Errorf("only %d rotations in the run", rotations)
	}
}

func TestPolicyCheck(t *testing.T) {
	if err := testPolicy.Check(); err != nil {
		t.Error(err)
	}
	for _, p := range []Policy{
		{Alg: "none", RotateEvery: time.Hour, PublishLead: time.Minute, Keep: time.Minute},
		{Alg: "ES256", RotateEvery: time.Minute, PublishLead: time.Hour, Keep: time.Minute},
		{Alg: "ES256", RotateEvery: time.Hour, PublishLead: time.Minute},
	} {
		if err := p.Check(); err == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
