package token

import (
	"encoding/json"
	"testing"
)

// benchProfiles maps each algorithm to the test profile that signs with it.
var benchProfiles = []struct{ alg, profile string }{
	{"HS256", "appverify"}, {"HS384", "hs384"}, {"HS512", "castlabs"},
	{"RS256", "rs"}, {"PS256", "ps"}, {"ES256", "default"}, {"ES384", "es384"}, {"EdDSA", "ed"},
}

func BenchmarkSign(b *testing.B) {
	s := testService(b)
	for _, bp := range benchProfiles {
		b.Run(bp.alg, func(b *testing.B) {
			req := Request{Phone: "+14155552671", XID: "tx-1", Data: json.RawMessage(`"this is test"`)}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Issue(bp.profile, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify runs the full server-side verification (Service.Verify).
func BenchmarkVerify(b *testing.B) {
	s := testService(b)
	for _, bp := range benchProfiles {
		b.Run(bp.alg, func(b *testing.B) {
			is, err := s.Issue(bp.profile, Request{Phone: "+14155552671", XID: "tx-1", Data: json.RawMessage(`"this is test"`)})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Verify(is.Token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
