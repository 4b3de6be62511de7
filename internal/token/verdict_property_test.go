package token

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// world is jwtd over time for the verdict property: castlabs (HMAC,
// kid-less, no exp) and default (ES256, kid) profiles whose keys rotate
// and are deleted, records that are revoked and purged, a clock that
// steps, and every token anyone made: minted, or forged with one of
// jwtd's secrets.
type world struct {
	t        *testing.T
	rng      *rand.Rand
	now      time.Time
	n        int
	castlabs []*keys.Key // current last; older ones verify until deleted
	def      []*keys.Key
	known    []keys.KnownKey
	recs     records
	tokens   []held
	svc      *Service
}

// held is a token and the key a /verifyToken caller would send with it.
type held struct {
	tok    string
	key    []byte
	forged bool
}

const castlabsTTL = time.Minute

func (w *world) newKey(alg string) *keys.Key {
	w.n++
	var k *keys.Key
	var err error
	if alg == "HS512" {
		k, err = keys.New(fmt.Sprintf("cl%d", w.n), alg, []byte(strings.Repeat(string(rune('a'+w.n%26)), 64)+fmt.Sprint(w.n)))
	} else {
		material, _ := keys.Generate(alg)
		k, err = keys.New(fmt.Sprintf("es%d", w.n), alg, material)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return k
}

// build makes the service of the keys now, with the history of every key
// it ever had, as the keys runtime does.
func (w *world) build() {
	set, err := keys.NewSet(append(append([]*keys.Key{}, w.castlabs...), w.def...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	kids := func(ks []*keys.Key) (out []string) {
		for _, k := range ks[:len(ks)-1] {
			out = append(out, k.Kid())
		}
		return out
	}
	svc, err := NewService(set, map[string]ProfileSpec{
		"castlabs": {Key: w.castlabs[len(w.castlabs)-1].Kid(), VerifyKeys: kids(w.castlabs), Layout: LayoutCastlabs, TTL: castlabsTTL},
		"default":  {Key: w.def[len(w.def)-1].Kid(), VerifyKeys: kids(w.def), TTL: time.Minute},
	}, Options{Now: func() time.Time { return w.now }, Known: w.known, Leeway: 5 * time.Second})
	if err != nil {
		w.t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range w.known {
		have[k.Fingerprint] = true
	}
	for _, k := range svc.KnownKeys() {
		if !have[k.Fingerprint] {
			w.known = append(w.known, k)
		}
	}
	w.svc = svc
}

func (w *world) step() {
	switch op := w.rng.IntN(10); {
	case op < 3: // mint
		profile, key := "castlabs", []byte(nil)
		if w.rng.IntN(2) == 0 {
			profile = "default"
		}
		is, err := w.svc.Issue(profile, Request{Data: json.RawMessage(`"d"`)})
		if err != nil {
			w.t.Fatal(err)
		}
		w.recs.add(is)
		if profile == "castlabs" {
			key = w.castlabs[len(w.castlabs)-1].Secret()
		} else {
			k := w.def[len(w.def)-1]
			key, _ = keys.MarshalPublicPEM(k.Public())
		}
		w.tokens = append(w.tokens, held{is.Token, key, false})
	case op == 3 && len(w.tokens) > 0: // revoke
		c := claimsOfToken(w.tokens[w.rng.IntN(len(w.tokens))].tok)
		if r, ok := w.recs[c]; ok {
			r.revoked = true
		}
	case op == 4: // rotate both profiles
		w.castlabs = append(w.castlabs, w.newKey("HS512"))
		w.def = append(w.def, w.newKey("ES256"))
		w.build()
	case op == 5: // delete the oldest retired keys
		if len(w.castlabs) > 1 {
			w.castlabs = w.castlabs[1:]
		}
		if len(w.def) > 1 {
			w.def = w.def[1:]
		}
		w.build()
	case op == 6: // purge records past expiry
		for jti, r := range w.recs {
			if r.expires.Before(w.now.Add(-10 * time.Second)) {
				delete(w.recs, jti)
			}
		}
	case op == 7: // forge, with a castlabs secret jwtd has or had
		k := w.castlabs[w.rng.IntN(len(w.castlabs))]
		jti := "made-up"
		if len(w.tokens) > 0 && w.rng.IntN(2) == 0 {
			jti = claimsOfToken(w.tokens[w.rng.IntN(len(w.tokens))].tok)
		}
		iat := w.now.Add(-time.Duration(w.rng.IntN(120)) * time.Second).Unix()
		tok := attacktest.Signed(w.t, k, `{"typ":"JWT","alg":"HS512"}`, fmt.Sprintf(`{"iat":%d,"jti":%q,"payload":{"data":"forged"}}`, iat, jti))
		w.tokens = append(w.tokens, held{tok, k.Secret(), true})
	default: // the clock steps
		w.now = w.now.Add(time.Duration(w.rng.IntN(40)) * time.Second)
	}
}

func claimsOfToken(tok string) string {
	j, err := Decode(tok)
	if err != nil {
		return ""
	}
	var c struct{ JTI string }
	_ = json.Unmarshal(j.Payload, &c)
	return c.JTI
}

// For random sequences of mint, revoke, rotate, delete, purge, forge and
// clock steps, introspection (and so jwtd token verify and the console,
// which introspect) and /verifyToken with the token's key agree on every
// token: active on both or on neither, for the same reason. The one
// exception is a token that no key of the set verifies and that is not,
// to the byte, a token jwtd recorded: introspection has nothing to check
// it with and answers bad_signature (or key_retired, by its kid), where
// the caller's key shows it is expired, forged or unrecorded.
func TestVerdictPathsAgree(t *testing.T) {
	for seed := range uint64(12) {
		w := &world{t: t, rng: rand.New(rand.NewPCG(seed, 7)), now: testNow, recs: records{}}
		w.castlabs = []*keys.Key{w.newKey("HS512")}
		w.def = []*keys.Key{w.newKey("ES256")}
		w.build()
		ctx := context.Background()
		for range 100 {
			w.step()
			for i, h := range w.tokens {
				_, ierr := w.svc.Introspect(ctx, h.tok, w.recs.lookup)
				c, err := w.svc.VerifyWithKey(ctx, h.tok, h.key, w.recs.lookup)
				if err != nil {
					t.Fatalf("seed %d token %d: VerifyWithKey: %v", seed, i, err)
				}
				in, wk := reasonOf(ierr), reasonOf(c.Err)
				// And the oracle: a forgery, or a token whose record was
				// revoked, is never active on either path.
				r, recorded := w.recs[claimsOfToken(h.tok)]
				if (h.forged || recorded && r.revoked) && (in == "active" || wk == "active") {
					t.Fatalf("seed %d token %d (forged %v): introspect %s, verifyToken %s", seed, i, h.forged, in, wk)
				}
				exact := false
				if r, ok := w.recs[claimsOfToken(h.tok)]; ok {
					exact = r.sha256 == HashToken(h.tok)
				}
				if in == wk || !exact && (in == "bad_signature" || in == "key_retired") && wk != "active" {
					continue
				}
				t.Fatalf("seed %d token %d at %s: introspect %s (%v), verifyToken %s (%v)", seed, i, w.now.Sub(testNow), in, ierr, wk, c.Err)
			}
		}
	}
}

func reasonOf(err error) string {
	if err == nil {
		return "active"
	}
	return Reason(err)
}
