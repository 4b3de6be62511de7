package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// FuzzDecode: Decode never panics, and whatever it accepts is canonical:
// re-encoding its segments gives back the input byte for byte.
func FuzzDecode(f *testing.F) {
	s := testService(f)
	for _, p := range s.Profiles() {
		is, err := s.Issue(p.Name, Request{Phone: "+14155552671", Data: json.RawMessage(`"x"`)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(is.Token)
	}
	for _, seed := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", `{"payload":"e30"}`, "e30.e30.e30.e30"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		j, err := Decode(tok)
		if err != nil {
			if Reason(err) != "malformed" {
				t.Fatalf("Decode error with reason %q: %v", Reason(err), err)
			}
			return
		}
		enc := base64.RawURLEncoding
		again := enc.EncodeToString(j.RawHeader) + "." + enc.EncodeToString(j.Payload) + "." + enc.EncodeToString(j.Signature)
		if again != tok {
			t.Fatalf("accepted a non-canonical token %q", tok)
		}
		_ = j.CheckHeader()
	})
}

// FuzzVerify: Verify never panics, and nothing the fuzzer makes verifies
// unless it carries the jti of a token the service really issued.
func FuzzVerify(f *testing.F) {
	s := testService(f)
	issued := map[string]bool{}
	for _, p := range s.Profiles() {
		is, err := s.Issue(p.Name, Request{Phone: "+14155552671", XID: "x"})
		if err != nil {
			f.Fatal(err)
		}
		issued[is.JTI] = true
		f.Add(is.Token)
		parts := strings.Split(is.Token, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(attacktest.B64(`{"alg":"none"}`) + "." + parts[1] + ".")
	}
	f.Fuzz(func(t *testing.T, tok string) {
		v, err := s.Verify(tok)
		if err != nil {
			_ = Reason(err)
			return
		}
		if !issued[v.Claims.JTI] {
			t.Fatalf("verified a token the service never issued: %q", tok)
		}
	})
}
