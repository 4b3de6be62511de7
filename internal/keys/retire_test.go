package keys

import (
	"strings"
	"testing"
	"time"
)

// A configured key is removed only when no token it signed can still be
// live: not while it signs, and not before the longest TTL it signed for
// and the leeway have passed since it stopped.
func TestRetirementsRefuseEarlyRemoval(t *testing.T) {
	a, _ := New("a", "HS256", []byte(strings.Repeat("a", 32)))
	b, _ := New("b", "HS256", []byte(strings.Repeat("b", 32)))
	use := func(signer string, list ...*Key) Use {
		set, err := NewSet(list...)
		if err != nil {
			t.Fatal(err)
		}
		return Use{Keys: set, Signing: map[string]time.Duration{signer: 10 * time.Minute}}
	}
	signsA := use("a", a)
	bothSignsB := use("b", a, b)
	onlyB := use("b", b)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const leeway = 30 * time.Second
	var r Retirements

	if err := r.Check(signsA, onlyB, leeway, now); err == nil || !strings.Contains(err.Error(), `"a" signs now`) {
		t.Errorf("dropping the signing key: %v", err)
	}
	if err := r.Check(signsA, bothSignsB, leeway, now); err != nil {
		t.Fatalf("moving signing to b, keeping a: %v", err)
	}
	if err := r.Check(bothSignsB, onlyB, leeway, now.Add(9*time.Minute)); err == nil || !strings.Contains(err.Error(), "live tokens until") {
		t.Errorf("dropping a 9 minutes after it stopped signing 10-minute tokens: %v", err)
	}
	if err := r.Check(bothSignsB, onlyB, leeway, now.Add(10*time.Minute+20*time.Second)); err == nil {
		t.Errorf("dropping a while its last tokens still verify within the leeway")
	}
	if err := r.Check(bothSignsB, onlyB, leeway, now.Add(10*time.Minute+30*time.Second)); err != nil {
		t.Errorf("dropping a once its tokens have expired, leeway included: %v", err)
	}
}
