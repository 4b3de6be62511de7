package keys

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func masterKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, MasterKeySize)
	_, _ = rand.Read(k)
	return k
}

// A sealed key opens with its kid under the master key that sealed it, or
// with that key among others; not under another kid, another master key,
// or altered; and the blob holds no plaintext.
func TestSealer(t *testing.T) {
	old, next := masterKey(t), masterKey(t)
	s, err := NewSealer(old)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("-----BEGIN PRIVATE KEY----- the private key material")
	sealed, err := s.Seal("es1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret[:16]) || bytes.Contains(sealed, []byte("PRIVATE")) {
		t.Fatal("the sealed blob holds the plaintext")
	}
	if got, err := s.Open("es1", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open: %q %v", got, err)
	}
	if _, err := s.Open("es2", sealed); !errors.Is(err, ErrSealed) {
		t.Errorf("opened as another kid: %v", err)
	}
	altered := bytes.Clone(sealed)
	altered[len(altered)-1] ^= 1
	if _, err := s.Open("es1", altered); !errors.Is(err, ErrSealed) {
		t.Errorf("opened altered: %v", err)
	}
	other, _ := NewSealer(masterKey(t))
	if _, err := other.Open("es1", sealed); !errors.Is(err, ErrSealed) || !strings.Contains(err.Error(), "was not given") {
		t.Errorf("opened under another master key: %v", err)
	}

	// Master-key rotation: the new key first seals; the old still opens.
	rotated, _ := NewSealer(next, old)
	if got, err := rotated.Open("es1", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("the old master key among others: %v", err)
	}
	if rotated.SealedUnderFirst(sealed) {
		t.Error("an old blob counted as sealed under the new master key")
	}
	resealed, _ := rotated.Seal("es1", secret)
	if !rotated.SealedUnderFirst(resealed) {
		t.Error("a new blob not sealed under the first master key")
	}
	onlyNext, _ := NewSealer(next)
	if _, err := onlyNext.Open("es1", resealed); err != nil {
		t.Errorf("after dropping the old master key: %v", err)
	}
}

func TestParseMasterKeys(t *testing.T) {
	a, b := masterKey(t), masterKey(t)
	keys, err := ParseMasterKeys(base64.StdEncoding.EncodeToString(a) + ",\n" + base64.RawURLEncoding.EncodeToString(b) + "\n")
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], a) || !bytes.Equal(keys[1], b) {
		t.Fatalf("%v %v", keys, err)
	}
	for _, bad := range []string{"", "short", base64.StdEncoding.EncodeToString(a[:16])} {
		if _, err := ParseMasterKeys(bad); err == nil || !strings.Contains(err.Error(), "/dev/urandom") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := NewSealer(a[:31]); err == nil {
		t.Error("a 31-byte master key accepted")
	}
}
