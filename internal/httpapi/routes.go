package httpapi

import (
	"net/http"

	"github.com/jwtd/jwtd/internal/apikey"
)

// routes maps the whole API.
func (s *Server) routes(mux *http.ServeMux) {
	// Seed 003 (castlabs). POST /verifyToken too: many clients and proxies
	// drop a GET's body.
	mux.Handle("POST /generateToken", s.handleGenerateToken())
	mux.Handle("GET /verifyToken", s.handleVerifyToken())
	mux.Handle("POST /verifyToken", s.handleVerifyToken())

	// Seed 000 (TeleSign App Verify). Registered for every method so that
	// the 405 says exactly "Allow: GET".
	mux.Handle("/v1/token/{phone}", s.handlePhoneToken())
	mux.Handle("/v1/token/{phone}/{xid}", s.handlePhoneToken())

	// Native.
	mux.Handle("POST /v1/tokens", s.require(apikey.ScopeIssue, s.handleIssue()))
	mux.Handle("GET /v1/tokens/{xid}", s.require(apikey.ScopeAdmin, s.handleTransaction()))
	mux.Handle("GET /v1/tokens", s.require(apikey.ScopeAdmin, s.handleListByPhone()))
	mux.Handle("POST /v1/revoke", s.require(apikey.ScopeAdmin, s.handleRevoke()))
	mux.Handle("POST /v1/introspect", s.require(apikey.ScopeIntrospect, s.handleIntrospect()))

	mux.Handle("GET /.well-known/jwks.json", s.handleJWKS())
	mux.Handle("GET /healthz", s.handleHealthz())
	mux.Handle("GET /readyz", s.handleReadyz())
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
}
