package apikey

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
	if _, err := s.Authorize("Bearer made-but-not-configured", ScopeAdmin); err == nil || !strings.Contains(err.Error(), "kill -HUP") {
		t.Errorf("an unknown key is not told how a new key comes into use: %v", err)
	}
	// A key without the scope is told which scope it lacks.
	if name, err := s.Authorize("Bearer app-key", ScopeAdmin); name != "app" || err == nil || err.Error() != "the API key lacks the admin scope" {
		t.Errorf("a key without the scope: %q, %v", name, err)
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

// Two processes starting at once: one key, printed by one of them only;
// a file that is not a key says how to recover.
func TestAdminKeyMadeOnce(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	specs := make([]Spec, 8)
	plains := make([]string, 8)
	for i := range specs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			specs[i], plains[i], err = LoadOrCreateAdmin(dir)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	printed := 0
	for i := range specs {
		if specs[i].SHA256 != specs[0].SHA256 {
			t.Errorf("two admin keys: %s and %s", specs[i].SHA256, specs[0].SHA256)
		}
		if plains[i] != "" {
			printed++
			if Hash(plains[i]) != specs[0].SHA256 {
				t.Error("the printed key is not the kept one")
			}
		}
	}
	if printed != 1 {
		t.Errorf("printed %d times", printed)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left behind: %v", entries)
	}
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "admin-api-key.json"), nil, 0o600)
	if _, _, err := LoadOrCreateAdmin(empty); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Errorf("an empty file: %v", err)
	}
}
