package httpapi

import (
	"net/http"
	"strconv"
)

// jwksMaxAge is how long verifiers may cache the JWKS. A key is published
// (publish_only) at least this long before it signs.
const jwksMaxAge = 300

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
	writeBody(w, http.StatusOK, "application/json", s.Tokens().JWKS())
}

func handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeBody(w, http.StatusOK, "application/json", []byte("{\"status\":\"ok\"}\n"))
}
