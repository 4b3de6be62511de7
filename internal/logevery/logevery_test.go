package logevery

import (
	"sync"
	"testing"
	"time"
)

// Of many concurrent lines within one interval, one goes through; later
// ones within the interval are held back; the first after it carries the
// count of the others.
func TestEvery(t *testing.T) {
	e := New(200 * time.Millisecond)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	through := 0
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if ok, _ := e.AllowAt(start); ok {
				mu.Lock()
				through++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if through != 1 {
		t.Fatalf("%d lines went through at once, want 1", through)
	}
	if ok, _ := e.AllowAt(start.Add(199 * time.Millisecond)); ok {
		t.Error("a line within the interval went through")
	}
	if ok, held := e.AllowAt(start.Add(200 * time.Millisecond)); !ok || held != 100 {
		t.Errorf("after the interval: %v, %d held back; want true, 100", ok, held)
	}
	if ok, held := e.AllowAt(start.Add(400 * time.Millisecond)); !ok || held != 0 {
		t.Errorf("an interval later: %v, %d held back; want true, 0", ok, held)
	}
}

// The zero value lets every line through.
func TestZeroEvery(t *testing.T) {
	var e Every
	now := time.Now()
	for range 3 {
		if ok, held := e.AllowAt(now); !ok || held != 0 {
			t.Errorf("zero Every: %v, %d", ok, held)
		}
	}
}
