package clock

import (
	"testing"
	"time"
)

// A fake timer fires when the clock reaches its time, not before, once;
// a stopped one never does.
func TestFakeTimers(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := NewFake(start)
	a, b, stopped := f.NewTimer(time.Second), f.NewTimer(3*time.Second), f.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop: want true for an armed timer, then false")
	}
	f.Advance(999 * time.Millisecond)
	select {
	case <-a.C():
		t.Fatal("fired before its time")
	default:
	}
	f.Advance(time.Millisecond)
	if got := <-a.C(); !got.Equal(start.Add(time.Second)) {
		t.Errorf("fired at %s", got)
	}
	if a.Stop() {
		t.Error("Stop of a fired timer reported it armed")
	}
	if n := f.Timers(); n != 1 {
		t.Errorf("%d timers armed, want 1", n)
	}
	f.Advance(time.Hour)
	<-b.C()
	select {
	case <-stopped.C():
		t.Error("a stopped timer fired")
	default:
	}
	if now := f.Now(); !now.Equal(start.Add(time.Hour + time.Second)) {
		t.Errorf("Now %s", now)
	}
	select {
	case <-f.NewTimer(0).C():
	default:
		t.Error("a timer of 0 did not fire at once")
	}
}
