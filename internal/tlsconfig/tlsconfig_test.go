package tlsconfig

import (
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/testpki"

	"github.com/jwtd/jwtd/internal/secretfile"
)

func serial(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber.String()
}

// A replaced pair is picked up; a broken one keeps the last good one in
// service; nothing is read more than once a second.
func TestReloader(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ca")
	certFile, keyFile, sn1 := ca.WritePair(t, dir, "s", false)
	r, err := NewReloader(certFile, keyFile, secretfile.Policy{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r.now = func() time.Time { return now }
	if serial(t, r) != sn1.String() {
		t.Fatal("first certificate")
	}
	_, _, sn2 := ca.WritePair(t, dir, "s", false)
	if serial(t, r) != sn1.String() {
		t.Error("reloaded within the same second")
	}
	now = now.Add(2 * time.Second)
	if serial(t, r) != sn2.String() {
		t.Error("replacement not served")
	}
	if err := os.WriteFile(certFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	if serial(t, r) != sn2.String() {
		t.Error("a broken pair replaced the good one")
	}
	if _, err := NewReloader(filepath.Join(dir, "missing.crt"), keyFile, secretfile.Policy{}, nil); err == nil {
		t.Error("missing file accepted")
	}
	// A private key others can read is refused, unless the policy allows.
	certFile, keyFile, _ = ca.WritePair(t, dir, "readable", false)
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReloader(certFile, keyFile, secretfile.Policy{}, nil); !errors.Is(err, secretfile.ErrUnsafeMode) {
		t.Errorf("a key file at 0644: %v", err)
	}
	if _, err := NewReloader(certFile, keyFile, secretfile.Policy{AllowReadable: true}, nil); err != nil {
		t.Errorf("a key file at 0644, allowed: %v", err)
	}
	if _, err := Server(certFile, "", "", secretfile.Policy{}, nil); err == nil {
		t.Error("cert without key accepted")
	}
}
