package httpapi

import (
	"net/http"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/mint"
)

// handlePhoneToken is seed 000's GET /v1/token/{phone}[/{xid}]: the
// appverify profile's token as text/plain, recorded with phone and XID (a
// UUID when the caller gives none).
func (s *Server) handlePhoneToken(w http.ResponseWriter, r *http.Request) error {
	w.Header()["Allow"] = []string{"GET"}
	if r.Method != http.MethodGet {
		return errGETOnly
	}
	// With seed000.require_caller, only a caller with an API key of scope
	// issue, or a verified client certificate, mints here: an anonymous
	// caller can then neither bind an unused XID to a phone nor learn,
	// from 409 or 200, which phone an XID belongs to.
	// A mint with an API key is audited as POST /v1/tokens' are; an
	// anonymous one is accounted for by its record.
	if s.opts.Seed000RequireCaller && !hasClientCert(r) {
		var err error
		if r, err = s.authenticate(r, apikey.ScopeIssue); err != nil {
			return err
		}
		// With audit.required, a keyed mint whose entry cannot be
		// written is refused before it counts against a limit or binds
		// the XID, as POST /v1/tokens refuses it.
		if s.actor(r) != nil {
			if err := s.auditReady(); err != nil {
				return err
			}
		}
	}
	minted, err := s.Minter.Mint(r.Context(), mint.Request{
		Profile: "appverify", Phone: r.PathValue("phone"), XID: r.PathValue("xid"),
		ClientIP: s.ClientIP.Resolve(r), APIKey: apiKeyName(r.Context()), Limits: "token", Audit: s.actor(r),
	})
	if err != nil {
		return err
	}
	setRateLimitHeaders(w, minted.Limit)
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["Cache-Control"] = []string{"no-store"}
	_, _ = w.Write([]byte(minted.Token))
	return nil
}
