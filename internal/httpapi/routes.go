package httpapi

import (
	"net/http"

	"github.com/jwtd/jwtd/internal/apikey"
)

// routes maps the whole API.
func (s *Server) routes(mux *http.ServeMux) {
	// Seed 003 (castlabs). POST /verifyToken too: many clients and proxies
	// drop a GET's body.
	mux.Handle("POST /generateToken", s.seed(s.handleGenerateToken))
	mux.Handle("GET /verifyToken", s.seed(s.handleVerifyToken))
	mux.Handle("POST /verifyToken", s.seed(s.handleVerifyToken))

	// Seed 000 (TeleSign App Verify). Registered for every method so that
	// the 405 says exactly "Allow: GET".
	mux.Handle("/v1/token/{phone}", s.problems(s.handlePhoneToken))
	mux.Handle("/v1/token/{phone}/{xid}", s.problems(s.handlePhoneToken))

	// Native.
	mux.Handle("POST /v1/tokens", s.require(apikey.ScopeIssue, s.handleIssue))
	mux.Handle("GET /v1/tokens/{xid}", s.require(apikey.ScopeAdmin, s.handleTransaction))
	mux.Handle("GET /v1/tokens", s.require(apikey.ScopeAdmin, s.handleListByPhone))
	mux.Handle("POST /v1/revoke", s.require(apikey.ScopeAdmin, s.handleRevoke))
	mux.Handle("POST /v1/introspect", s.require(apikey.ScopeIntrospect, s.handleIntrospect))
	mux.Handle("POST /v1/transactions/{xid}/outcome", s.require(apikey.ScopeOutcome, s.handleOutcome))

	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.Handle("GET /readyz", s.problems(s.handleReadyz))
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics.Handler())
	}
}
