package httpapi

import (
	"net/http"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/record"
)

// outcomeJSON is an outcome as the API shows it.
type outcomeJSON struct {
	Status      string    `json:"status"`
	Code        int       `json:"code,omitzero"`
	Description string    `json:"description,omitempty"`
	UpdatedOn   time.Time `json:"updated_on"`
	Source      string    `json:"source,omitempty"`
	RecordedAt  time.Time `json:"recorded_at"`
}

// summaryJSON is where a transaction stands: its latest outcome.
type summaryJSON struct {
	Status    string    `json:"status"`
	UpdatedOn time.Time `json:"updated_on"`
}

func toOutcomeJSON(o record.Outcome) outcomeJSON {
	return outcomeJSON{Status: string(o.Status), Code: o.Code, Description: o.Description,
		UpdatedOn: o.UpdatedOn, Source: o.Source, RecordedAt: o.Recorded}
}

// handleOutcome is POST /v1/transactions/{xid}/outcome: what happened in a
// transaction after its token, as a verification callback or the
// customer's backend reports it (record.ReportOutcome).
func (s *Server) handleOutcome(w http.ResponseWriter, r *http.Request) error {
	xid := r.PathValue("xid")
	var req struct {
		Status      string     `json:"status"`
		Code        int        `json:"code"`
		Description string     `json:"description"`
		UpdatedOn   *time.Time `json:"updated_on"` // RFC 3339
		Source      string     `json:"source"`
	}
	if err := s.readJSON(r, &req); err != nil {
		return err
	}
	o := record.Outcome{XID: xid, Status: record.OutcomeStatus(req.Status), Code: req.Code,
		Description: req.Description, Source: req.Source}
	if req.UpdatedOn != nil {
		o.UpdatedOn = *req.UpdatedOn
	}
	if err := s.auditReady(); err != nil {
		return err
	}
	if err := record.ReportOutcome(r.Context(), s.Store, &o, s.Now(), s.Tokens().Leeway()); err != nil {
		return err
	}
	if err := s.auditEntry(r, audit.Entry{Action: audit.ActionOutcome, Target: "xid:" + xid, Detail: "status=" + string(o.Status)}); err != nil {
		return err
	}
	s.Metrics.Outcome(string(o.Status))
	return writeJSON(w, http.StatusCreated, struct {
		XID string `json:"xid"`
		outcomeJSON
	}{xid, toOutcomeJSON(o)})
}
