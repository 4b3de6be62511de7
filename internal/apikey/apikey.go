// Package apikey authenticates callers of jwtd's native routes. The
// configuration holds only each key's SHA-256 and scopes; a presented key
// is hashed and compared in constant time.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Scopes.
const (
	ScopeAdmin      = "admin"
	ScopeIssue      = "issue"
	ScopeIntrospect = "introspect"
)

var allScopes = []string{ScopeAdmin, ScopeIssue, ScopeIntrospect}

// Errors of Authorize: ErrMissing and ErrInvalid are 401, ErrForbidden 403.
var (
	ErrMissing   = errors.New("missing bearer API key")
	ErrInvalid   = errors.New("unknown API key")
	ErrForbidden = errors.New("API key lacks the scope")
)

// Spec is one configured key.
type Spec struct {
	Name   string   `koanf:"name" json:"name"`
	SHA256 string   `koanf:"sha256" json:"sha256"`
	Scopes []string `koanf:"scopes" json:"scopes"`
}

type entry struct {
	name   string
	hash   [sha256.Size]byte
	scopes []string
}

// Set is the keys jwtd accepts. It is immutable.
type Set struct{ entries []entry }

// NewSet checks the specs: a name, a 64-hex-digit SHA-256, known scopes.
func NewSet(specs []Spec) (*Set, error) {
	s := &Set{}
	for i, sp := range specs {
		raw, err := hex.DecodeString(sp.SHA256)
		if sp.Name == "" || err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("api_keys[%d] %q: needs a name and the key's SHA-256 as 64 hex digits", i, sp.Name)
		}
		for _, sc := range sp.Scopes {
			if !slices.Contains(allScopes, sc) {
				return nil, fmt.Errorf("api_keys[%d] %q: scope %q is not one of %s", i, sp.Name, sc, strings.Join(allScopes, ", "))
			}
		}
		e := entry{name: sp.Name, scopes: sp.Scopes}
		copy(e.hash[:], raw)
		s.entries = append(s.entries, e)
	}
	return s, nil
}

// Len is how many keys the set holds.
func (s *Set) Len() int { return len(s.entries) }

// Authorize checks an Authorization header value for scope and returns the
// key's name.
func (s *Set) Authorize(header, scope string) (string, error) {
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || key == "" {
		return "", ErrMissing
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	var found *entry
	for i := range s.entries {
		if subtle.ConstantTimeCompare(sum[:], s.entries[i].hash[:]) == 1 {
			found = &s.entries[i]
		}
	}
	if found == nil {
		return "", ErrInvalid
	}
	if !slices.Contains(found.scopes, scope) {
		return found.name, ErrForbidden
	}
	return found.name, nil
}

// Hash is the hex SHA-256 of a key, as the configuration holds it.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// LoadOrCreateAdmin returns the admin key kept in dir (its hash only). On
// first use it makes one with every scope and returns its plain text too,
// for the caller to show once; the plain text is never stored.
func LoadOrCreateAdmin(dir string) (spec Spec, plain string, err error) {
	path := filepath.Join(dir, "admin-api-key.json")
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, &spec); err != nil {
			return Spec{}, "", fmt.Errorf("%s: %w", path, err)
		}
		return spec, "", nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Spec{}, "", err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Spec{}, "", err
	}
	plain = "jwtd_" + base64.RawURLEncoding.EncodeToString(b[:])
	spec = Spec{Name: "admin", SHA256: Hash(plain), Scopes: allScopes}
	data, _ = json.Marshal(spec)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Spec{}, "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Spec{}, "", err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return Spec{}, "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return Spec{}, "", err
	}
	return spec, plain, f.Close()
}
