package keys

import (
	"strings"
	"testing"
	"time"
)

func TestPlan(t *testing.T) {
	timing := Timing{JWKSMaxAge: 5 * time.Minute, SyncInterval: 10 * time.Second, Leeway: 30 * time.Second}
	policies, err := Plan(map[string]ProfileKeys{
		"default":   {Lifetime: 5 * time.Minute},                                               // built-in: managed
		"castlabs":  {Managed: &ManagedSpec{RotateEvery: time.Hour}, Lifetime: 24 * time.Hour}, // keeps HS512 and text
		"appverify": {Key: "av1"},                                                              // configured
		"mine":      {Managed: &ManagedSpec{}, Lifetime: time.Minute},                          // ES256, 720h
		"edd":       {Managed: &ManagedSpec{Alg: "EdDSA", RotateEvery: 2 * time.Hour}, Lifetime: time.Minute},
		"plain":     {}, // neither: not planned
	}, timing)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := policies["appverify"]; ok {
		t.Error("a profile with a configured key got managed keys")
	}
	if _, ok := policies["plain"]; ok {
		t.Error("a profile that is not built in got managed keys without asking")
	}
	lead := 5*time.Minute + 20*time.Second + 30*time.Second
	for name, want := range map[string]Policy{
		"default":  {Alg: "ES256", RotateEvery: DefaultRotateEvery, PublishLead: lead, Keep: 5*time.Minute + 90*time.Second + 10*time.Second},
		"castlabs": {Alg: "HS512", Text: true, RotateEvery: time.Hour, PublishLead: lead, Keep: 24*time.Hour + 100*time.Second},
		"mine":     {Alg: "ES256", RotateEvery: DefaultRotateEvery, PublishLead: lead, Keep: time.Minute + 100*time.Second},
		"edd":      {Alg: "EdDSA", RotateEvery: 2 * time.Hour, PublishLead: lead, Keep: time.Minute + 100*time.Second},
	} {
		if got := policies[name]; got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	_, err = Plan(map[string]ProfileKeys{"x": {Key: "k", Managed: &ManagedSpec{}}}, timing)
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("key and managed: %v", err)
	}
}
