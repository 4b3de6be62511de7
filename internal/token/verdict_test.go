package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// verdicts asks both verification paths about one token: Introspect (with
// jwtd's keys) and VerifyWithKey with key, and returns their reasons.
func verdicts(t *testing.T, s *Service, recs records, tok string, key []byte) (introspect, withKey string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.Introspect(ctx, tok, recs.lookup)
	introspect = "active"
	if err != nil {
		introspect = Reason(err)
	}
	c, err := s.VerifyWithKey(ctx, tok, key, recs.lookup)
	if err != nil {
		t.Fatalf("VerifyWithKey: %v", err)
	}
	withKey = "active"
	if c.Err != nil {
		withKey = Reason(c.Err)
	}
	return introspect, withKey
}

// A token that carries a recorded jti and is not the recorded token is
// forged, on both paths, whoever signed it with jwtd's secret.
func TestVerdictForged(t *testing.T) {
	s, recs := testService(t), records{}
	is, err := s.Issue("castlabs", Request{Data: json.RawMessage(`"alice: USER"`)})
	if err != nil {
		t.Fatal(err)
	}
	recs.add(is)
	if in, wk := verdicts(t, s, recs, is.Token, []byte(castlabsSecret)); in != "active" || wk != "active" {
		t.Fatalf("the minted token: %s, %s", in, wk)
	}
	k, _ := s.Keys().Lookup("cl1")
	claims := fmt.Sprintf(`{"iat":%d,"jti":%q,"payload":{"data":"alice: ADMIN"},"exp":4102444800}`, testNow.Unix(), is.JTI)
	forged := attacktest.Signed(t, k, `{"alg":"HS512","typ":"JWT"}`, claims)
	if in, wk := verdicts(t, s, recs, forged, []byte(castlabsSecret)); in != "forged" || wk != "forged" {
		t.Errorf("re-signed claims with a real jti: introspect %s, verifyToken %s; want forged", in, wk)
	}
	// A made-up jti has no record: unrecorded.
	madeUp := attacktest.Signed(t, k, `{"alg":"HS512","typ":"JWT"}`, strings.Replace(claims, is.JTI, "0123", 1))
	if in, wk := verdicts(t, s, recs, madeUp, []byte(castlabsSecret)); in != "unrecorded" || wk != "unrecorded" {
		t.Errorf("a made-up jti: %s, %s; want unrecorded", in, wk)
	}
}

// An HMAC secret padded with zero bytes, or sent as a JWK, is the same
// HMAC key: jwtd's rules hold it as they hold the secret.
func TestVerdictPaddedSecret(t *testing.T) {
	s, recs := testService(t), records{}
	is, err := s.Issue("appverify", Request{Phone: "+14155552671", XID: "x1"})
	if err != nil {
		t.Fatal(err)
	}
	recs.add(is)
	recs[is.JTI].revoked = true
	padded := append([]byte(appverifySecret), make([]byte, 20)...)
	jwk := fmt.Sprintf(`{"kty":"oct","alg":"HS256","k":%q}`, base64.RawURLEncoding.EncodeToString(padded))
	for name, key := range map[string][]byte{"the secret": []byte(appverifySecret), "padded": padded, "a padded JWK": []byte(jwk)} {
		if _, wk := verdicts(t, s, recs, is.Token, key); wk != "revoked" {
			t.Errorf("%s: %s, want revoked", name, wk)
		}
	}
}

// A token of a key jwtd had and no longer has is held to jwtd's rules, by
// the key history: expired, revoked, forged where that holds, else
// key_retired; never active.
func TestVerdictDeletedKey(t *testing.T) {
	old := testService(t)
	oldKey, _ := old.Keys().Lookup("cl1")
	esKey, _ := old.Keys().Lookup("es1")
	recs := records{}
	live, _ := old.Issue("castlabs", Request{Data: json.RawMessage(`"a"`)})
	revoked, _ := old.Issue("castlabs", Request{Data: json.RawMessage(`"b"`)})
	es, _ := old.Issue("default", Request{})
	for _, is := range []*Issued{live, revoked, es} {
		recs.add(is)
	}
	recs[revoked.JTI].revoked = true
	expiredClaims := fmt.Sprintf(`{"iat":%d,"jti":"gone","payload":{"data":"c"}}`, testNow.Add(-2*time.Hour).Unix())
	expired := attacktest.Signed(t, oldKey, `{"alg":"HS512","typ":"JWT"}`, expiredClaims)

	// The castlabs and default profiles moved to new keys; the old ones
	// are only in the history.
	newCL, _ := keys.New("cl2", "HS512", []byte(strings.Repeat("n", 64)))
	newES, _ := keys.New("es2", "HS256", []byte(strings.Repeat("e", 32)))
	set, _ := keys.NewSet(newCL, newES)
	var known []keys.KnownKey
	for _, k := range []*keys.Key{oldKey, esKey} {
		for _, fp := range keys.Fingerprints(k) {
			known = append(known, keys.KnownKey{Fingerprint: fp, Kid: k.Kid(), Alg: k.Alg(), Recorded: true, Lifetime: map[string]time.Duration{"cl1": time.Hour}[k.Kid()]})
		}
	}
	s, err := NewService(set, map[string]ProfileSpec{
		"castlabs": {Key: "cl2", Layout: LayoutCastlabs, TTL: time.Hour},
		"default":  {Key: "es2", TTL: time.Minute},
	}, Options{Now: func() time.Time { return testNow }, Known: known})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, tc := range map[string]struct {
		tok, want string
	}{
		"live":    {live.Token, "key_retired"},
		"revoked": {revoked.Token, "revoked"},
		"expired": {expired, "expired"},
	} {
		c, err := s.VerifyWithKey(ctx, tc.tok, []byte(castlabsSecret), recs.lookup)
		if err != nil || Reason(c.Err) != tc.want || c.Err == nil {
			t.Errorf("%s with the old secret: %v %v, want %s", name, err, c.Err, tc.want)
		}
	}
	// Introspection pins the kid: a kid of a key jwtd had is key_retired.
	if _, err := s.Introspect(ctx, es.Token, recs.lookup); Reason(err) != "key_retired" {
		t.Errorf("introspecting a token of a deleted kid: %v", err)
	}
	pub, _ := keys.MarshalPublicPEM(esKey.Public())
	if c, err := s.VerifyWithKey(ctx, es.Token, pub, recs.lookup); err != nil || Reason(c.Err) != "key_retired" {
		t.Errorf("a deleted ES256 key's public key: %v %v", err, c.Err)
	}
}

// A caller's key that was never jwtd's says nothing of jwtd's records: no
// record is read, and a good signature is the answer.
func TestVerdictForeignKeyReadsNoRecord(t *testing.T) {
	s := testService(t)
	secret := []byte(strings.Repeat("f", 64))
	k, _ := keys.New("", "HS512", secret)
	claims := fmt.Sprintf(`{"iat":%d,"exp":%d,"jti":"j"}`, testNow.Unix(), testNow.Unix()+60)
	tok := attacktest.Signed(t, k, `{"alg":"HS512"}`, claims)
	c, err := s.VerifyWithKey(context.Background(), tok, secret, func(context.Context, string) (*record.Record, error) {
		t.Error("a record was read for a foreign key's token")
		return nil, record.ErrNotFound
	})
	if err != nil || c.Err != nil {
		t.Errorf("foreign key: %v %v", err, c.Err)
	}
}

// A record that cannot be read is no verdict: the caller answers 503.
func TestVerdictRecordUnreadable(t *testing.T) {
	s := testService(t)
	is, _ := s.Issue("castlabs", Request{Data: json.RawMessage(`"a"`)})
	down := errors.New("store down")
	fail := func(context.Context, string) (*record.Record, error) { return nil, down }
	if _, err := s.VerifyWithKey(context.Background(), is.Token, []byte(castlabsSecret), fail); !errors.Is(err, down) {
		t.Errorf("VerifyWithKey with the store down: %v", err)
	}
	if _, err := s.Introspect(context.Background(), is.Token, fail); !errors.Is(err, down) || IsReason(err) {
		t.Errorf("Introspect with the store down: %v", err)
	}
}

// Keys of jwtd's that share one material hold their tokens to the
// strictest of their rules; jwtd's secret under another algorithm, or a
// token of an exp-less profile's key without iat, is no token of jwtd's.
func TestVerdictSharedMaterialAndAlgorithms(t *testing.T) {
	cl, _ := keys.New("cl1", "HS512", []byte(castlabsSecret))
	twin, _ := keys.New("twin", "HS512", []byte(castlabsSecret))
	set, _ := keys.NewSet(cl, twin)
	no := false
	for _, order := range [][2]string{{"castlabs", "other"}, {"other", "castlabs"}} {
		s, err := NewService(set, map[string]ProfileSpec{
			order[0]: map[string]ProfileSpec{"castlabs": {Key: "cl1", Layout: LayoutCastlabs, TTL: time.Hour}, "other": {Key: "twin", TTL: time.Minute, Record: &no}}[order[0]],
			order[1]: map[string]ProfileSpec{"castlabs": {Key: "cl1", Layout: LayoutCastlabs, TTL: time.Hour}, "other": {Key: "twin", TTL: time.Minute, Record: &no}}[order[1]],
		}, Options{Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		recs := records{}
		is, _ := s.Issue("castlabs", Request{Data: json.RawMessage(`"a"`)})
		recs.add(is)
		later := *s
		later.opts.Now = func() time.Time { return testNow.Add(3 * time.Hour) }
		if c, err := later.VerifyWithKey(context.Background(), is.Token, []byte(castlabsSecret), recs.lookup); err != nil || Reason(c.Err) != "expired" || c.Err == nil {
			t.Errorf("%v: a castlabs token 3h old with a secret two kids share: %v %v, want expired", order, err, c.Err)
		}
	}
	s, recs := testService(t), records{}
	noIat := attacktest.Signed(t, mustKey(t, "HS512", castlabsSecret), `{"typ":"JWT","alg":"HS512"}`, `{"jti":"x","payload":{"data":"d"}}`)
	otherAlg := attacktest.Signed(t, mustKey(t, "HS256", castlabsSecret), `{"typ":"JWT","alg":"HS256"}`, fmt.Sprintf(`{"iat":%d,"exp":%d}`, testNow.Unix(), testNow.Unix()+60))
	for name, tc := range map[string]struct{ tok, want string }{
		"no exp, no iat":            {noIat, "malformed"},
		"castlabs secret for HS256": {otherAlg, "bad_signature"},
	} {
		c, err := s.VerifyWithKey(context.Background(), tc.tok, []byte(castlabsSecret), recs.lookup)
		if err != nil || c.Err == nil || Reason(c.Err) != tc.want {
			t.Errorf("%s: %v %v, want %s", name, err, c.Err, tc.want)
		}
	}
}

func mustKey(t *testing.T, alg, secret string) *keys.Key {
	t.Helper()
	k, err := keys.New("", alg, []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
