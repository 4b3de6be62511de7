package httpapi

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jwtd/jwtd/internal/audit"
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

// An audit listing that meets a row changed in the store answers what is
// broken and where (the server's fault, logged), not a bare internal
// error.
func TestBrokenAuditTrail(t *testing.T) {
	err := fmt.Errorf("listing: %w", &audit.Break{Chain: "node-a", Seq: 7, Reason: "the entry in its row (column more) is not six strings as jwtd writes it (changed in the store)"})
	e, fault := errorFor(err)
	if e.Status != 500 || !fault || e.Title != "Audit trail broken" || !strings.Contains(e.Detail, `"node-a" broken at seq 7`) ||
		!strings.Contains(e.Detail, "jwtd audit verify") {
		t.Errorf("%+v, fault %v", e, fault)
	}
}
