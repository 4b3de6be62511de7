package httpapi

import (
	"net/http"

	"github.com/jwtd/jwtd/internal/apikey"
)

// route is one pattern of the API and what serves it.
type route struct {
	pattern string
	handler http.Handler
}

// routeTable is the whole API. /openapi.json describes exactly these
// patterns (a test holds them together).
func (s *Server) routeTable() []route {
	rs := []route{
		// Seed 003 (castlabs). POST /verifyToken too: many clients and
		// proxies drop a GET's body.
		{"POST /generateToken", s.seed(s.handleGenerateToken)},
		{"GET /verifyToken", s.seed(s.handleVerifyToken)},
		{"POST /verifyToken", s.seed(s.handleVerifyToken)},

		// Seed 000 (TeleSign App Verify). Registered for every method so
		// that the 405 says exactly "Allow: GET".
		{"/v1/token/{phone}", s.problems(s.handlePhoneToken)},
		{"/v1/token/{phone}/{xid}", s.problems(s.handlePhoneToken)},

		// Native.
		{"POST /v1/tokens", s.require(apikey.ScopeIssue, s.handleIssue)},
		{"GET /v1/tokens/{xid}", s.require(apikey.ScopeAdmin, s.handleTransaction)},
		{"GET /v1/tokens", s.require(apikey.ScopeAdmin, s.handleListByPhone)},
		{"POST /v1/revoke", s.require(apikey.ScopeAdmin, s.handleRevoke)},
		{"POST /v1/introspect", s.require(apikey.ScopeIntrospect, s.handleIntrospect)},
		{"POST /v1/transactions/{xid}/outcome", s.require(apikey.ScopeOutcome, s.handleOutcome)},
		{"GET /v1/whoami", s.require("", s.handleWhoami)},
		{"GET /v1/activity", s.require(apikey.ScopeAdmin, s.handleActivity)},
		{"GET /v1/keys", s.require(apikey.ScopeAdmin, s.handleKeys)},
		{"POST /v1/keys/rotate", s.require(apikey.ScopeAdmin, s.handleRotate)},
		{"GET /v1/audit", s.require(apikey.ScopeAdmin, s.handleAudit)},

		{"GET /.well-known/jwks.json", http.HandlerFunc(s.handleJWKS)},
		{"GET /.well-known/openid-configuration", s.problems(s.handleDiscovery)},
		{"GET /.well-known/openid-configuration/{issuer_path...}", s.problems(s.handleDiscovery)},
		{"GET /.well-known/oauth-authorization-server", s.problems(s.handleDiscovery)},
		{"GET /.well-known/oauth-authorization-server/{issuer_path...}", s.problems(s.handleDiscovery)},
		{"GET /healthz", http.HandlerFunc(handleHealthz)},
		{"GET /readyz", s.problems(s.handleReadyz)},
		{"GET /openapi.json", http.HandlerFunc(handleOpenAPI)},

		// The console: static files, and the way to it.
		{"GET /{$}", http.RedirectHandler("/console/", http.StatusFound)},
		{"GET /console/", consoleHandler()},
	}
	if s.Metrics != nil && !s.opts.MetricsElsewhere {
		rs = append(rs, route{"GET /metrics", s.Metrics.Handler()})
	}
	return rs
}

// routes maps the route table on mux.
func (s *Server) routes(mux *http.ServeMux) {
	for _, r := range s.routeTable() {
		mux.Handle(r.pattern, r.handler)
	}
}
