package logevery

import (
	"sync"
	"testing"
	"time"
)

// Of many concurrent lines within one interval, one goes through; the
// next, after the interval, carries the count of the others.
func TestEvery(t *testing.T) {
	e := New(200 * time.Millisecond)
	var mu sync.Mutex
	through := 0
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			if ok, _ := e.Allow(); ok {
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
	time.Sleep(250 * time.Millisecond)
	if ok, held := e.Allow(); !ok || held != 99 {
		t.Errorf("after the interval: %v, %d held back; want true, 99", ok, held)
	}
}
