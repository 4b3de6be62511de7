package httpapi

import "net/http"

// routes maps the whole API.
func (s *Server) routes(mux *http.ServeMux) {
	// Seed 003 (castlabs). POST /verifyToken too: many clients and proxies
	// drop a GET's body.
	mux.Handle("POST /generateToken", s.handleGenerateToken())
	mux.Handle("GET /verifyToken", s.handleVerifyToken())
	mux.Handle("POST /verifyToken", s.handleVerifyToken())

	mux.Handle("GET /.well-known/jwks.json", s.handleJWKS())
	mux.Handle("GET /healthz", s.handleHealthz())
}
