package keys

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/jwtd/jwtd/internal/secretfile"
)

// Sealer seals private key material for storage with AES-256-GCM under a
// master key, and opens it again. Several master keys may be held: the
// first seals, every one opens, so that a master key can be rotated (seal
// again under the new first one, then drop the old).
//
// A sealed blob is: version (1 byte) ‖ the master key's id (8 bytes, from
// its SHA-256) ‖ nonce (12 bytes) ‖ ciphertext and tag. The kid is the
// additional data: a blob opens only as the key it was sealed for, so rows
// cannot be swapped.
type Sealer struct {
	masters []master
}

type master struct {
	id   [8]byte
	aead cipher.AEAD
}

// MasterKeySize is the size of a master key: AES-256.
const MasterKeySize = 32

const sealVersion = 1

// ErrSealed wraps every failure to open a sealed key: a wrong or missing
// master key, or a blob that was altered.
var ErrSealed = errors.New("cannot open sealed key")

// NewSealer holds the master keys, the first of which seals.
func NewSealer(masterKeys ...[]byte) (*Sealer, error) {
	if len(masterKeys) == 0 {
		return nil, errors.New("no master key")
	}
	s := &Sealer{}
	for i, k := range masterKeys {
		if len(k) != MasterKeySize {
			return nil, fmt.Errorf("master key %d is %d bytes; a master key is %d random bytes", i+1, len(k), MasterKeySize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(k)
		var m master
		copy(m.id[:], sum[:8])
		m.aead = aead
		s.masters = append(s.masters, m)
	}
	return s, nil
}

// ParseMasterKeys reads master keys as base64 (standard or URL alphabet,
// padded or not), separated by commas or new lines: the form of
// JWTD_MASTER_KEY and of a master key file.
func ParseMasterKeys(text string) ([][]byte, error) {
	var out [][]byte
	for _, f := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ' ' }) {
		var k []byte
		var err error
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err = enc.DecodeString(f); err == nil {
				break
			}
		}
		if err != nil || len(k) != MasterKeySize {
			return nil, fmt.Errorf("master key %d is not %d bytes in base64 (make one with: head -c 32 /dev/urandom | base64)", len(out)+1, MasterKeySize)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no master key (make one with: head -c 32 /dev/urandom | base64)")
	}
	return out, nil
}

// Seal seals plaintext for kid under the first master key.
func (s *Sealer) Seal(kid string, plaintext []byte) ([]byte, error) {
	m := s.masters[0]
	out := make([]byte, 1+8+12, 1+8+12+len(plaintext)+m.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:9], m.id[:])
	if _, err := rand.Read(out[9:21]); err != nil {
		return nil, err
	}
	return m.aead.Seal(out, out[9:21], plaintext, []byte(kid)), nil
}

// Open opens a blob sealed for kid, under whichever master key sealed it.
func (s *Sealer) Open(kid string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+8+12 || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w %q: not a sealed key", ErrSealed, kid)
	}
	for _, m := range s.masters {
		if !bytes.Equal(m.id[:], sealed[1:9]) {
			continue
		}
		plain, err := m.aead.Open(nil, sealed[9:21], sealed[21:], []byte(kid))
		if err != nil {
			return nil, fmt.Errorf("%w %q: it was altered, or sealed for another kid", ErrSealed, kid)
		}
		return plain, nil
	}
	return nil, fmt.Errorf("%w %q: sealed under a master key jwtd was not given (its id %x)", ErrSealed, kid, sealed[1:9])
}

// SealedUnderFirst reports whether a blob is sealed under the first master
// key, the one that seals: what a reseal leaves alone.
func (s *Sealer) SealedUnderFirst(sealed []byte) bool {
	return len(sealed) >= 9 && bytes.Equal(sealed[1:9], s.masters[0].id[:])
}

// LoadMasterKeys reads the master keys in a file the operator named
// (key_store.master_key_file; base64, one per line or comma-separated, the
// sealing one first), under the policy: a symbolic link is followed, as
// secrets are mounted through them; a file others can change is refused.
func LoadMasterKeys(path string, files secretfile.Policy) ([][]byte, error) {
	data, err := files.Read(path)
	if err != nil {
		return nil, err
	}
	return parseMasterKeyFile(path, data)
}

// LoadOwnMasterKeys reads the master keys jwtd keeps in its data
// directory, never through a symbolic link, in a directory only jwtd's
// user can write (secretfile.ReadOwn). With create, a missing file is made
// with one new random key, 0600 in a 0700 directory: the embedded store's
// first start. Nothing is ever chmod-ed: a file or directory others could
// change is refused with the command that fixes it.
func LoadOwnMasterKeys(path string, files secretfile.Policy, create bool) ([][]byte, error) {
	data, err := files.ReadOwn(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		key := make([]byte, MasterKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		data, err = createFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), files)
		if err != nil {
			return nil, fmt.Errorf("making the master key: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	return parseMasterKeyFile(path, data)
}

func parseMasterKeyFile(path string, data []byte) ([][]byte, error) {
	masters, err := ParseMasterKeys(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return masters, nil
}
