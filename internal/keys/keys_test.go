package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/ssh"

	"github.com/jwtd/jwtd/internal/secretfile"
)

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSecretEncodings(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	dir := t.TempDir()
	writeFile(t, dir, "s.txt", []byte(base64.StdEncoding.EncodeToString(secret)+"\n"))
	for _, s := range []Spec{
		{Kid: "raw", Alg: "HS256", Secret: string(secret)},
		{Kid: "raw2", Alg: "HS256", Secret: string(secret), Encoding: "raw"},
		{Kid: "b64", Alg: "HS256", Secret: base64.StdEncoding.EncodeToString(secret), Encoding: "base64"},
		{Kid: "b64raw", Alg: "HS256", Secret: base64.RawStdEncoding.EncodeToString(secret), Encoding: "base64"},
		{Kid: "b64url", Alg: "HS256", Secret: base64.RawURLEncoding.EncodeToString(secret), Encoding: "base64url"},
		{Kid: "hex", Alg: "HS256", Secret: hex.EncodeToString(secret), Encoding: "hex"},
		{Kid: "file", Alg: "HS256", SecretFile: "s.txt", Encoding: "base64"},
	} {
		k, err := Load(s, dir, secretfile.Policy{})
		if err != nil {
			t.Errorf("%s: %v", s.Kid, err)
			continue
		}
		sig, _ := k.Sign("input")
		ref, _ := New("ref", "HS256", secret)
		if ref.Verify("input", sig) != nil {
			t.Errorf("%s: decoded to another secret", s.Kid)
		}
	}
}

func TestLoadRefuses(t *testing.T) {
	dir := t.TempDir()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPEM, _ := MarshalPrivatePEM(ec)
	writeFile(t, dir, "ec.pem", ecPEM)
	pubPEM, _ := MarshalPublicPEM(&ec.PublicKey)
	writeFile(t, dir, "pub.pem", pubPEM)
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Kid: "short", Alg: "HS256", Secret: "too-short"}, "RFC 7518"},
		{Spec{Kid: "short512", Alg: "HS512", Secret: strings.Repeat("x", 63)}, "at least 64"},
		{Spec{Kid: "empty", Alg: "HS256", SecretFile: "missing.txt"}, "missing.txt"},
		{Spec{Kid: "", Alg: "HS256", Secret: strings.Repeat("x", 32)}, "kid is required"},
		{Spec{Kid: "none", Alg: "none", Secret: strings.Repeat("x", 32)}, "not one of"},
		{Spec{Kid: "two", Alg: "HS256", Secret: strings.Repeat("x", 32), SecretFile: "s"}, "exactly one"},
		{Spec{Kid: "enc", Alg: "HS256", Secret: "!!", Encoding: "base64"}, "not valid base64"},
		{Spec{Kid: "encname", Alg: "HS256", Secret: "x", Encoding: "rot13"}, "not one of raw"},
		{Spec{Kid: "hs-pem", Alg: "HS256", PrivateKeyFile: "ec.pem"}, "takes a secret"},
		{Spec{Kid: "es-secret", Alg: "ES256", Secret: strings.Repeat("x", 32)}, "takes private_key_file"},
		{Spec{Kid: "curve", Alg: "ES384", PrivateKeyFile: "ec.pem"}, "needs curve P-384"},
		{Spec{Kid: "family", Alg: "RS256", PrivateKeyFile: "ec.pem"}, "cannot use an EC key"},
		{Spec{Kid: "pub", Alg: "ES256", PrivateKeyFile: "pub.pem"}, "not a private key"},
	} {
		_, err := Load(tc.spec, dir, secretfile.Policy{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.spec.Kid, err, tc.want)
			continue
		}
		if tc.spec.Kid != "" && !strings.Contains(err.Error(), `key "`+tc.spec.Kid+`"`) {
			t.Errorf("%s: error does not name the key: %v", tc.spec.Kid, err)
		}
	}
}

func TestLoadPrivateKeyFormats(t *testing.T) {
	dir := t.TempDir()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	pkcs8 := func(k any) []byte { b, _ := MarshalPrivatePEM(k); return b }
	for _, tc := range []struct {
		alg string
		pem []byte
	}{
		{"RS256", pkcs8(rk)}, {"PS256", pkcs8(rk)}, {"ES384", pkcs8(ec384)}, {"EdDSA", pkcs8(ed)},
	} {
		writeFile(t, dir, tc.alg+".pem", tc.pem)
		k, err := Load(Spec{Kid: tc.alg, Alg: tc.alg, PrivateKeyFile: tc.alg + ".pem"}, dir, secretfile.Policy{})
		if err != nil {
			t.Errorf("%s: %v", tc.alg, err)
			continue
		}
		sig, err := k.Sign("x.y")
		if err != nil || k.Verify("x.y", sig) != nil {
			t.Errorf("%s: sign/verify round trip failed: %v", tc.alg, err)
		}
		if k.Symmetric() || k.Public() == nil {
			t.Errorf("%s: no public key", tc.alg)
		}
	}
	// Inline PEM works too.
	if _, err := Load(Spec{Kid: "inline", Alg: "ES384", PrivateKey: string(pkcs8(ec384))}, "", secretfile.Policy{}); err != nil {
		t.Error(err)
	}
}

func TestWeakRSARefused(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	if _, err := New("s", "RS256", small); !errors.Is(err, ErrUnsafeKey) || !strings.Contains(err.Error(), "1024 bits") {
		t.Errorf("1024-bit key: %v", err)
	}
	huge := &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), 9000), E: 65537}
	if _, err := New("h", "RS256", huge); !errors.Is(err, ErrUnsafeKey) || !strings.Contains(err.Error(), "9001 bits") {
		t.Errorf("9001-bit key: %v", err)
	}
	big2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub := big2048.PublicKey
	for _, e := range []int{1, 3, 65535, 65538, 1 << 32, 1<<32 + 1} {
		pub.E = e
		if _, err := New("e", "RS256", &pub); !errors.Is(err, ErrUnsafeKey) || !strings.Contains(err.Error(), "exponent") {
			t.Errorf("e=%d: %v", e, err)
		}
	}
	for _, e := range []int{65537, 1<<31 - 1} {
		pub.E = e
		if _, err := New("e", "RS256", &pub); err != nil {
			t.Errorf("e=%d: %v", e, err)
		}
	}
	if rocaVulnerable(big2048.N) {
		t.Error("a fresh key has the ROCA fingerprint")
	}
	// A modulus built to be a power of 65537 modulo every fingerprint prime
	// (by the Chinese remainder theorem) is flagged.
	n := big.NewInt(0)
	m := big.NewInt(1)
	for _, p := range rocaPrimes {
		m.Mul(m, big.NewInt(p))
	}
	for _, p := range rocaPrimes {
		bp := big.NewInt(p)
		mi := new(big.Int).Div(m, bp)
		inv := new(big.Int).ModInverse(mi, bp)
		term := new(big.Int).Mul(mi, inv)
		n.Add(n, term.Mul(term, big.NewInt(65537%p)))
	}
	n.Mod(n, m)
	if !rocaVulnerable(n) {
		t.Error("a ROCA-shaped modulus was not flagged")
	}
}

func TestParseJWKRules(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jwk := func(use string, ops []string, alg string) []byte {
		b, _ := jose.JSONWebKey{Key: &ec.PublicKey, Algorithm: alg, Use: use}.MarshalJSON()
		if ops != nil {
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			m["key_ops"] = ops
			b, _ = json.Marshal(m)
		}
		return b
	}
	if _, err := ParseJWK(jwk("sig", nil, "ES256"), ""); err != nil {
		t.Errorf("plain JWK: %v", err)
	}
	if _, err := ParseJWK(jwk("", []string{"verify"}, "ES256"), ""); err != nil {
		t.Errorf("key_ops verify: %v", err)
	}
	if _, err := ParseJWK(jwk("", nil, ""), "ES256"); err != nil {
		t.Errorf("alg from the token: %v", err)
	}
	// RSA JWKs up to MaxRSABits, and past it refused with jwtd's message.
	for bits, want := range map[int]string{8192: "", 8193: "8193 bits"} {
		n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
		n.SetBit(n, 0, 1)
		b, _ := jose.JSONWebKey{Key: &rsa.PublicKey{N: n, E: 65537}, Algorithm: "RS256"}.MarshalJSON()
		_, err := ParseJWK(b, "")
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%d-bit RSA JWK: %v", bits, err)
		}
	}
	for name, data := range map[string][]byte{
		"use enc":         jwk("enc", nil, "ES256"),
		"key_ops encrypt": jwk("", []string{"encrypt"}, "ES256"),
		"no alg":          jwk("sig", nil, ""),
		"wrong alg":       jwk("sig", nil, "ES384"),
		"not JSON":        []byte("{"),
	} {
		if _, err := ParseJWK(data, ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestForVerify(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubPEM, _ := MarshalPublicPEM(&ec.PublicKey)
	privPEM, _ := MarshalPrivatePEM(ec)
	jwk, _ := jose.JSONWebKey{Key: &ec.PublicKey}.MarshalJSON()
	secret := []byte(strings.Repeat("s", 64))
	der, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs1 := x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)
	sshPub, _ := ssh.NewPublicKey(&ec.PublicKey)
	// A public key's published bytes, in every encoding a caller might
	// paste, padded to a valid secret length: never an HMAC secret.
	published := map[string][]byte{
		"PEM with a BOM":          append([]byte("\ufeff"), pubPEM...),
		"PEM after a label line":  append([]byte("my key:\n"), pubPEM...),
		"base64 DER":              []byte(base64.StdEncoding.EncodeToString(der)),
		"base64 DER, wrapped":     []byte(wrap(base64.StdEncoding.EncodeToString(der), 64)),
		"base64url DER, unpadded": []byte(base64.RawURLEncoding.EncodeToString(der)),
		"hex DER":                 []byte(hex.EncodeToString(der)),
		"base64 PKCS #1 RSA":      []byte(base64.StdEncoding.EncodeToString(pkcs1)),
		"OpenSSH authorized_keys": ssh.MarshalAuthorizedKey(sshPub),
		"PEM of a private key":    privPEM,
	}
	for name, key := range published {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			if _, err := ForVerify(key, alg); err == nil || !errors.Is(err, ErrUnsafeKey) && !strings.Contains(err.Error(), "private") {
				t.Errorf("%s for %s: %v, want it refused as a public key", name, alg, err)
			}
		}
	}
	// The same encodings verify where the alg fits.
	for name, key := range published {
		alg := "ES256"
		if strings.Contains(name, "RSA") {
			alg = "RS256"
		}
		_, err := ForVerify(key, alg)
		if wantOK := !strings.Contains(name, "private"); (err == nil) != wantOK {
			t.Errorf("%s for %s: %v", name, alg, err)
		}
	}
	for _, tc := range []struct {
		name string
		key  []byte
		alg  string
		ok   bool
	}{
		{"a hex secret (the seed's)", []byte(strings.Repeat("30a9", 32)), "HS512", true},
		{"a base64 secret starting with M", []byte("M" + strings.Repeat("A", 87)), "HS512", true},
		{"secret for HS512", secret, "HS512", true},
		{"short secret", []byte("short"), "HS256", false},
		{"PEM for ES256", pubPEM, "ES256", true},
		{"JWK for ES256", jwk, "ES256", true},
		{"PEM for HS256 (key confusion)", pubPEM, "HS256", false},
		{"JWK for HS256 (key confusion)", jwk, "HS256", false},
		{"secret for ES256", secret, "ES256", false},
		{"PEM for ES384 (wrong curve)", pubPEM, "ES384", false},
		{"private PEM", privPEM, "ES256", false},
		{"alg none", secret, "none", false},
	} {
		_, err := ForVerify(tc.key, tc.alg)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err=%v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// wrap breaks s into lines of n characters, as PEM bodies and pasted keys
// are.
func wrap(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}

func TestJWKSHasNoSecrets(t *testing.T) {
	hs, _ := New("hs", "HS256", []byte(strings.Repeat("s", 32)))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, _ := New("es", "ES256", ec)
	set, err := NewSet(hs, es)
	if err != nil {
		t.Fatal(err)
	}
	data, err := set.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 1 || got.Keys[0]["kid"] != "es" || got.Keys[0]["alg"] != "ES256" || got.Keys[0]["use"] != "sig" {
		t.Fatalf("JWKS %s", data)
	}
	for _, private := range []string{"d", "k", "p", "q"} {
		if _, ok := got.Keys[0][private]; ok {
			t.Errorf("JWKS carries %q", private)
		}
	}
	if _, err := NewSet(hs, hs); err == nil {
		t.Error("duplicate kid accepted")
	}
}

// writeKept writes a key file as an earlier jwtd generated it.
func writeKept(t *testing.T, k Kept) {
	t.Helper()
	material, err := Generate(k.Alg)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	if secret, ok := material.([]byte); ok {
		if k.Text {
			secret = hex.AppendEncode(nil, secret)
		}
		data = []byte(base64.RawURLEncoding.EncodeToString(secret) + "\n")
	} else if data, err = MarshalPrivatePEM(material); err != nil {
		t.Fatal(err)
	}
	if _, err := createFile(k.Path(), data, secretfile.Policy{}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadKept(t *testing.T) {
	dir := t.TempDir()
	for _, alg := range []string{"HS256", "HS512", "ES256"} {
		kept := Kept{Dir: dir, Name: "p", Alg: alg, Text: alg == "HS512"}
		if _, err := LoadKept(kept); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), kept.Path()) {
			t.Errorf("LoadKept before the key exists: %v", err)
		}
		writeKept(t, kept)
		k, err := LoadKept(kept)
		if err != nil {
			t.Fatal(err)
		}
		if want := "p-generated"; IsHMAC(alg) && k.Kid() != want {
			t.Errorf("%s: kid %q, want %q", alg, k.Kid(), want)
		}
		if tp, _ := Thumbprint(k.Public()); !IsHMAC(alg) && k.Kid() != tp {
			t.Errorf("%s: kid %q is not the thumbprint %q", alg, k.Kid(), tp)
		}
		if alg == "HS512" {
			if s := k.Secret(); len(s) != 128 || strings.Trim(string(s), "0123456789abcdef") != "" {
				t.Errorf("text secret %q", s)
			}
		}
	}
	// createFile keeps what another process made first, 0600 in 0700.
	path := filepath.Join(dir, "keys", "x")
	if _, err := createFile(path, []byte("first"), secretfile.Policy{}); err != nil {
		t.Fatal(err)
	}
	if got, err := createFile(path, []byte("second"), secretfile.Policy{}); err != nil || string(got) != "first" {
		t.Errorf("createFile over an existing file: %q, %v", got, err)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", info.Mode().Perm())
	}
	if info, _ := os.Stat(filepath.Join(dir, "keys")); info.Mode().Perm() != 0o700 {
		t.Errorf("keys/ has mode %v", info.Mode().Perm())
	}
	// A corrupt key file is an error.
	writeFile(t, filepath.Join(dir, "keys"), "q-es256.pem", []byte("garbage"))
	if _, err := LoadKept(Kept{Dir: dir, Name: "q", Alg: "ES256"}); err == nil {
		t.Error("corrupt key file accepted")
	}
}

func TestGenerateEveryAlgorithm(t *testing.T) {
	for alg := range algorithms {
		if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
			continue // 3072-bit generation is slow; RSA is covered by Load tests
		}
		m, err := Generate(alg)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if _, err := New("g", alg, m); err != nil {
			t.Errorf("%s: generated key refused: %v", alg, err)
		}
	}
}

// FuzzForVerify: any caller key with any alg either fails or gives a key
// pinned to that alg; "none" never gives one; and a key that verifies an
// asymmetric alg is never an HMAC secret (key confusion).
func FuzzForVerify(f *testing.F) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := MarshalPublicPEM(&ec.PublicKey)
	jwk, _ := jose.JSONWebKey{Key: &ec.PublicKey}.MarshalJSON()
	for _, alg := range []string{"HS256", "ES256", "RS256", "none", "EdDSA"} {
		f.Add([]byte(strings.Repeat("k", 64)), alg)
		f.Add(pub, alg)
		f.Add(jwk, alg)
	}
	f.Add([]byte(`{"kty":"oct","k":"AAAA"}`), "HS256")
	f.Fuzz(func(t *testing.T, key []byte, alg string) {
		k, err := ForVerify(key, alg)
		if err != nil {
			return
		}
		if k.Alg() != alg || !Supported(alg) {
			t.Fatalf("ForVerify(%q) gave a %s key", alg, k.Alg())
		}
		if !IsHMAC(alg) {
			for _, hs := range []string{"HS256", "HS384", "HS512"} {
				if _, err := ForVerify(key, hs); err == nil {
					t.Fatalf("a key that verifies %s was taken as an %s secret: %q", alg, hs, key)
				}
			}
		}
	})
}
