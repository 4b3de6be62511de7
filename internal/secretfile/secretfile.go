// Package secretfile reads files that hold secrets (signing keys, HMAC
// secrets, TLS private keys) and refuses those that others could change or
// read, as ssh refuses a private key file others can read.
package secretfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrUnsafeMode is wrapped by the errors of files others can write or read.
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

// Read returns the file's contents if its permissions are safe. The mode
// is that of the file opened (symbolic links followed), checked on the open
// file, so that it cannot be swapped between the check and the read.
func (p Policy) Read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := p.check(path, info.Mode()); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err == nil && len(data) > maxSize {
		err = fmt.Errorf("%s is larger than %d bytes; it is not a key file", path, maxSize)
	}
	return data, err
}

func (p Policy) check(path string, mode fs.FileMode) error {
	perm := mode.Perm()
	switch {
	case perm&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by group or others (mode %04o), so anyone could replace the key; run: chmod 600 %s",
			ErrUnsafeMode, path, perm, path)
	case perm&0o044 != 0 && !p.AllowReadable:
		return fmt.Errorf("%w: %s is readable by group or others (mode %04o); run: chmod 600 %s "+
			"(where secrets can only be mounted readable, as on Kubernetes, set allow_readable_key_files: true)",
			ErrUnsafeMode, path, perm, path)
	}
	return nil
}
