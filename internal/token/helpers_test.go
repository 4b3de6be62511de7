package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/record"
)

// testNow is the fixed clock of the token tests.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

const (
	appverifySecret = "appverify-test-secret-0123456789abcdef"
	castlabsSecret  = "a9ddbcaba8c0ac1a0a812dc0c2f08514b23f2db0a68343cb8199ebb38a6d91e4ebfb378e22ad39c2d01d0b4ec9c34aa91056862ddace3fbbd6852ee60c36acbf"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testRSAKey is generated once per test binary: RSA generation is slow.
func testRSAKey(t testing.TB) *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// testService has a key and a profile for each family: the two kid-less seed
// layouts over HMAC, and default-layout profiles over HS384, ES256, ES384,
// RS256, PS256 and EdDSA.
func testService(t testing.TB) *Service {
	t.Helper()
	ec256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rk := testRSAKey(t)
	mk := func(kid, alg string, m any) *keys.Key {
		k, err := keys.New(kid, alg, m)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	set, err := keys.NewSet(
		mk("av1", "HS256", []byte(appverifySecret)),
		mk("cl1", "HS512", []byte(castlabsSecret)),
		mk("hs384", "HS384", []byte(castlabsSecret[:48])),
		mk("es1", "ES256", ec256),
		mk("es384", "ES384", ec384),
		mk("rs1", "RS256", rk),
		mk("ps1", "PS256", rk),
		mk("ed1", "EdDSA", ed),
	)
	if err != nil {
		t.Fatal(err)
	}
	profiles := map[string]ProfileSpec{
		"appverify": {Key: "av1", Layout: LayoutAppVerify, Issuer: "cust", TTL: 90 * time.Second, Backdate: 10 * time.Second},
		"castlabs":  {Key: "cl1", Layout: LayoutCastlabs, TTL: time.Hour},
		"default":   {Key: "es1", Issuer: "https://jwtd.test", TTL: 5 * time.Minute},
		"es384":     {Key: "es384", TTL: time.Minute},
		"hs384":     {Key: "hs384", TTL: time.Minute},
		"rs":        {Key: "rs1", TTL: time.Minute},
		"ps":        {Key: "ps1", TTL: time.Minute},
		"ed":        {Key: "ed1", TTL: time.Minute},
	}
	// A seeded nonce source: the same jtis in every process, which the fuzz
	// targets rely on when workers replay the coordinator's inputs.
	nonces := mrand.NewChaCha8([32]byte{'j', 'w', 't', 'd'})
	s, err := NewService(set, profiles, Options{Now: func() time.Time { return testNow }, Rand: nonces, Leeway: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// NewTestService exports testService and its clock to the external test
// package (attacks_test.go), which the attacktest package's import of
// keys would otherwise cycle with.
func NewTestService(t testing.TB) (*Service, time.Time) { return testService(t), testNow }

// validClaims are default-layout claims valid at testNow.
func validClaims() string {
	return fmt.Sprintf(`{"iss":"https://jwtd.test","iat":%d,"exp":%d,"jti":"j1"}`, testNow.Unix(), testNow.Unix()+60)
}

// records stands in for the record store in tests of the verdict's
// logic: jti → what the record says.
type records map[string]*recorded

type recorded struct {
	sha256  string
	expires time.Time
	revoked bool
}

// add records an issued token as jwtd does.
func (r records) add(is *Issued) {
	r[is.JTI] = &recorded{sha256: HashToken(is.Token), expires: is.ExpiresAt}
}

func (r records) lookup(_ context.Context, jti string) (*record.Record, error) {
	rec, ok := r[jti]
	if !ok {
		return nil, record.ErrNotFound
	}
	out := &record.Record{JTI: jti, TokenSHA256: rec.sha256, Expires: rec.expires}
	if rec.revoked {
		out.Revoked = testNow
	}
	return out, nil
}
