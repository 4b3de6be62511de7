package token_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/jwtd/jwtd/internal/token"
	"github.com/jwtd/jwtd/internal/token/attacktest"
)

// TestAttackCorpus runs every attack class of
// research/jose-libraries-and-attacks.md through Service.Verify, each with
// the reason it must be rejected for.
func TestAttackCorpus(t *testing.T) {
	s, now := token.NewTestService(t)
	es1, _ := s.Keys().Lookup("es1")
	rs1, _ := s.Keys().Lookup("rs1")

	// Listener for jku/x5u: it must never be asked anything.
	var fetched atomic.Int32
	listener := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fetched.Add(1) }))
	defer listener.Close()

	for _, tc := range attacktest.Corpus(t, attacktest.Setup{ES: es1, RS: rs1, Now: now, Listener: listener.URL}) {
		t.Run(tc.Class+"/"+tc.Name, func(t *testing.T) {
			_, err := s.Verify(tc.Token)
			if tc.Reason == "" {
				if err != nil {
					t.Fatalf("rejected a valid token: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if got := token.Reason(err); got != tc.Reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.Reason)
			}
		})
	}
	if n := fetched.Load(); n != 0 {
		t.Errorf("the jku/x5u listener was asked %d times", n)
	}
}
