package apikey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAuthorize(t *testing.T) {
	s, err := NewSet([]Spec{
		{Name: "ops", SHA256: Hash("ops-key"), Scopes: []string{ScopeAdmin, ScopeIntrospect}},
		{Name: "app", SHA256: Hash("app-key"), Scopes: []string{ScopeIssue}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header, scope string
		want          error
	}{
		{"Bearer ops-key", ScopeAdmin, nil},
		{"Bearer app-key", ScopeIssue, nil},
		{"Bearer app-key", ScopeAdmin, ErrForbidden},
		{"Bearer wrong", ScopeAdmin, ErrInvalid},
		{"", ScopeAdmin, ErrMissing},
		{"Bearer ", ScopeAdmin, ErrMissing},
		{"Basic b3BzOmtleQ==", ScopeAdmin, ErrMissing},
		{"ops-key", ScopeAdmin, ErrMissing},
	} {
		if _, err := s.Authorize(tc.header, tc.scope); !errors.Is(err, tc.want) {
			t.Errorf("%q %s: %v, want %v", tc.header, tc.scope, err, tc.want)
		}
	}
	for _, bad := range []Spec{
		{Name: "", SHA256: Hash("x")},
		{Name: "n", SHA256: "abc"},
		{Name: "n", SHA256: Hash("x"), Scopes: []string{"root"}},
	} {
		if _, err := NewSet([]Spec{bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestLoadOrCreateAdmin(t *testing.T) {
	dir := t.TempDir()
	spec, plain, err := LoadOrCreateAdmin(dir)
	if err != nil || !strings.HasPrefix(plain, "jwtd_") || spec.SHA256 != Hash(plain) {
		t.Fatalf("%+v %q %v", spec, plain, err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "admin-api-key.json"))
	if strings.Contains(string(data), plain) {
		t.Error("the plain key was stored")
	}
	info, _ := os.Stat(filepath.Join(dir, "admin-api-key.json"))
	if info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	again, plain2, err := LoadOrCreateAdmin(dir)
	if err != nil || plain2 != "" || again.SHA256 != spec.SHA256 {
		t.Errorf("second start: %+v %q %v", again, plain2, err)
	}
	set, _ := NewSet([]Spec{again})
	for _, scope := range []string{ScopeAdmin, ScopeIssue, ScopeIntrospect} {
		if _, err := set.Authorize("Bearer "+plain, scope); err != nil {
			t.Errorf("admin key lacks %s: %v", scope, err)
		}
	}
}
