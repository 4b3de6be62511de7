package httpapi

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jwtd/jwtd/internal/seedexample"
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
// decoding, the caller's HS512 key, the response. No store is involved.
func BenchmarkVerifyToken(b *testing.B) {
	h, _ := testServer(b)
	ex := seedexample.Load(b)
	body := verifyBody(generateToken(b, h), ex.Key)
	b.ReportAllocs()
	for b.Loop() {
		w := do(b, h, "POST", "/verifyToken", "application/json", body)
		if w.Code != 200 || !bytes.Contains(w.Body.Bytes(), []byte(`"Signature Verification":true`)) {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
