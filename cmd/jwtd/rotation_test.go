package main

import (
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token"
)

// A key is removed only when no token it signed can still be live: not
// while it signs, and not before the longest TTL it signed for and the
// leeway have passed since it stopped.
func TestRotationRefusesEarlyRemoval(t *testing.T) {
	a, _ := keys.New("a", "HS256", []byte(strings.Repeat("a", 32)))
	b, _ := keys.New("b", "HS256", []byte(strings.Repeat("b", 32)))
	service := func(signer string, list ...*keys.Key) *token.Service {
		set, err := keys.NewSet(list...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := token.NewService(set, map[string]token.ProfileSpec{"p": {Key: signer, TTL: 10 * time.Minute}}, token.Options{Leeway: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signsA := service("a", a)
	bothSignsB := service("b", a, b)
	onlyB := service("b", b)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var rot rotation

	if err := rot.check(signsA, onlyB, now); err == nil || !strings.Contains(err.Error(), `"a" signs now`) {
		t.Errorf("dropping the signing key: %v", err)
	}
	if err := rot.check(signsA, bothSignsB, now); err != nil {
		t.Fatalf("moving signing to b, keeping a: %v", err)
	}
	if err := rot.check(bothSignsB, onlyB, now.Add(9*time.Minute)); err == nil || !strings.Contains(err.Error(), "live tokens until") {
		t.Errorf("dropping a 9 minutes after it stopped signing 10-minute tokens: %v", err)
	}
	if err := rot.check(bothSignsB, onlyB, now.Add(10*time.Minute+20*time.Second)); err == nil {
		t.Errorf("dropping a while its last tokens still verify within the leeway")
	}
	if err := rot.check(bothSignsB, onlyB, now.Add(10*time.Minute+30*time.Second)); err != nil {
		t.Errorf("dropping a once its tokens have expired, leeway included: %v", err)
	}
}
