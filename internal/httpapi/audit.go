package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
)

// auditEntry records an action of the request: its API key as the actor,
// its request ID and client address. With a required trail, an entry not
// written is the request's error (503).
func (s *Server) auditEntry(r *http.Request, e audit.Entry) error {
	if s.Audit == nil {
		return nil
	}
	if err := s.Audit.Record(r.Context(), s.who(r, e)); err != nil {
		return errAuditNotWritten
	}
	return nil
}

// actor is the start of the entry of an action the domain audits itself
// (a keyed mint, written with its record): who and from where; nil
// without a trail.
func (s *Server) actor(r *http.Request) *audit.Entry {
	if s.Audit == nil {
		return nil
	}
	e := s.who(r, audit.Entry{})
	return &e
}

// who fills in e's actor (the request's API key), request ID and client
// address.
func (s *Server) who(r *http.Request, e audit.Entry) audit.Entry {
	e.Actor = apiKeyName(r.Context())
	e.RequestID = RequestID(r.Context())
	e.ClientIP = s.ClientIP.Resolve(r).String()
	return e
}

// auditReady refuses an action before it is taken while a required
// trail cannot write.
func (s *Server) auditReady() error {
	if s.Audit.Required() && s.Audit.Failing() != nil {
		return errAuditNotWritten
	}
	return nil
}

var errAuditNotWritten = &apiError{Status: http.StatusServiceUnavailable, Title: "Audit trail unavailable",
	Detail: "audit.required is set and the audit entry of this action cannot be written to the store; try again when the store answers"}

// refused counts an authentication refused by require.
func (s *Server) refused(r *http.Request, name string, err error) {
	if s.Refusals == nil {
		return
	}
	switch {
	case errors.Is(err, apikey.ErrMissing):
		name = "none"
	case name == "":
		name = "unknown"
	}
	s.Refusals.Add(name, s.ClientIP.Resolve(r).String())
}

// handleAudit is GET /v1/audit?actor=&action=&target=&since=&until=&limit=&cursor=:
// entries newest first.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) error {
	if s.AuditStore == nil {
		return &apiError{Status: http.StatusNotFound, Title: "No audit trail", Detail: "this server keeps no audit trail"}
	}
	q := r.URL.Query()
	aq := audit.Query{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), After: q.Get("cursor"), Limit: 100}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &aq.Since}, {"until", &aq.Until}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return badRequest("Invalid "+t.name, t.name+" is an RFC 3339 time such as 2026-12-01T00:00:00Z")
			}
			*t.dst = at
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			return badRequest("Invalid limit", "limit is 1 to 500")
		}
		aq.Limit = n
	}
	page, err := audit.List(r.Context(), s.AuditStore, aq)
	if errors.Is(err, audit.ErrInvalidCursor) {
		return badRequest("Invalid cursor", err.Error())
	}
	if err != nil {
		return err
	}
	if page.Entries == nil {
		page.Entries = []audit.Entry{}
	}
	return writeJSON(w, http.StatusOK, struct {
		Entries    []audit.Entry `json:"entries"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{page.Entries, page.Next})
}
