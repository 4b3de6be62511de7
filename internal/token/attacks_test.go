package token

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtd/jwtd/internal/keys"
)

// claimsWithExp returns default-layout claims issued at testNow with exp as raw JSON.
func claimsWithExp(exp string) string {
	return fmt.Sprintf(`{"iss":"https://jwtd.test","iat":%d,"exp":%s,"jti":"j1"}`, testNow.Unix(), exp)
}

func validClaims() string { return claimsWithExp(fmt.Sprint(testNow.Unix() + 60)) }

// TestAttackCorpus runs every attack class of
// research/jose-libraries-and-attacks.md through Service.Verify, each with
// the reason it must be rejected for.
func TestAttackCorpus(t *testing.T) {
	s := testService(t)
	es1, rs1 := mustKey(t, s, "es1"), mustKey(t, s, "rs1")
	now := testNow.Unix()

	// Listener for jku/x5u: it must never be asked anything.
	var fetched atomic.Int32
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fetched.Add(1) }))
	defer listener.Close()

	rsaPub := rs1.Public()
	der, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkJSON, _ := jose.JSONWebKey{Key: rsaPub, KeyID: "rs1", Algorithm: "RS256", Use: "sig"}.MarshalJSON()

	valid := signed(t, es1, `{"alg":"ES256","kid":"es1","typ":"JWT"}`, validClaims())
	parts := strings.Split(valid, ".")
	n := ecdsa.PublicKey(*es1.Public().(*ecdsa.PublicKey)).Curve.Params().N
	rawSig := func(r, s *big.Int) string {
		b := make([]byte, 64)
		r.FillBytes(b[:32])
		s.FillBytes(b[32:])
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(b)
	}
	one, zero, nMinus1 := big.NewInt(1), big.NewInt(0), new(big.Int).Sub(n, big.NewInt(1))
	origSig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	r0, s0 := new(big.Int).SetBytes(origSig[:32]), new(big.Int).SetBytes(origSig[32:])

	deep := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	attackerKey, _ := keys.Generate("ES256")
	attacker, _ := keys.New("attacker", "ES256", attackerKey)
	attackerJWK, _ := jose.JSONWebKey{Key: attacker.Public()}.MarshalJSON()

	cases := []struct {
		class, name string
		tok         string
		want        error
	}{
		{"control", "valid ES256", valid, nil},

		{"1 alg none", "none with kid", b64(`{"alg":"none","kid":"es1"}`) + "." + b64(validClaims()) + ".", ErrMalformed},
		{"1 alg none", "none with a signature", b64(`{"alg":"none","kid":"es1"}`) + "." + b64(validClaims()) + "." + parts[2], ErrBadSignature},
		{"1 alg none", "None", b64(`{"alg":"None"}`) + "." + b64(validClaims()) + ".AAAA", ErrBadSignature},
		{"1 alg none", "NONE", b64(`{"alg":"NONE"}`) + "." + b64(validClaims()) + ".AAAA", ErrBadSignature},
		{"1 alg none", "nOnE", b64(`{"alg":"nOnE","kid":"av1"}`) + "." + b64(validClaims()) + ".AAAA", ErrBadSignature},

		{"2 key confusion", "HS256 with RSA PEM, kid rs1", hs256(`{"alg":"HS256","kid":"rs1"}`, validClaims(), pemBytes), ErrBadSignature},
		{"2 key confusion", "HS256 with RSA PEM without newline", hs256(`{"alg":"HS256","kid":"rs1"}`, validClaims(), []byte(strings.TrimSpace(string(pemBytes)))), ErrBadSignature},
		{"2 key confusion", "HS256 with RSA DER", hs256(`{"alg":"HS256","kid":"rs1"}`, validClaims(), der), ErrBadSignature},
		{"2 key confusion", "HS256 with RSA JWK JSON", hs256(`{"alg":"HS256","kid":"rs1"}`, validClaims(), jwkJSON), ErrBadSignature},
		{"2 key confusion", "kid-less HS256 with RSA PEM", hs256(`{"alg":"HS256","typ":"JWT"}`, validClaims(), pemBytes), ErrBadSignature},
		{"2 key confusion", "RS256 token under an ES kid", signed(t, rs1, `{"alg":"RS256","kid":"es1"}`, validClaims()), ErrBadSignature},

		{"3 embedded jwk", "jwk header with the attacker's key",
			signed(t, attacker, `{"alg":"ES256","kid":"es1","jwk":`+string(attackerJWK)+`}`, validClaims()), ErrMalformed},

		{"4 jku/x5u", "jku", signed(t, es1, `{"alg":"ES256","kid":"es1","jku":"`+listener.URL+`/jwks"}`, validClaims()), ErrMalformed},
		{"4 jku/x5u", "x5u", signed(t, es1, `{"alg":"ES256","kid":"es1","x5u":"`+listener.URL+`/cert"}`, validClaims()), ErrMalformed},
		{"4 jku/x5u", "x5c", signed(t, es1, `{"alg":"ES256","kid":"es1","x5c":["MIIB"]}`, validClaims()), ErrMalformed},

		{"5 kid tricks", "empty kid", hs256(`{"alg":"HS256","kid":""}`, validClaims(), []byte("")), ErrUnknownKid},
		{"5 kid tricks", "path traversal", hs256(`{"alg":"HS256","kid":"../../dev/null"}`, validClaims(), []byte("")), ErrUnknownKid},
		{"5 kid tricks", "/dev/null", hs256(`{"alg":"HS256","kid":"/dev/null"}`, validClaims(), []byte("")), ErrUnknownKid},
		{"5 kid tricks", "command", hs256(`{"alg":"HS256","kid":"|sleep 10"}`, validClaims(), []byte("1")), ErrUnknownKid},
		{"5 kid tricks", "SQL", hs256(`{"alg":"HS256","kid":"x' UNION SELECT '1"}`, validClaims(), []byte("1")), ErrUnknownKid},
		{"5 kid tricks", "100 KB kid", hs256(`{"alg":"HS256","kid":"`+strings.Repeat("k", 100<<10)+`"}`, validClaims(), []byte("1")), ErrMalformed},
		{"5 kid tricks", "numeric kid", hs256(`{"alg":"HS256","kid":1}`, validClaims(), []byte("1")), ErrMalformed},
		{"5 kid tricks", "null kid", hs256(`{"alg":"HS256","kid":null}`, validClaims(), []byte("")), ErrMalformed},

		{"6 weak secret", "kid-less HS256 signed with 'secret'", hs256(`{"alg":"HS256","typ":"JWT"}`, validClaims(), []byte("secret")), ErrBadSignature},
		{"6 weak secret", "kid-less HS256 signed with empty", hs256(`{"alg":"HS256","typ":"JWT"}`, validClaims(), nil), ErrBadSignature},

		{"7 signature", "stripped", parts[0] + "." + parts[1] + ".", ErrMalformed},
		{"7 signature", "truncated", parts[0] + "." + parts[1] + "." + parts[2][:40], ErrBadSignature},
		{"7 signature", "extra segment", valid + "." + parts[2], ErrMalformed},
		{"7 signature", "two segments", parts[0] + "." + parts[1], ErrMalformed},
		{"7 signature", "empty header", "." + parts[1] + "." + parts[2], ErrMalformed},
		{"7 signature", "all empty", "..", ErrMalformed},
		{"7 signature", "empty string", "", ErrMalformed},

		{"8 psychic ECDSA", "r=s=0", rawSig(zero, zero), ErrBadSignature},
		{"8 psychic ECDSA", "r=s=1", rawSig(one, one), ErrBadSignature},
		{"8 psychic ECDSA", "r=0", rawSig(zero, s0), ErrBadSignature},
		{"8 psychic ECDSA", "s=0", rawSig(r0, zero), ErrBadSignature},
		{"8 psychic ECDSA", "r=n", rawSig(n, s0), ErrBadSignature},
		{"8 psychic ECDSA", "s=n", rawSig(r0, n), ErrBadSignature},
		{"8 psychic ECDSA", "r=n-1", rawSig(nMinus1, s0), ErrBadSignature},
		{"8 psychic ECDSA", "s=n-1", rawSig(r0, nMinus1), ErrBadSignature},
		// (r, n−s) is the same signature to ECDSA: tokens are malleable,
		// which is why records and revocation go by jti, never the string.
		{"8 psychic ECDSA", "s → n−s is accepted", rawSig(r0, new(big.Int).Sub(n, s0)), nil},
		{"8 psychic ECDSA", "DER signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(derSig(r0, s0)), ErrBadSignature},

		{"9 duplicate keys", "header alg twice", b64(`{"alg":"ES256","alg":"none","kid":"es1"}`) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"9 duplicate keys", "escaped duplicate", b64(`{"alg":"ES256","\u0061lg":"none","kid":"es1"}`) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"9 duplicate keys", "claim sub twice", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"sub":"a","sub":"admin","exp":`+fmt.Sprint(now+60)+`}`), ErrMalformed},
		{"9 duplicate keys", "nested duplicate", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"exp":`+fmt.Sprint(now+60)+`,"data":{"a":1,"a":2}}`), ErrMalformed},

		{"10 crit", "crit exp", signed(t, es1, `{"alg":"ES256","kid":"es1","crit":["exp"]}`, validClaims()), ErrMalformed},
		{"10 crit", "crit empty", signed(t, es1, `{"alg":"ES256","kid":"es1","crit":[]}`, validClaims()), ErrMalformed},
		{"10 crit", "crit b64", signed(t, es1, `{"alg":"ES256","kid":"es1","b64":false,"crit":["b64"]}`, validClaims()), ErrMalformed},

		{"11 oversized", "1 MB token", strings.Repeat("A", 1<<20) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"11 oversized", "deep nesting", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"exp":`+fmt.Sprint(now+60)+`,"d":`+deep+`}`), ErrMalformed},

		{"12 base64", "padding", parts[0] + "=." + parts[1] + "." + parts[2], ErrMalformed},
		{"12 base64", "+ and /", strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/", ErrMalformed},
		{"12 base64", "space", parts[0] + " ." + parts[1] + "." + parts[2], ErrMalformed},
		{"12 base64", "newline", parts[0] + "." + parts[1][:4] + "\n" + parts[1][4:] + "." + parts[2], ErrMalformed},
		{"12 base64", "unused bits in signature", parts[0] + "." + parts[1] + "." + flipUnusedBits(parts[2]), ErrMalformed},

		{"13 nested", "cty JWT", signed(t, es1, `{"alg":"ES256","kid":"es1","cty":"JWT"}`, validClaims()), ErrMalformed},

		{"14 exp", "string", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`"`+fmt.Sprint(now+60)+`"`)), ErrMalformed},
		{"14 exp", "RFC 3339", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`"2030-01-01T00:00:00Z"`)), ErrMalformed},
		{"14 exp", "null", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`null`)), ErrMalformed},
		{"14 exp", "bool", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`true`)), ErrMalformed},
		{"14 exp", "array", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`[1]`)), ErrMalformed},
		{"14 exp", "1e300", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`1e300`)), ErrMalformed},
		{"14 exp", "negative", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(`-1`)), ErrMalformed},
		{"14 exp", "missing", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"iat":`+fmt.Sprint(now)+`}`), ErrMalformed},
		{"14 exp", "fractional is valid", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(fmt.Sprint(now+60)+".5")), nil},
		{"14 exp", "past", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(fmt.Sprint(now-31))), ErrExpired},

		{"15 leeway", "exp just inside", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(fmt.Sprint(now-29))), nil},
		{"15 leeway", "nbf just inside", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"nbf":%d,"exp":%d}`, now+29, now+60)), nil},
		{"15 leeway", "nbf just past", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"nbf":%d,"exp":%d}`, now+31, now+60)), ErrNotYetValid},
		{"15 leeway", "iat just inside", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"iat":%d,"exp":%d}`, now+29, now+60)), nil},
		{"15 leeway", "iat just past", signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"iat":%d,"exp":%d}`, now+31, now+60)), ErrNotYetValid},

		{"16 JSON serialization", "flattened", fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, parts[0], parts[1], parts[2]), ErrMalformed},

		{"17 typ", "typ JWE", signed(t, es1, `{"alg":"ES256","kid":"es1","typ":"JWE"}`, validClaims()), ErrMalformed},
		{"17 typ", "typ not a string", signed(t, es1, `{"alg":"ES256","kid":"es1","typ":1}`, validClaims()), ErrMalformed},
		{"17 typ", "typ application/jwt is fine", signed(t, es1, `{"alg":"ES256","kid":"es1","typ":"application/JWT"}`, validClaims()), nil},
	}
	for _, tc := range cases {
		t.Run(tc.class+"/"+tc.name, func(t *testing.T) {
			_, err := s.Verify(tc.tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("rejected a valid token: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := Reason(err); got != tc.want.Error() {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("the jku/x5u listener was asked %d times", n)
	}
}

// derSig is an ECDSA signature in ASN.1 DER, the form JWS must not accept.
func derSig(r, s *big.Int) []byte {
	enc := func(x *big.Int) []byte {
		b := x.Bytes()
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(enc(r), enc(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// flipUnusedBits sets the low bits of the last base64url character that a
// lenient decoder ignores (64 bytes encode to 86 characters, 4 bits unused).
func flipUnusedBits(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}
