//go:build unix

package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
		{0o666, true, false, "chmod go-w"},
		{0o666, false, false, "chmod 600"},
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

// A file jwtd keeps is never read through a symbolic link, nor from a
// directory others can write, nor when another user owns it; nothing is
// chmod-ed, and each refusal names the command that fixes it.
func TestReadOwn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := MakeDir(dir); err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("MakeDir made %v", info.Mode().Perm())
	}
	own := filepath.Join(dir, "master.key")
	os.WriteFile(own, []byte("secret"), 0o600)
	if data, err := (Policy{}).ReadOwn(own); err != nil || string(data) != "secret" {
		t.Fatalf("0600 in 0700: %q %v", data, err)
	}

	victim := filepath.Join(t.TempDir(), "victim.txt")
	os.WriteFile(victim, []byte("not a key"), 0o600)
	os.Chmod(victim, 0o644)
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{{}, Public} {
		if _, err := p.ReadOwn(link); !errors.Is(err, ErrUnsafeMode) || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("a link in the data directory: %v", err)
		}
	}
	if info, _ := os.Stat(victim); info.Mode().Perm() != 0o644 {
		t.Errorf("the link's target became %v", info.Mode().Perm())
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Policy{}).ReadOwn(fifo); !errors.Is(err, ErrUnsafeMode) || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO: %v", err)
	}

	if os.Geteuid() == 0 { // only root can give a file away
		os.Chown(own, 65534, 65534)
		if _, err := (Policy{}).ReadOwn(own); !errors.Is(err, ErrUnsafeMode) || !strings.Contains(err.Error(), "chown 0 "+own) {
			t.Errorf("another user's file: %v", err)
		}
		os.Chown(own, 0, 0)
	}

	for _, mode := range []fs.FileMode{0o777, 0o770, 0o777 | fs.ModeSticky} {
		os.Chmod(dir, mode)
		if _, err := (Policy{}).ReadOwn(own); !errors.Is(err, ErrUnsafeMode) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Errorf("data directory %v: %v", mode, err)
		}
		if err := MakeDir(dir); !errors.Is(err, ErrUnsafeMode) {
			t.Errorf("MakeDir on an existing %v: %v", mode, err)
		}
		if info, _ := os.Stat(dir); info.Mode().Perm() != mode.Perm() {
			t.Errorf("the directory's mode was changed to %v", info.Mode())
		}
	}
	os.Chmod(dir, 0o755) // others may list it
	if _, err := (Policy{}).ReadOwn(own); err != nil {
		t.Errorf("0755 directory: %v", err)
	}
	if _, err := (Policy{}).ReadOwn(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// A file the operator names may sit in a sticky directory (/tmp, a
// Kubernetes secret volume), never in one others can write otherwise.
func TestReadChecksTheDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	os.WriteFile(path, []byte("secret"), 0o600)
	os.Chmod(dir, 0o777)
	if _, err := (Policy{}).Read(path); !errors.Is(err, ErrUnsafeMode) || !strings.Contains(err.Error(), "chmod go-w "+dir) {
		t.Errorf("in a 0777 directory: %v", err)
	}
	os.Chmod(dir, 0o777|fs.ModeSticky)
	if _, err := (Policy{}).Read(path); err != nil {
		t.Errorf("in a sticky directory: %v", err)
	}
}
