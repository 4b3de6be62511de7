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

	"github.com/jwtd/jwtd/internal/secretfile"
)

// Scopes.
const (
	ScopeAdmin      = "admin"
	ScopeIssue      = "issue"
	ScopeIntrospect = "introspect"
	// ScopeOutcome records transaction outcomes, and nothing else: the
	// scope of a verification callback receiver's key.
	ScopeOutcome = "outcome"
)

var allScopes = []string{ScopeAdmin, ScopeIssue, ScopeIntrospect, ScopeOutcome}

// Scopes are every scope a key can have.
func Scopes() []string { return slices.Clone(allScopes) }

// Errors of Authorize: ErrMissing and ErrInvalid are 401, ErrForbidden 403.
var (
	ErrMissing   = errors.New("missing bearer API key")
	ErrInvalid   = errors.New("unknown API key")
	ErrForbidden = errors.New("API key lacks the scope")
)

// scopeError is ErrForbidden naming the scope the key lacks.
type scopeError struct{ scope string }

func (e *scopeError) Error() string { return "the API key lacks the " + e.scope + " scope" }
func (e *scopeError) Unwrap() error { return ErrForbidden }

// Spec is one configured key.
type Spec struct {
	Name   string   `json:"name"`
	SHA256 string   `json:"sha256"`
	Scopes []string `json:"scopes"`
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

// Names are the keys' names, in the order configured.
func (s *Set) Names() []string {
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.name
	}
	return out
}

// Identify returns the name and scopes of the key an Authorization header
// value carries.
func (s *Set) Identify(header string) (name string, scopes []string, err error) {
	e, err := s.find(header)
	if err != nil {
		return "", nil, err
	}
	return e.name, slices.Clone(e.scopes), nil
}

// Authorize checks an Authorization header value for scope (any valid key
// when scope is "") and returns the key's name.
func (s *Set) Authorize(header, scope string) (string, error) {
	e, err := s.find(header)
	if err != nil {
		return "", err
	}
	if scope != "" && !slices.Contains(e.scopes, scope) {
		return e.name, &scopeError{scope}
	}
	return e.name, nil
}

// find is the entry of the key a header carries, compared in constant time
// with every entry.
func (s *Set) find(header string) (*entry, error) {
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || key == "" {
		return nil, ErrMissing
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	var found *entry
	for i := range s.entries {
		if subtle.ConstantTimeCompare(sum[:], s.entries[i].hash[:]) == 1 {
			found = &s.entries[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no api_keys entry has its SHA-256; a key made with `jwtd apikey create` works once "+
			"the entry it printed is in the configuration and jwtd has read it again (kill -HUP, or a restart)", ErrInvalid)
	}
	return found, nil
}

// Hash is the hex SHA-256 of a key, as the configuration holds it.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// New makes an API key: its plain text, to hand to the caller once, and
// the Spec the configuration keeps (its SHA-256 only).
func New(name string, scopes []string) (plain string, spec Spec, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Spec{}, err
	}
	plain = "jwtd_" + base64.RawURLEncoding.EncodeToString(b[:])
	spec = Spec{Name: name, SHA256: Hash(plain), Scopes: scopes}
	if _, err := NewSet([]Spec{spec}); err != nil {
		return "", Spec{}, err
	}
	return plain, spec, nil
}

// LoadOrCreateAdmin returns the admin key kept in dir (its hash only). On
// first use it makes one with every scope and returns its plain text too,
// for the caller to show once; the plain text is never stored. The file
// appears whole or not at all (written aside, synced, then linked into
// place), and when two processes start at once the first link wins: the
// other gets that key, and no plain text.
func LoadOrCreateAdmin(dir string) (spec Spec, plain string, err error) {
	path := AdminFile(dir)
	spec, err = readAdmin(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return spec, "", err
	}
	plain, spec, err = New("admin", allScopes)
	if err != nil {
		return Spec{}, "", err
	}
	data, _ := json.Marshal(spec)
	if err := secretfile.MakeDir(dir); err != nil {
		return Spec{}, "", err
	}
	tmp, err := os.CreateTemp(dir, ".admin-api-key-*")
	if err != nil {
		return Spec{}, "", err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync() // CreateTemp makes it 0600
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Spec{}, "", err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process made it first
			spec, err := readAdmin(path)
			return spec, "", err
		}
		return Spec{}, "", err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return spec, plain, nil
}

// AdminFile is where the admin key made on first start is kept in dir.
func AdminFile(dir string) string { return filepath.Join(dir, "admin-api-key.json") }

// ReadAdmin returns the admin key kept in dir; an error wrapping
// fs.ErrNotExist when none was made.
func ReadAdmin(dir string) (Spec, error) { return readAdmin(AdminFile(dir)) }

func readAdmin(path string) (Spec, error) {
	var spec Spec
	// Its hash is no secret, but whoever can change the file is admin:
	// others may read it, never write it, nor the directory it is in, and
	// it is never read through a symbolic link.
	data, err := secretfile.Public.ReadOwn(path)
	if err != nil {
		return Spec{}, err
	}
	if err := json.Unmarshal(data, &spec); err != nil || spec.SHA256 == "" {
		return Spec{}, fmt.Errorf("%s does not hold an admin key (%v); delete it and start jwtd to make a new one, or configure api_keys", path, err)
	}
	return spec, nil
}
