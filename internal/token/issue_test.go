package token

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/seedexample"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// segments decodes a token's header and claims for inspection.
func segments(t *testing.T, tok string) (header, claims string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return string(h), string(c)
}

func TestIssueCastlabsIsSeedCompatible(t *testing.T) {
	s := testService(t)
	data, _ := json.Marshal("this is test3")
	is, err := s.Issue("castlabs", Request{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(is.Token, ".")
	if parts[0] != "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9" {
		t.Errorf("header segment %s", parts[0])
	}
	_, claims := segments(t, is.Token)
	want := regexp.MustCompile(`^\{"iat":` + fmt.Sprint(testNow.Unix()) + `,"jti":"[0-9a-f]{32}","payload":\{"data":"this is test3","date":"2026-11-23"\}\}$`)
	if !want.MatchString(claims) {
		t.Errorf("claims %s", claims)
	}
	// HS512 over the key string's UTF-8 bytes, not its hex decoding.
	m := hmac.New(sha512.New, []byte(castlabsSecret))
	m.Write([]byte(parts[0] + "." + parts[1]))
	if got := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); got != parts[2] {
		t.Error("signature is not HMAC-SHA512 over the key string")
	}
	if is.JTI == "" || !strings.Contains(claims, is.JTI) {
		t.Errorf("Issued.JTI %q not in claims", is.JTI)
	}
}

func TestIssueAppVerifyLayout(t *testing.T) {
	s := testService(t)
	is, err := s.Issue("appverify", Request{Phone: "+14155552671", XID: "tx-1"})
	if err != nil {
		t.Fatal(err)
	}
	h, c := segments(t, is.Token)
	if h != `{"alg":"HS256","typ":"JWT"}` {
		t.Errorf("header %s", h)
	}
	iat := testNow.Unix() - 10
	want := fmt.Sprintf(`{"iss":"cust","iat":%d,"exp":%d,"phn":"+14155552671","xid":"tx-1","jti":%q}`, iat, iat+90, is.JTI)
	if c != want {
		t.Errorf("claims\n got %s\nwant %s", c, want)
	}
	if !is.ExpiresAt.Equal(time.Unix(iat+90, 0)) {
		t.Errorf("ExpiresAt %s", is.ExpiresAt)
	}
}

func TestIssueDefaultLayout(t *testing.T) {
	s := testService(t)
	is, err := s.Issue("default", Request{Subject: "user-1", Audience: "api", Data: json.RawMessage(`{ "plan" : "pro", "tags":["<a>"] }`)})
	if err != nil {
		t.Fatal(err)
	}
	h, c := segments(t, is.Token)
	if h != `{"alg":"ES256","kid":"es1","typ":"JWT"}` {
		t.Errorf("header %s", h)
	}
	want := fmt.Sprintf(`{"iss":"https://jwtd.test","sub":"user-1","aud":"api","iat":%d,"exp":%d,"jti":%q,"data":{"plan":"pro","tags":["<a>"]}}`,
		testNow.Unix(), testNow.Unix()+300, is.JTI)
	if c != want {
		t.Errorf("claims\n got %s\nwant %s", c, want)
	}
}

func TestIssueErrors(t *testing.T) {
	s := testService(t)
	if _, err := s.Issue("nope", Request{}); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := s.Issue("default", Request{TTL: 6 * time.Minute}); !errors.Is(err, ErrTTLTooLong) || !strings.Contains(err.Error(), "ask for 5m0s or less, or raise profiles.default.ttl") {
		t.Errorf("ttl above the profile's: %v", err)
	}
	is, err := s.Issue("default", Request{TTL: time.Minute})
	if err != nil || is.ExpiresAt.Sub(is.IssuedAt) != time.Minute {
		t.Errorf("shorter ttl: %v %v", is, err)
	}
	// The appverify layout puts a phone in every token.
	if _, err := s.Issue("appverify", Request{XID: "tx"}); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "phone") {
		t.Errorf("appverify without a phone: %v", err)
	}
	// A ttl that would mint a token expired already: under a second, or
	// not past the profile's backdate (appverify: 10 s).
	for profile, ttl := range map[string]time.Duration{"default": 500 * time.Millisecond, "appverify": 10 * time.Second} {
		if is, err := s.Issue(profile, Request{TTL: ttl}); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s with ttl %s: %v, %v", profile, ttl, is, err)
		}
	}
	if is, err := s.Issue("appverify", Request{Phone: "+14155552671", TTL: 11 * time.Second}); err != nil || !is.ExpiresAt.After(testNow) {
		t.Errorf("appverify with ttl 11s: %v, %v", is, err)
	}
	if _, err := s.Issue("default", Request{Data: json.RawMessage(`{bad`)}); err == nil {
		t.Error("invalid data JSON accepted")
	}
}

// Every profile's tokens verify, with the key that signed them.
func TestIssueVerifyRoundTrip(t *testing.T) {
	s := testService(t)
	for _, p := range s.Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			is, err := s.Issue(p.Name, Request{Phone: "+14155552671", XID: "x", Data: json.RawMessage(`"d"`)})
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.Verify(is.Token)
			if err != nil {
				t.Fatal(err)
			}
			if v.Key != p.Key || v.Claims.JTI != is.JTI {
				t.Errorf("verified with %s, jti %s", v.Key.Kid(), v.Claims.JTI)
			}
		})
	}
}

// A token without exp verifies only when one of jwtd's exp-less (castlabs)
// profiles minted it, and lives that profile's ttl from its iat, as at
// /verifyToken.
func TestVerifyWithoutExp(t *testing.T) {
	s := testService(t)
	is, err := s.Issue("castlabs", Request{Data: json.RawMessage(`"d"`)})
	if err != nil {
		t.Fatal(err)
	}
	later := *s
	later.opts.Now = func() time.Time { return testNow.Add(time.Hour + 31*time.Second) } // ttl and leeway past
	if _, err := later.Verify(is.Token); Reason(err) != "expired" {
		t.Errorf("a castlabs token past its ttl: %v", err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	sign := func(key, claims string) string {
		input := b64([]byte(`{"alg":"HS512","typ":"JWT"}`)) + "." + b64([]byte(claims))
		m := hmac.New(sha512.New, []byte(key))
		m.Write([]byte(input))
		return input + "." + b64(m.Sum(nil))
	}
	if _, err := s.Verify(sign(castlabsSecret, `{"data":"d"}`)); Reason(err) != "malformed" || !strings.Contains(err.Error(), "exp") {
		t.Errorf("a castlabs-keyed token without iat: %v", err)
	}
	if _, err := s.Verify(sign(castlabsSecret, fmt.Sprintf(`{"iat":%d}`, testNow.Unix()))); err != nil {
		t.Errorf("a castlabs-keyed token with iat: %v", err)
	}
}

// Kid-less tokens verify against the kid-less profiles' keys, signing key
// first, then verify-only keys; a kid-bearing profile's key is not a
// candidate for them.
func TestKidlessCandidates(t *testing.T) {
	old, _ := keys.New("av0", "HS256", []byte("an-older-appverify-secret-0123456789"))
	cur, _ := keys.New("av1", "HS256", []byte(appverifySecret))
	hsKid, _ := keys.New("hs-kid", "HS256", []byte("a-kid-bearing-profile-secret-0123456789"))
	set, err := keys.NewSet(old, cur, hsKid)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewService(set, map[string]ProfileSpec{
		"appverify": {Key: "av1", VerifyKeys: []string{"av0"}, Layout: LayoutAppVerify, TTL: time.Minute},
		"native":    {Key: "hs-kid", TTL: time.Minute},
	}, Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	claims := validClaims()
	for _, tc := range []struct {
		name string
		key  *keys.Key
		want string
	}{
		{"current", cur, "av1"},
		{"rotated out, still verifies", old, "av0"},
		{"kid-bearing profile's key", hsKid, ""},
	} {
		v, err := s.Verify(attacktest.Signed(t, tc.key, `{"alg":"HS256","typ":"JWT"}`, claims))
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: verified", tc.name)
		case tc.want != "" && (err != nil || v.Key.Kid() != tc.want):
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if _, err := s.Verify(attacktest.Signed(t, hsKid, `{"alg":"HS256","kid":"hs-kid"}`, claims)); err != nil {
		t.Errorf("with its kid: %v", err)
	}
}

func TestNewServiceRefuses(t *testing.T) {
	k, _ := keys.New("k", "HS256", []byte(appverifySecret))
	pub := testService(t).Keys()
	es, _ := pub.Lookup("es1")
	vo, _ := keys.New("vo", "ES256", es.Public())
	set, _ := keys.NewSet(k, vo)
	for name, spec := range map[string]ProfileSpec{
		"missing key":          {Key: "nope"},
		"verify-only key":      {Key: "vo"},
		"bad layout":           {Key: "k", Layout: "jwe"},
		"data claim collision": {Key: "k", DataClaim: "exp"},
		"backdate beyond ttl":  {Key: "k", TTL: time.Minute, Backdate: time.Hour},
		"unknown verify key":   {Key: "k", VerifyKeys: []string{"gone"}},
	} {
		if _, err := NewService(set, map[string]ProfileSpec{"p": spec}, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewService(set, nil, Options{Leeway: 2 * time.Minute}); err == nil {
		t.Error("leeway above 60s accepted")
	}
}

// The seed document's own token verifies with its key at the JWS layer, and
// one changed character of the key or the token breaks it.
func TestSeed003Example(t *testing.T) {
	ex := seedexample.Load(t)
	check := func(tok, key string) error {
		j, err := Decode(tok)
		if err != nil {
			return err
		}
		k, err := keys.ForVerify([]byte(key), j.Header.Alg)
		if err != nil {
			return err
		}
		return j.VerifyWith(k)
	}
	if err := check(ex.Token, ex.Key); err != nil {
		t.Fatalf("seed token: %v", err)
	}
	if err := check(ex.Token, "b"+ex.Key[1:]); !errors.Is(err, ErrBadSignature) {
		t.Errorf("changed key: %v", err)
	}
	i := strings.Index(ex.Token, ".") + 5
	c := byte('A')
	if ex.Token[i] == 'A' {
		c = 'B'
	}
	changed := ex.Token[:i] + string(c) + ex.Token[i+1:]
	if err := check(changed, ex.Key); err == nil {
		t.Error("changed token verified")
	}
}

// Verifications with a caller's public key take a slot; when every slot is
// taken the next is refused with ErrBusy at once, and HMAC keys need none.
func TestVerifyWithKeySlots(t *testing.T) {
	s := testService(t)
	es, err := s.Issue("default", Request{})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := s.Keys().Lookup("es1")
	pub, _ := keys.MarshalPublicPEM(k.Public())
	cl, err := s.Issue("castlabs", Request{Data: json.RawMessage(`"x"`)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, recs := context.Background(), records{}
	recs.add(cl)
	recs.add(es)
	for range cap(s.callerKeySlots) {
		s.callerKeySlots <- struct{}{}
	}
	if _, err := s.VerifyWithKey(ctx, es.Token, pub, recs.lookup); !errors.Is(err, ErrBusy) {
		t.Errorf("all slots taken: %v, want ErrBusy", err)
	}
	if c, err := s.VerifyWithKey(ctx, cl.Token, []byte(castlabsSecret), recs.lookup); err != nil || c.Err != nil {
		t.Errorf("an HMAC key while the slots are taken: %v %v", err, c.Err)
	}
	<-s.callerKeySlots
	if c, err := s.VerifyWithKey(ctx, es.Token, pub, recs.lookup); err != nil || c.Err != nil {
		t.Errorf("a slot free: %v %v", err, c.Err)
	}
	if len(s.callerKeySlots) != cap(s.callerKeySlots)-1 {
		t.Error("the slot was not given back")
	}
}
