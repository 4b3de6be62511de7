package httpapi

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/seedexample"
	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// BenchmarkPhoneToken is the seed 000 hot path end to end in-process:
// phone parsing, XID check, signing and the group-committed record on a
// real SQLite file.
func BenchmarkPhoneToken(b *testing.B) {
	h, _ := testServer(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := do(b, h, "GET", fmt.Sprintf("/v1/token/+14155552671/bench-%d", n.Add(1)), "", "")
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkVerifyToken is seed 003's /verifyToken in-process: body
// decoding, the caller's HS512 key, the response. With jwtd's own
// castlabs key the token's record is read from the SQLite file (by jti,
// its hash compared); with a caller's own key no store is involved.
func BenchmarkVerifyToken(b *testing.B) {
	h, _ := testServer(b)
	ex := seedexample.Load(b)
	foreignKey := "a-castlabs-client's-own-secret-0123456789-0123456789-0123456789!"
	foreign := attacktest.Signed(b, mustHS512(b, foreignKey), `{"typ":"JWT","alg":"HS512"}`,
		fmt.Sprintf(`{"iat":%d,"jti":"f1","payload":{"data":"bench"}}`, time.Now().Unix()))
	for name, body := range map[string]string{
		"jwtd's key":   verifyBody(generateToken(b, h), ex.Key),
		"caller's key": verifyBody(foreign, foreignKey),
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := do(b, h, "POST", "/verifyToken", "application/json", body)
				if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"Signature Verification":true`)) {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

func mustHS512(b *testing.B, secret string) *keys.Key {
	k, err := keys.New("", "HS512", []byte(secret))
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// BenchmarkKeyedMint is POST /v1/tokens (ES256, recorded in a real SQLite
// file) from 16 goroutines without an audit trail, with one, and with
// audit.required: the cost of the trail on the keyed minting route. Each
// entry is written in its record's commit, so the last two cost the same.
// Their times are taken one after the other, so on a busy machine
// BenchmarkKeyedMintTrailCost compares them better.
func BenchmarkKeyedMint(b *testing.B) {
	for _, mode := range []string{"audit=off", "audit=on", "audit=required"} {
		b.Run(mode, func(b *testing.B) {
			h := keyedMintServer(b, mode)
			b.SetParallelism(16)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := keyedMint(b, h); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// keyedMintServer is a server on its own SQLite file whose keyed mints are
// audited as mode says: audit=off (no trail), audit=on, audit=required.
func keyedMintServer(b *testing.B, mode string) http.Handler {
	_, svc, store := testServerWithStore(b)
	d := testDeps(b, svc, store, nil, nil)
	switch mode {
	case "audit=off":
		d.Audit = nil
	case "audit=on":
		tr := audit.NewTrail(store, audit.Options{Chain: "bench"})
		b.Cleanup(tr.Close)
		d.Audit = tr
	}
	d.Minter.Audit = d.Audit
	return NewServer(d, Options{MaxBodyBytes: 1 << 20})
}

// keyedMint mints one token through POST /v1/tokens.
func keyedMint(b *testing.B, h http.Handler) error {
	w := doAuth(b, h, "POST", "/v1/tokens", issuerKey, "application/json", `{"profile":"default","sub":"bench"}`)
	if w.Code != 201 {
		return fmt.Errorf("POST /v1/tokens: %d %s", w.Code, w.Body)
	}
	return nil
}
