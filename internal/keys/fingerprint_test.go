package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestFingerprintHMACAsHMACSeesIt(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	long := []byte(strings.Repeat("L", 200)) // over every HS block: hashed first
	must := func(alg string, b []byte) *Key {
		t.Helper()
		k, err := New("", alg, b)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		base := must("HS256", secret) // the key's own alg does not matter
		padded := must("HS256", append(append([]byte(nil), secret...), 0, 0, 0))
		if Fingerprint(base, alg) != Fingerprint(padded, alg) {
			t.Errorf("%s: a secret and the secret padded with zero bytes have different fingerprints", alg)
		}
		other := must("HS256", []byte(strings.Repeat("k", 31)+"j"))
		if Fingerprint(base, alg) == Fingerprint(other, alg) {
			t.Errorf("%s: two secrets share a fingerprint", alg)
		}
		// A secret over the block and its hash are one HMAC key.
		hashed := algorithms[alg].hash.New()
		hashed.Write(long)
		if h := hashed.Sum(nil); len(h) >= algorithms[alg].hash.Size() {
			if Fingerprint(must(alg, long), alg) != Fingerprint(must(alg, padTo(h, len(h))), alg) {
				t.Errorf("%s: a long secret and its hash have different fingerprints", alg)
			}
		}
		if fp := Fingerprint(base, alg); !strings.HasPrefix(fp, "hmac:"+alg+":") || strings.Contains(fp, string(secret)) {
			t.Errorf("%s: fingerprint %q", alg, fp)
		}
	}
	if fps := Fingerprints(must("HS512", append(secret, secret...))); len(fps) != 3 {
		t.Errorf("a secret has %d fingerprints, want one per HS algorithm", len(fps))
	}
}

func padTo(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }

func TestFingerprintAsymmetric(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	priv, _ := New("a", "ES256", ec)
	pub, _ := New("b", "ES256", &ec.PublicKey)
	if Fingerprint(priv, "ES256") != Fingerprint(pub, "ES256") || len(Fingerprints(pub)) != 1 {
		t.Error("a private key and its public half have different fingerprints")
	}
	ec2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := New("a", "ES256", &ec2.PublicKey)
	if Fingerprint(other, "ES256") == Fingerprint(pub, "ES256") {
		t.Error("two public keys share a fingerprint")
	}
}

func TestForVerifyRefusesPrivateKeys(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	jwkOf := func(k any) []byte { b, _ := jose.JSONWebKey{Key: k, Algorithm: "ES256"}.MarshalJSON(); return b }
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaKey)
	edPKCS8, _ := x509.MarshalPKCS8PrivateKey(ed)
	for _, tc := range []struct {
		name string
		key  []byte
		alg  string
	}{
		{"JWK with d", jwkOf(ec), "ES256"},
		{"JWK with d for HS", jwkOf(ec), "HS256"},
		{"RSA JWK with p and q", func() []byte { b, _ := jose.JSONWebKey{Key: rsaKey, Algorithm: "RS256"}.MarshalJSON(); return b }(), "RS256"},
		{"PKCS #8 PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), "ES256"},
		{"SEC 1 PEM", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), "ES256"},
		{"PKCS #1 PEM for HS", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1}), "HS512"},
		{"PKCS #8 DER in base64", []byte(base64.StdEncoding.EncodeToString(pkcs8)), "ES256"},
		{"Ed25519 PKCS #8 DER in base64", []byte(base64.StdEncoding.EncodeToString(edPKCS8)), "EdDSA"},
		{"PKCS #1 DER in base64", []byte(base64.StdEncoding.EncodeToString(pkcs1)), "RS256"},
	} {
		_, err := ForVerify(tc.key, tc.alg)
		if !errors.Is(err, ErrPrivateKey) || !strings.Contains(err.Error(), "keep") {
			t.Errorf("%s: %v, want ErrPrivateKey saying to keep it", tc.name, err)
		}
		want := "public key"
		if IsHMAC(tc.alg) {
			want = "shared secret"
		}
		if err != nil && !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want it to ask for the %s", tc.name, err, want)
		}
	}
	// An oct JWK's k is the shared secret HS needs.
	oct, _ := jose.JSONWebKey{Key: []byte(strings.Repeat("s", 32)), Algorithm: "HS256"}.MarshalJSON()
	if _, err := ForVerify(oct, "HS256"); err != nil {
		t.Errorf("oct JWK: %v", err)
	}
}

// BenchmarkFingerprint is what /verifyToken adds for a caller's own key:
// the fingerprint that tells it is not one of jwtd's.
func BenchmarkFingerprint(b *testing.B) {
	k, _ := New("", "HS512", []byte(strings.Repeat("c", 66)))
	b.ReportAllocs()
	for b.Loop() {
		if Fingerprint(k, "HS512") == "" {
			b.Fatal("no fingerprint")
		}
	}
}
