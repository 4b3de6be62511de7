// Package httpapi is jwtd's HTTP transport: the seed 000 and seed 003
// routes, the native API, the JWKS and health routes, and the middleware
// every route shares (request IDs, access logs, body limits, panic
// recovery). A handler decodes the request, makes one call into the domain
// (mint, token, record) and encodes the answer; it returns its error, which
// errors.go maps to a status in one place and writes in the route family's
// shape (problem+json, or seed 003's body). Internal detail goes to the log,
// never to clients.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/jwtd/jwtd/internal/metrics"
	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token"
)

// Deps are the server's collaborators.
type Deps struct {
	Logger *slog.Logger
	// Tokens returns the current token service; it is called once per
	// request, so a reload swaps keys and profiles without touching
	// connections.
	Tokens func() *token.Service
	// Minter mints and records tokens (the minting routes).
	Minter *mint.Minter
	// Store answers the admin routes and the verifiers' record checks.
	Store Records
	// APIKeys returns the current API keys; called once per request to an
	// authenticated route, so a reload swaps them.
	APIKeys func() *apikey.Set
	// Phones normalises the phone of GET /v1/tokens?phone=.
	Phones *phone.Normalizer
	Now    func() time.Time // defaults to time.Now

	// Limiter limits /verifyToken (the minting routes are limited by the
	// Minter); nil means no limits. LimitStore is pinged by /readyz.
	// ClientIP resolves the address requests are limited and recorded by
	// (nil: the TCP peer).
	Limiter    *ratelimit.Limiter
	LimitStore interface{ Ping(context.Context) error }
	ClientIP   *ratelimit.ClientIP
	Metrics    *metrics.Metrics // nil records nothing
	// Keys lists and rotates keys, says whether they are ready and how
	// long verifiers may cache the JWKS. Required.
	Keys Keys
	// Audit records the actions of API keys (nil: none); AuditStore
	// answers GET /v1/audit; Refusals counts refused authentications.
	Audit      *audit.Trail
	AuditStore audit.Store
	Refusals   *audit.Refusals
}

// Records is what the routes need of the record store (a record.Store has
// it all): what the use cases behind Get Status, revocation and outcomes
// need, a record by jti for the verifiers, a phone's records page by page,
// and Ping for /readyz.
type Records interface {
	record.TransactionReader
	record.Revoker
	record.OutcomeAdder
	ByJTI(ctx context.Context, jti string) (*record.Record, error)
	ByPhone(ctx context.Context, phone string, limit int, cursor string) (record.Page, error)
	Ping(ctx context.Context) error
}

// Options are the server's limits.
type Options struct {
	// MaxBodyBytes bounds every request body; larger ones get 413.
	MaxBodyBytes int64
	// VerifyLimits are the rules that limit /verifyToken (per_ip_verify).
	VerifyLimits []string
	// RequireClientCert makes the admin and introspection routes refuse
	// requests without a verified TLS client certificate.
	RequireClientCert bool
	// Seed000RequireCaller makes seed 000's GET /v1/token/... refuse
	// requests without an API key of scope issue or a verified client
	// certificate (seed000.require_caller).
	Seed000RequireCaller bool
	// MetricsElsewhere leaves /metrics out of the API: another listener
	// serves it (metrics.listen).
	MetricsElsewhere bool
}

// Server holds what the handlers need. Build it with NewServer.
type Server struct {
	Deps
	opts           Options
	unavailableLog *logevery.Every // store outages' log lines
}

// NewServer returns jwtd's HTTP handler.
func NewServer(d Deps, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if d.Keys == nil {
		panic("httpapi.NewServer: Deps.Keys is nil")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.APIKeys == nil {
		none := &apikey.Set{}
		d.APIKeys = func() *apikey.Set { return none }
	}
	if d.ClientIP == nil {
		d.ClientIP, _ = ratelimit.NewClientIP(nil)
	}
	if d.Phones == nil {
		d.Phones, _ = phone.NewNormalizer("", 0)
	}
	s := &Server{Deps: d, opts: opts, unavailableLog: logevery.New(10 * time.Second)}
	mux := http.NewServeMux()
	s.routes(mux)
	mux.Handle("/", unmatched(mux))
	return s.middleware(mux)
}

// unmatched answers what no route matches in problem+json, like every
// other error: 405 with an Allow header when the path has routes for other
// methods, else 404.
func unmatched(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeProblem(w, errMethod)
			return
		}
		writeProblem(w, withDetail(errNoRoute, "no route matches "+r.Method+" "+r.URL.Path))
	})
}
