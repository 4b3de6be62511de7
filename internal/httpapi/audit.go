package httpapi

import (
	"errors"
	"net/http"
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
// without a trail, and for a request without an API key (an anonymous
// seed token, which its record accounts for).
func (s *Server) actor(r *http.Request) *audit.Entry {
	if s.Audit == nil || apiKeyName(r.Context()) == "" {
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

// refused counts an authentication refused by authenticate.
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
		return errNoAuditTrail
	}
	q := r.URL.Query()
	aq := audit.Query{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"), After: q.Get("cursor"), Limit: 100}
	for _, t := range []struct {
		name string
		dst  *time.Time
		bad  error
	}{{"since", &aq.Since, errSince}, {"until", &aq.Until, errUntil}} {
		if v := q.Get(t.name); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return t.bad
			}
			*t.dst = at
		}
	}
	var err error
	if aq.Limit, err = limitParam(q, 100); err != nil {
		return err
	}
	page, err := audit.List(r.Context(), s.AuditStore, aq)
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
