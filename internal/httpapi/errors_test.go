package httpapi

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/jwtd/jwtd/internal/token"
)

// Capacity refusals are 503 with Retry-After, in the seed's body on its
// routes, and not logged as the server's fault.
func TestBusyIs503(t *testing.T) {
	err := fmt.Errorf("%w: 4 running", token.ErrBusy)
	e, fault := errorFor(err)
	if e.Status != 503 || fault {
		t.Fatalf("%+v, fault %v", e, fault)
	}
	s := &Server{}
	w := httptest.NewRecorder()
	writeSeedError(w, s.errorResponse(w, httptest.NewRequest("POST", "/verifyToken", nil), err))
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || w.Body.String() != `{"status":503,"description":"Too busy"}`+"\n" {
		t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
	}
}
