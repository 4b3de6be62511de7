package record

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Behind a store that stops answering, requests do not pile up: MaxWaiting
// of them wait, each at most Timeout, and the rest are refused at once;
// once the store answers again, inserts commit and nothing is left
// waiting.
func TestGroupCommitterBounds(t *testing.T) {
	release := make(chan struct{})
	var frozen sync.Once
	commit := func(batch []*Record) ([]error, error) {
		frozen.Do(func() { <-release }) // the first commit hangs until released
		return make([]error, len(batch)), nil
	}
	g := NewGroupCommitter(commit, GroupOptions{MaxBatch: 2, MaxWaiting: 4, Timeout: 300 * time.Millisecond})
	defer g.Close()
	goroutines := runtime.NumGoroutine()

	results := make(chan error, 10)
	start := time.Now()
	for i := range 10 {
		go func() { results <- g.Insert(context.Background(), &Record{JTI: string(rune('a' + i))}) }()
	}
	busy, timedOut := 0, 0
	for range 10 {
		err := <-results
		switch {
		case errors.Is(err, ErrBusy):
			busy++
		case errors.Is(err, ErrUnavailable):
			timedOut++
		default:
			t.Errorf("Insert behind a frozen store: %v", err)
		}
	}
	if took := time.Since(start); busy != 6 || timedOut != 4 || took > 2*time.Second {
		t.Errorf("%d refused at once, %d timed out, after %s; want 6, 4, about 300ms", busy, timedOut, took)
	}
	if !errors.Is(ErrBusy, ErrUnavailable) {
		t.Error("ErrBusy must be a 503 like every unavailable store")
	}

	close(release)
	if err := g.Insert(context.Background(), &Record{JTI: "after"}); err != nil {
		t.Errorf("after the store answers again: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines, %d before", n, goroutines)
	}
}

// A commit that fails as a whole makes the committer failing until one
// succeeds.
func TestGroupCommitterFailing(t *testing.T) {
	full := errors.New("database or disk is full")
	var mu sync.Mutex
	fail := true
	g := NewGroupCommitter(func(batch []*Record) ([]error, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, full
		}
		return make([]error, len(batch)), nil
	}, GroupOptions{})
	defer g.Close()
	if err := g.Insert(context.Background(), &Record{JTI: "a"}); !errors.Is(err, full) || !errors.Is(g.Failing(), full) {
		t.Fatalf("Insert %v, Failing %v", err, g.Failing())
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := g.Insert(context.Background(), &Record{JTI: "b"}); err != nil || g.Failing() != nil {
		t.Errorf("Insert %v, Failing %v", err, g.Failing())
	}
}
