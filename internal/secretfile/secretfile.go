// Package secretfile reads files that hold secrets (signing keys, HMAC
// secrets, TLS private keys, master keys) or that decide who may do what
// (the admin key's hash), and refuses those that other users could change
// or, for secrets, read, as ssh refuses a private key file others can
// read. It never changes a mode: a file that is wrong is refused with the
// command that puts it right, so that nothing jwtd runs (least of all a
// command that only reads) alters a file it was pointed at.
//
// Two kinds of file are read. Files the operator names (key_file,
// secret_file, master_key_file) may be symbolic links, as Kubernetes
// mounts secrets through them: the file the link leads to is judged.
// Files jwtd keeps in its data directory are never symbolic links: one is
// refused, not followed (O_NOFOLLOW), and the directory and the file must
// belong to the user jwtd runs as (or root).
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrUnsafeMode is wrapped by the errors of files and directories others
// could change or read, and of symbolic links where none is expected.
var ErrUnsafeMode = errors.New("unsafe file permissions")

// maxSize bounds what is read: a key file is a few kilobytes.
const maxSize = 1 << 20

// Policy says which files Read accepts. The zero value accepts only files
// that group and others can neither read nor write.
type Policy struct {
	// AllowReadable accepts files that group or others can read (never
	// write): for platforms that mount secrets that way, such as
	// Kubernetes secret volumes (mode 0644 unless defaultMode says
	// otherwise).
	AllowReadable bool
}

// Public is the policy of files that decide but are not secret (the admin
// key's hash, a client CA): others may read them, never write them.
var Public = Policy{AllowReadable: true}

// Read returns the contents of a file the operator named, if its
// permissions are safe. A symbolic link is followed and the file it leads
// to judged, on the open file, so that it cannot be swapped between the
// check and the read; the directory holding the path must not let others
// replace it (a sticky directory, such as /tmp, does not).
func (p Policy) Read(path string) ([]byte, error) {
	if err := checkDir(filepath.Dir(path), false); err != nil {
		return nil, err
	}
	return p.read(path, false)
}

// ReadOwn returns the contents of a file jwtd keeps in its data directory,
// if it is safe: not a symbolic link (refused, not followed), in a
// directory CheckDir accepts, belonging to jwtd's user or root, and with a
// mode the policy accepts.
func (p Policy) ReadOwn(path string) ([]byte, error) {
	if err := CheckDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return p.read(path, true)
}

func (p Policy) read(path string, own bool) ([]byte, error) {
	flags := os.O_RDONLY | nonBlock
	if own {
		flags |= noFollow
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if own && isLoop(err) {
			return nil, fmt.Errorf("%w: %s is a symbolic link; jwtd does not follow links for the files it keeps in its data directory "+
				"(someone could point one at a file jwtd would then read or change): put the file itself there", ErrUnsafeMode, path)
		}
		return nil, err
	}
	defer f.Close()
	if err := p.Check(f, own); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err == nil && len(data) > maxSize {
		err = fmt.Errorf("%s is larger than %d bytes; it is not a key file", path, maxSize)
	}
	return data, err
}

// Check judges an open file under the policy: a regular file that group
// and others cannot write (nor read, unless the policy allows) and, when
// own (a file jwtd keeps), that belongs to jwtd's user or root.
func (p Policy) Check(f *os.File, own bool) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	path := f.Name()
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file (%s)", ErrUnsafeMode, path, info.Mode().Type())
	}
	if own {
		if err := checkOwner(path, info, "file"); err != nil {
			return err
		}
	}
	perm := info.Mode().Perm()
	switch {
	case perm&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by group or others (mode %04o), so anyone could replace what it holds; run: chmod %s %s",
			ErrUnsafeMode, path, perm, p.fix(perm), path)
	case perm&0o044 != 0 && !p.AllowReadable:
		return fmt.Errorf("%w: %s is readable by group or others (mode %04o); run: chmod 600 %s "+
			"(where secrets can only be mounted readable, as on Kubernetes, set allow_readable_key_files: true)",
			ErrUnsafeMode, path, perm, path)
	}
	return nil
}

// fix is the chmod argument that makes perm acceptable.
func (p Policy) fix(perm fs.FileMode) string {
	if p.AllowReadable {
		return "go-w"
	}
	return "600"
}

// CheckDir refuses a directory jwtd keeps its files in (the data
// directory) if another user could add, remove or replace files in it:
// group or others can write it (sticky or not: a file someone else makes
// there first is theirs), or it belongs to a user other than jwtd's or
// root. A missing directory is an error wrapping fs.ErrNotExist.
func CheckDir(path string) error { return checkDir(path, true) }

// MakeDir makes the directory (and its missing parents) 0700 if it is
// missing, then checks it as CheckDir does; an existing directory is
// never changed.
func MakeDir(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	return CheckDir(path)
}

func checkDir(path string, own bool) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return fmt.Errorf("%s is not a directory", path)
	}
	if own {
		if err := checkOwner(path, info, "directory"); err != nil {
			return err
		}
	}
	perm := info.Mode().Perm()
	switch {
	case perm&0o022 == 0:
		return nil
	case own:
		return fmt.Errorf("%w: directory %s is writable by group or others (mode %04o), so anyone could put their own files "+
			"in place of jwtd's; run: chmod 700 %s", ErrUnsafeMode, path, perm, path)
	case info.Mode()&fs.ModeSticky == 0:
		return fmt.Errorf("%w: directory %s is writable by group or others (mode %04o), so anyone could replace the files in it; "+
			"run: chmod go-w %s (or keep the files in a directory of their own)", ErrUnsafeMode, path, perm, path)
	}
	return nil
}
