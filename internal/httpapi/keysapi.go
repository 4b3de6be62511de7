package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/keys"
)

// Keys is the key management behind GET /v1/keys, POST /v1/keys/rotate,
// the JWKS's max-age and /readyz.
type Keys interface {
	// List describes every key, never its material.
	List(ctx context.Context) ([]keys.Info, error)
	// Rotate starts a rotation of a managed profile's keys, and returns
	// the profile's keys after it.
	Rotate(ctx context.Context, profile string) ([]keys.Info, error)
	// JWKSMaxAge is how long verifiers may cache the JWKS.
	JWKSMaxAge() time.Duration
	// Ready is nil unless the managed keys could not be synced or opened.
	Ready() error
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	maxAge := s.Keys.JWKSMaxAge()
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	writeBody(w, http.StatusOK, "application/json", s.Tokens().JWKS())
}

// handleKeys is GET /v1/keys: every key with its profile, state and times.
func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) error {
	list, err := s.Keys.List(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Keys []keys.Info `json:"keys"`
	}{list})
}

// handleRotate is POST /v1/keys/rotate {"profile": P}: the next key of a
// managed profile is published now and signs once verifiers can have it.
func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Profile string `json:"profile"`
	}
	if err := s.readJSON(r, &req); err != nil {
		return err
	}
	if req.Profile == "" {
		return errProfileRequired
	}
	if err := s.auditReady(); err != nil {
		return err
	}
	list, err := s.Keys.Rotate(r.Context(), req.Profile)
	if err != nil {
		return err
	}
	if err := s.auditEntry(r, audit.Entry{Action: audit.ActionKeyRotate, Target: "profile:" + req.Profile}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, struct {
		Keys []keys.Info `json:"keys"`
	}{list})
}
