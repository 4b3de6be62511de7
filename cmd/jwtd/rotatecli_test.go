package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Right after jwtd keys rotate, before any server has synced, the CLI
// says the rotation is pending and when the next key comes, instead of
// showing the current key "signing until" now and no next key; once a
// server has synced, the next key is there.
func TestCLIRightAfterRotate(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "jwtd.yaml", "data_dir: "+filepath.Join(dir, "data")+"\nkey_store: {sync_interval: 7s}\n")
	firstStart(t, nil, "--config", cfg)
	if out, stderr, err := runCLI(t, nil, "", "keys", "rotate", "--config", cfg, "--profile", "castlabs"); err != nil {
		t.Fatalf("keys rotate: %v %s %s", err, out, stderr)
	}
	out, stderr, err := runCLI(t, nil, "", "keys", "list", "--config", cfg)
	if err != nil || !strings.Contains(out, "profile castlabs: rotation pending") || !strings.Contains(out, "within 7s") {
		t.Errorf("keys list right after the rotate: %v %s %s", err, out, stderr)
	}
	_, _, err = runCLI(t, nil, "", "keys", "show", "--config", cfg, "--profile", "castlabs", "--next")
	if err == nil || !strings.Contains(err.Error(), "a rotation was started") || !strings.Contains(err.Error(), "within 7s") {
		t.Errorf("keys show --next right after the rotate: %v", err)
	}
	firstStart(t, nil, "--config", cfg) // a server syncs: the next key is made
	if out, _, err := runCLI(t, nil, "", "keys", "list", "--config", cfg); err != nil || strings.Contains(out, "pending") || !strings.Contains(out, "next") {
		t.Errorf("keys list after a sync: %v %s", err, out)
	}
	if next, stderr, err := runCLI(t, nil, "", "keys", "show", "--config", cfg, "--profile", "castlabs", "--next"); err != nil || strings.TrimSpace(next) == "" {
		t.Errorf("keys show --next after a sync: %v %s", err, stderr)
	}
}
