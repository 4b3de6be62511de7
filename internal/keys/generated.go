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

// LoadOrGenerate returns the key jwtd keeps for name in dir/keys, making it
// on first use: a PKCS #8 PEM file for asymmetric algorithms (kid: its
// RFC 7638 thumbprint) or a base64url secret (kid: name + "-generated").
// Files are written 0600 in a 0700 directory, atomically, so a crash never
// leaves half a key; an existing file must hold a key for alg.
func LoadOrGenerate(dir, name, alg string, files secretfile.Policy) (*Key, error) {
	kdir := filepath.Join(dir, "keys")
	ext := ".pem"
	if IsHMAC(alg) {
		ext = ".secret"
	}
	path := filepath.Join(kdir, name+"-"+strings.ToLower(alg)+ext)
	// jwtd's own file: give it back its 0600 if something widened it (a
	// Kubernetes fsGroup makes files 0660); if jwtd does not own it, the
	// chmod fails and the policy judges the file as it is.
	_ = os.Chmod(path, 0o600)
	data, err := files.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		if data, err = generateFile(kdir, path, alg); err != nil {
			return nil, fmt.Errorf("generating the %s key for %q: %w", alg, name, err)
		}
	} else if err != nil {
		return nil, err
	}
	var k *Key
	if IsHMAC(alg) {
		secret, derr := base64.RawURLEncoding.DecodeString(strings.TrimSpace(string(data)))
		if derr != nil {
			return nil, fmt.Errorf("%s: %w", path, derr)
		}
		k, err = New(name+"-generated", alg, secret)
	} else {
		priv, perr := ParsePrivatePEM(data)
		if perr != nil {
			return nil, fmt.Errorf("%s: %w", path, perr)
		}
		k, err = New("", alg, priv)
		if err == nil {
			k.kid, err = Thumbprint(k.Public())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func generateFile(kdir, path, alg string) ([]byte, error) {
	material, err := Generate(alg)
	if err != nil {
		return nil, err
	}
	var data []byte
	if secret, ok := material.([]byte); ok {
		data = []byte(base64.RawURLEncoding.EncodeToString(secret) + "\n")
	} else if data, err = MarshalPrivatePEM(material); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(kdir, 0o700); err != nil {
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
	// Link, not rename: if another process made the key first, keep theirs.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	if d, err := os.Open(kdir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return data, nil
}
