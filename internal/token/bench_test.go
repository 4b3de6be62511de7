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

// BenchmarkVerify runs the full server-side verification (Service.Verify);
// for HS512 (the castlabs layout has no exp) it runs the JWS layer that
// /verifyToken uses with a caller's key.
func BenchmarkVerify(b *testing.B) {
	s := testService(b)
	for _, bp := range benchProfiles {
		b.Run(bp.alg, func(b *testing.B) {
			is, err := s.Issue(bp.profile, Request{Phone: "+14155552671", XID: "tx-1", Data: json.RawMessage(`"this is test"`)})
			if err != nil {
				b.Fatal(err)
			}
			verify := func() error { _, err := s.Verify(is.Token); return err }
			if bp.profile == "castlabs" {
				k := mustKey(b, s, "cl1")
				verify = func() error {
					j, err := Decode(is.Token)
					if err == nil {
						err = j.CheckHeader()
					}
					if err == nil {
						err = j.VerifyWith(k)
					}
					return err
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := verify(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
