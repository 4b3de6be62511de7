package keys

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jwtd/jwtd/internal/secretfile"
)

// Kept names a key an earlier jwtd generated for a profile in its data
// directory; jwtd now keeps the keys it makes in the record store.
type Kept struct {
	Dir   string // the data directory; the key is in Dir/keys
	Name  string // the profile
	Alg   string
	Files secretfile.Policy
	// Text makes a generated secret printable text (128 hex digits) whose
	// bytes are the key, for clients that can only send a key as a string
	// (seed 003's Signing_key).
	Text bool
}

// Path is the key's file: a PKCS #8 PEM file for asymmetric algorithms, a
// base64url secret for HMAC.
func (k Kept) Path() string {
	ext := ".pem"
	if IsHMAC(k.Alg) {
		ext = ".secret"
	}
	return filepath.Join(k.Dir, "keys", k.Name+"-"+strings.ToLower(k.Alg)+ext)
}

// LoadKept returns the key an earlier jwtd generated in the data
// directory (kid: the RFC 7638 thumbprint of an asymmetric key, name +
// "-generated" for a secret), for serve to move into the key store; a
// missing file is an error wrapping fs.ErrNotExist.
func LoadKept(k Kept) (*Key, error) {
	path := k.Path()
	data, err := k.Files.ReadOwn(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		abs, _ := filepath.Abs(path)
		return nil, fmt.Errorf("no %s key for profile %q at %s (jwtd serve makes it on its first start): %w", k.Alg, k.Name, abs, fs.ErrNotExist)
	case err != nil:
		return nil, err
	}
	var key *Key
	if IsHMAC(k.Alg) {
		secret, derr := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(data)))
		if derr != nil {
			return nil, fmt.Errorf("%s: %w", path, derr)
		}
		key, err = New(k.Name+"-generated", k.Alg, secret)
	} else {
		priv, perr := ParsePrivatePEM(data)
		if perr != nil {
			return nil, fmt.Errorf("%s: %w", path, perr)
		}
		key, err = New("", k.Alg, priv)
		if err == nil {
			key.kid, err = Thumbprint(key.Public())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

// createFile writes data to a new file at path, 0600 in a 0700 directory,
// atomically and durably, and returns it; if the file exists already (made
// by another process first), it returns what that file holds instead, read
// as ReadOwn reads it.
func createFile(path string, data []byte, files secretfile.Policy) ([]byte, error) {
	kdir := filepath.Dir(path)
	if err := secretfile.MakeDir(kdir); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(kdir, ".tmp-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// Link, not rename: if another process made the file first, keep theirs.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return files.ReadOwn(path)
		}
		return nil, err
	}
	if d, err := os.Open(kdir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return data, nil
}
