package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode          os.FileMode
		allowReadable bool
		ok            bool
		says          string
	}{
		{0o600, false, true, ""},
		{0o400, false, true, ""},
		{0o640, false, false, "readable by group or others"},
		{0o644, false, false, "allow_readable_key_files"},
		{0o644, true, true, ""},
		{0o664, true, false, "writable by group or others"},
		{0o666, true, false, "chmod 600"},
		{0o602, true, false, "writable"},
	} {
		path := filepath.Join(dir, "k")
		os.Remove(path)
		if err := os.WriteFile(path, []byte("secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		data, err := Policy{AllowReadable: tc.allowReadable}.Read(path)
		switch {
		case tc.ok && (err != nil || string(data) != "secret"):
			t.Errorf("%04o allow=%v: %q %v", tc.mode, tc.allowReadable, data, err)
		case !tc.ok && (!errors.Is(err, ErrUnsafeMode) || !strings.Contains(err.Error(), tc.says)):
			t.Errorf("%04o allow=%v: %v, want an error saying %q", tc.mode, tc.allowReadable, err, tc.says)
		}
	}
	// Through a symbolic link (as Kubernetes mounts secrets), the target's
	// mode counts.
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("secret"), 0o644)
	os.Chmod(target, 0o644)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := (Policy{}).Read(link); !errors.Is(err, ErrUnsafeMode) {
		t.Errorf("a readable target through a link: %v", err)
	}
}
