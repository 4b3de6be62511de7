// Package attacktest is the corpus of tokens a verifier must survive (the
// attack classes of research/jose-libraries-and-attacks.md), shared by the
// verifier's own tests and the HTTP tests of /v1/introspect and /verifyToken.
package attacktest

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/jwtd/jwtd/internal/keys"
)

// Setup is what the corpus is built against: an ES256 key with kid "es1"
// and an RS256 key with kid "rs1" that the verifier knows, the verifier's
// clock (leeway 30 s), and a URL whose server must never be asked anything.
type Setup struct {
	ES, RS   *keys.Key
	Now      time.Time
	Listener string
}

// Case is one token and how the server-side verifier must answer it:
// Reason is the rejection reason, or "" for a token that must verify.
// CallerKey is what a /verifyToken caller would send as Signing_key with
// it: the public key the attack is aimed at, or the weak secret it was
// signed with.
type Case struct {
	Class, Name string
	Token       string
	Reason      string
	CallerKey   []byte
}

// Corpus builds the cases.
func Corpus(t testing.TB, s Setup) []Case {
	t.Helper()
	es1, rs1 := s.ES, s.RS
	now := s.Now.Unix()
	rsaPub := rs1.Public()
	der, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkJSON, _ := jose.JSONWebKey{Key: rsaPub, KeyID: "rs1", Algorithm: "RS256", Use: "sig"}.MarshalJSON()
	esDER, _ := x509.MarshalPKIXPublicKey(es1.Public())
	esPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: esDER})

	valid := Signed(t, es1, `{"alg":"ES256","kid":"es1","typ":"JWT"}`, validClaims(s.Now))
	parts := strings.Split(valid, ".")
	n := es1.Public().(*ecdsa.PublicKey).Curve.Params().N
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

	raw := []struct{ class, name, tok, reason string }{
		{"control", "valid ES256", valid, ""},

		{"1 alg none", "none with kid", B64(`{"alg":"none","kid":"es1"}`) + "." + B64(validClaims(s.Now)) + ".", "malformed"},
		{"1 alg none", "none with a signature", B64(`{"alg":"none","kid":"es1"}`) + "." + B64(validClaims(s.Now)) + "." + parts[2], "bad_signature"},
		{"1 alg none", "None", B64(`{"alg":"None"}`) + "." + B64(validClaims(s.Now)) + ".AAAA", "bad_signature"},
		{"1 alg none", "NONE", B64(`{"alg":"NONE"}`) + "." + B64(validClaims(s.Now)) + ".AAAA", "bad_signature"},
		{"1 alg none", "nOnE", B64(`{"alg":"nOnE","kid":"av1"}`) + "." + B64(validClaims(s.Now)) + ".AAAA", "bad_signature"},

		{"2 key confusion", "HS256 with RSA PEM, kid rs1", HS256(`{"alg":"HS256","kid":"rs1"}`, validClaims(s.Now), pemBytes), "bad_signature"},
		{"2 key confusion", "HS256 with RSA PEM without newline", HS256(`{"alg":"HS256","kid":"rs1"}`, validClaims(s.Now), []byte(strings.TrimSpace(string(pemBytes)))), "bad_signature"},
		{"2 key confusion", "HS256 with RSA DER", HS256(`{"alg":"HS256","kid":"rs1"}`, validClaims(s.Now), der), "bad_signature"},
		{"2 key confusion", "HS256 with RSA JWK JSON", HS256(`{"alg":"HS256","kid":"rs1"}`, validClaims(s.Now), jwkJSON), "bad_signature"},
		{"2 key confusion", "kid-less HS256 with RSA PEM", HS256(`{"alg":"HS256","typ":"JWT"}`, validClaims(s.Now), pemBytes), "bad_signature"},
		{"2 key confusion", "RS256 token under an ES kid", Signed(t, rs1, `{"alg":"RS256","kid":"es1"}`, validClaims(s.Now)), "bad_signature"},

		{"3 embedded jwk", "jwk header with the attacker's key",
			Signed(t, attacker, `{"alg":"ES256","kid":"es1","jwk":`+string(attackerJWK)+`}`, validClaims(s.Now)), "malformed"},

		{"4 jku/x5u", "jku", Signed(t, es1, `{"alg":"ES256","kid":"es1","jku":"`+s.Listener+`/jwks"}`, validClaims(s.Now)), "malformed"},
		{"4 jku/x5u", "x5u", Signed(t, es1, `{"alg":"ES256","kid":"es1","x5u":"`+s.Listener+`/cert"}`, validClaims(s.Now)), "malformed"},
		{"4 jku/x5u", "x5c", Signed(t, es1, `{"alg":"ES256","kid":"es1","x5c":["MIIB"]}`, validClaims(s.Now)), "malformed"},

		{"5 kid tricks", "empty kid", HS256(`{"alg":"HS256","kid":""}`, validClaims(s.Now), []byte("")), "unknown_kid"},
		{"5 kid tricks", "path traversal", HS256(`{"alg":"HS256","kid":"../../dev/null"}`, validClaims(s.Now), []byte("")), "unknown_kid"},
		{"5 kid tricks", "/dev/null", HS256(`{"alg":"HS256","kid":"/dev/null"}`, validClaims(s.Now), []byte("")), "unknown_kid"},
		{"5 kid tricks", "command", HS256(`{"alg":"HS256","kid":"|sleep 10"}`, validClaims(s.Now), []byte("1")), "unknown_kid"},
		{"5 kid tricks", "SQL", HS256(`{"alg":"HS256","kid":"x' UNION SELECT '1"}`, validClaims(s.Now), []byte("1")), "unknown_kid"},
		{"5 kid tricks", "100 KB kid", HS256(`{"alg":"HS256","kid":"`+strings.Repeat("k", 100<<10)+`"}`, validClaims(s.Now), []byte("1")), "malformed"},
		{"5 kid tricks", "numeric kid", HS256(`{"alg":"HS256","kid":1}`, validClaims(s.Now), []byte("1")), "malformed"},
		{"5 kid tricks", "null kid", HS256(`{"alg":"HS256","kid":null}`, validClaims(s.Now), []byte("")), "malformed"},

		{"6 weak secret", "kid-less HS256 signed with 'secret'", HS256(`{"alg":"HS256","typ":"JWT"}`, validClaims(s.Now), []byte("secret")), "bad_signature"},
		{"6 weak secret", "kid-less HS256 signed with empty", HS256(`{"alg":"HS256","typ":"JWT"}`, validClaims(s.Now), nil), "bad_signature"},

		{"7 signature", "stripped", parts[0] + "." + parts[1] + ".", "malformed"},
		{"7 signature", "truncated", parts[0] + "." + parts[1] + "." + parts[2][:40], "bad_signature"},
		{"7 signature", "extra segment", valid + "." + parts[2], "malformed"},
		{"7 signature", "two segments", parts[0] + "." + parts[1], "malformed"},
		{"7 signature", "empty header", "." + parts[1] + "." + parts[2], "malformed"},
		{"7 signature", "all empty", "..", "malformed"},
		{"7 signature", "empty string", "", "malformed"},

		{"8 psychic ECDSA", "r=s=0", rawSig(zero, zero), "bad_signature"},
		{"8 psychic ECDSA", "r=s=1", rawSig(one, one), "bad_signature"},
		{"8 psychic ECDSA", "r=0", rawSig(zero, s0), "bad_signature"},
		{"8 psychic ECDSA", "s=0", rawSig(r0, zero), "bad_signature"},
		{"8 psychic ECDSA", "r=n", rawSig(n, s0), "bad_signature"},
		{"8 psychic ECDSA", "s=n", rawSig(r0, n), "bad_signature"},
		{"8 psychic ECDSA", "r=n-1", rawSig(nMinus1, s0), "bad_signature"},
		{"8 psychic ECDSA", "s=n-1", rawSig(r0, nMinus1), "bad_signature"},
		// (r, n−s) is the same signature to ECDSA: tokens are malleable,
		// which is why records and revocation go by jti, never the string.
		{"8 psychic ECDSA", "s → n−s is accepted", rawSig(r0, new(big.Int).Sub(n, s0)), ""},
		{"8 psychic ECDSA", "DER signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(derSig(r0, s0)), "bad_signature"},

		{"9 duplicate keys", "header alg twice", B64(`{"alg":"ES256","alg":"none","kid":"es1"}`) + "." + parts[1] + "." + parts[2], "malformed"},
		{"9 duplicate keys", "escaped duplicate", B64(`{"alg":"ES256","\u0061lg":"none","kid":"es1"}`) + "." + parts[1] + "." + parts[2], "malformed"},
		{"9 duplicate keys", "claim sub twice", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"sub":"a","sub":"admin","exp":`+fmt.Sprint(now+60)+`}`), "malformed"},
		{"9 duplicate keys", "nested duplicate", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"exp":`+fmt.Sprint(now+60)+`,"data":{"a":1,"a":2}}`), "malformed"},

		{"10 crit", "crit exp", Signed(t, es1, `{"alg":"ES256","kid":"es1","crit":["exp"]}`, validClaims(s.Now)), "malformed"},
		{"10 crit", "crit empty", Signed(t, es1, `{"alg":"ES256","kid":"es1","crit":[]}`, validClaims(s.Now)), "malformed"},
		{"10 crit", "crit b64", Signed(t, es1, `{"alg":"ES256","kid":"es1","b64":false,"crit":["b64"]}`, validClaims(s.Now)), "malformed"},

		{"11 oversized", "1 MB token", strings.Repeat("A", 1<<20) + "." + parts[1] + "." + parts[2], "malformed"},
		{"11 oversized", "deep nesting", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"exp":`+fmt.Sprint(now+60)+`,"d":`+deep+`}`), "malformed"},

		{"12 base64", "padding", parts[0] + "=." + parts[1] + "." + parts[2], "malformed"},
		{"12 base64", "+ and /", strings.NewReplacer("-", "+", "_", "/").Replace(valid) + "+/", "malformed"},
		{"12 base64", "space", parts[0] + " ." + parts[1] + "." + parts[2], "malformed"},
		{"12 base64", "newline", parts[0] + "." + parts[1][:4] + "\n" + parts[1][4:] + "." + parts[2], "malformed"},
		{"12 base64", "unused bits in signature", parts[0] + "." + parts[1] + "." + flipUnusedBits(parts[2]), "malformed"},

		{"13 nested", "cty JWT", Signed(t, es1, `{"alg":"ES256","kid":"es1","cty":"JWT"}`, validClaims(s.Now)), "malformed"},

		{"14 exp", "string", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `"`+fmt.Sprint(now+60)+`"`)), "malformed"},
		{"14 exp", "RFC 3339", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `"2030-01-01T00:00:00Z"`)), "malformed"},
		{"14 exp", "null", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `null`)), "malformed"},
		{"14 exp", "bool", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `true`)), "malformed"},
		{"14 exp", "array", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `[1]`)), "malformed"},
		{"14 exp", "1e300", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `1e300`)), "malformed"},
		{"14 exp", "negative", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, `-1`)), "malformed"},
		{"14 exp", "missing", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, `{"iat":`+fmt.Sprint(now)+`}`), "malformed"},
		{"14 exp", "fractional is valid", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, fmt.Sprint(now+60)+".5")), ""},
		{"14 exp", "past", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, fmt.Sprint(now-31))), "expired"},

		{"15 leeway", "exp just inside", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, claimsWithExp(s.Now, fmt.Sprint(now-29))), ""},
		{"15 leeway", "nbf just inside", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"nbf":%d,"exp":%d}`, now+29, now+60)), ""},
		{"15 leeway", "nbf just past", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"nbf":%d,"exp":%d}`, now+31, now+60)), "not_yet_valid"},
		{"15 leeway", "iat just inside", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"iat":%d,"exp":%d}`, now+29, now+60)), ""},
		{"15 leeway", "iat just past", Signed(t, es1, `{"alg":"ES256","kid":"es1"}`, fmt.Sprintf(`{"iat":%d,"exp":%d}`, now+31, now+60)), "not_yet_valid"},

		{"16 JSON serialization", "flattened", fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q}`, parts[0], parts[1], parts[2]), "malformed"},

		{"17 typ", "typ JWE", Signed(t, es1, `{"alg":"ES256","kid":"es1","typ":"JWE"}`, validClaims(s.Now)), "malformed"},
		{"17 typ", "typ not a string", Signed(t, es1, `{"alg":"ES256","kid":"es1","typ":1}`, validClaims(s.Now)), "malformed"},
		{"17 typ", "typ application/jwt is fine", Signed(t, es1, `{"alg":"ES256","kid":"es1","typ":"application/JWT"}`, validClaims(s.Now)), ""},
	}
	cases := make([]Case, len(raw))
	for i, r := range raw {
		cases[i] = Case{Class: r.class, Name: r.name, Token: r.tok, Reason: r.reason}
		switch {
		case strings.HasPrefix(cases[i].Class, "2 ") && strings.HasPrefix(r.tok, B64(`{"alg":"HS256"`)):
			cases[i].CallerKey = pemBytes // the public key the HS256 token abuses
		case strings.HasPrefix(cases[i].Class, "5 "):
			cases[i].CallerKey = []byte("1")
		case strings.HasPrefix(cases[i].Class, "6 "):
			cases[i].CallerKey = []byte("secret")
		default:
			cases[i].CallerKey = esPEM
		}
	}
	return cases
}

// claimsWithExp returns default-layout claims issued at now with exp as raw JSON.
func claimsWithExp(now time.Time, exp string) string {
	return fmt.Sprintf(`{"iss":"https://jwtd.test","iat":%d,"exp":%s,"jti":"j1"}`, now.Unix(), exp)
}

func validClaims(now time.Time) string { return claimsWithExp(now, fmt.Sprint(now.Unix()+60)) }

// B64 is unpadded base64url.
func B64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// HS256 builds a token from raw header and claims JSON, HMAC-SHA256 signed
// with any secret at all (weak ones included, which keys.New would refuse).
func HS256(header, claims string, secret []byte) string {
	input := B64(header) + "." + B64(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Signed builds a token from raw header and claims JSON, signed with k.
func Signed(t testing.TB, k *keys.Key, header, claims string) string {
	t.Helper()
	input := B64(header) + "." + B64(claims)
	sig, err := k.Sign(input)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// derSig is an ECDSA signature in ASN.1 DER, the form JWS must not accept.
func derSig(r, s *big.Int) []byte {
	enc := func(x *big.Int) []byte {
		b := x.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
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
