// Package httpapi is jwtd's HTTP interface: the seed 003 routes, the JWKS
// and health routes, and the middleware every route shares (request IDs,
// access logs, body limits, panic recovery). Errors are turned into responses
// in one place, errors.go; internal detail goes to the log, never to clients.
package httpapi

import (
	"log/slog"
	"net/http"

	"github.com/jwtd/jwtd/internal/token"
)

// Options are the server's limits.
type Options struct {
	// MaxBodyBytes bounds every request body; larger ones get 413.
	MaxBodyBytes int64
}

// Server holds what the handlers need. Build it with NewServer.
type Server struct {
	log    *slog.Logger
	tokens func() *token.Service
	opts   Options
}

// NewServer returns jwtd's HTTP handler. tokens returns the current token
// service; it is called once per request, so a reload swaps keys and
// profiles without touching connections.
func NewServer(logger *slog.Logger, tokens func() *token.Service, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	s := &Server{log: logger, tokens: tokens, opts: opts}
	mux := http.NewServeMux()
	s.routes(mux)
	return s.middleware(mux)
}
