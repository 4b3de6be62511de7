package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token"
)

// mint issues a token with the profile and, when the profile records,
// durably records it before returning: a token is handed out only after its
// record is committed. The store refuses an XID that belongs to another
// phone atomically with the insert; the token signed for it is dropped.
func (s *Server) mint(r *http.Request, profile string, req token.Request) (*token.Issued, error) {
	svc := s.tokens()
	p, ok := svc.Profile(profile)
	if !ok {
		return nil, fmt.Errorf("%w %q", token.ErrUnknownProfile, profile)
	}
	issued, err := svc.Issue(profile, req)
	if err != nil {
		return nil, err
	}
	if !p.Record {
		s.metrics.Issued(profile)
		return issued, nil
	}
	rec := &record.Record{
		JTI: issued.JTI, Profile: issued.Profile, Kid: issued.Kid, Alg: issued.Alg,
		XID: req.XID, Phone: req.Phone, Subject: req.Subject,
		Issued: issued.MintedAt, Expires: issued.ExpiresAt,
		ClientIP: s.clientIP.Resolve(r).String(), TokenSHA256: record.HashToken(issued.Token),
	}
	if p.StoreToken {
		rec.TokenText = issued.Token
	}
	if err := s.store.Insert(r.Context(), rec); err != nil {
		return nil, err
	}
	s.metrics.Issued(profile)
	return issued, nil
}

// httpError maps an error to the status and title a client sees, and
// whether it is the server's fault (to be logged). The one place errors
// become HTTP statuses.
func httpError(err error) (status int, title string, serverFault bool) {
	switch {
	case errors.Is(err, record.ErrXIDConflict):
		return http.StatusConflict, "The XID belongs to another phone number", false
	case errors.Is(err, token.ErrUnknownProfile):
		return http.StatusBadRequest, "Unknown profile", false
	case errors.Is(err, token.ErrTTLTooLong):
		return http.StatusBadRequest, "ttl exceeds the profile's", false
	case errors.Is(err, record.ErrBadCursor):
		return http.StatusBadRequest, "Invalid cursor", false
	case errors.Is(err, record.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "Record store unavailable", true
	case errors.Is(err, ratelimit.ErrBackend):
		return http.StatusServiceUnavailable, "Rate limit unavailable", true
	case errors.Is(err, context.Canceled):
		return 499, "Client closed the request", false
	}
	return http.StatusInternalServerError, "Internal error", true
}

// writeError writes err as problem+json and logs what the client does not see.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, title, fault := httpError(err)
	if fault {
		s.log.Error(title, "request_id", RequestID(r.Context()), "route", r.Pattern, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	detail := ""
	if !fault {
		detail = err.Error()
	}
	writeProblem(w, status, title, detail)
}
