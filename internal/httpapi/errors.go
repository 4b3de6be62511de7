package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token"
)

// apiError is what a client is told: an HTTP status, a title that names the
// kind of problem, and a detail about this occurrence. SeedCode is seed
// 003's own code where it differs from the status (202, 203, 204, which the
// seed sent as statuses). Handlers return the domain's errors, which
// errorFor maps to one, or one of the errors of the request below.
type apiError struct {
	Status   int
	SeedCode int
	Title    string
	Detail   string
}

func (e *apiError) Error() string { return e.Title + ": " + e.Detail }

func badRequest(title, detail string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Title: title, Detail: detail}
}

// withDetail is e, an error of the request below, with what is wrong in
// this one.
func withDetail(e *apiError, detail string) *apiError {
	c := *e
	c.Detail = detail
	return &c
}

// Errors of the request itself, and of the routes that answer without a
// domain call; those without a Detail are given one by withDetail.
var (
	// Seed 003's body, with the seed's codes and texts ("singing" is the
	// seed's spelling, kept for its clients).
	errContentType     = &apiError{Status: http.StatusUnsupportedMediaType, SeedCode: 202, Title: "Invalid content type", Detail: "send Content-Type: application/json"}
	errMissingToken    = &apiError{Status: http.StatusBadRequest, SeedCode: 203, Title: "Missing token in GET request body"}
	errMissingKey      = &apiError{Status: http.StatusBadRequest, SeedCode: 204, Title: "Missing singing key in GET request body"}
	errMissingUserData = badRequest("Invalid request body", "Missing user_data in POST request body")
	errKeyType         = badRequest("Invalid request body", "Signing_key must be a string or a JWK object")
	errMalformedJSON   = badRequest("Malformed JSON body", "")

	// Bodies and forms.
	errInvalidBody     = badRequest("Invalid request body", "")
	errProfileRequired = badRequest("Invalid request body", "profile is required")
	errBodyTooLarge    = &apiError{Status: http.StatusRequestEntityTooLarge, Title: "Request body too large"}
	errBodyUnread      = badRequest("Could not read the request body", "")
	errFormType        = &apiError{Status: http.StatusUnsupportedMediaType, Title: "Unsupported media type", Detail: "send application/x-www-form-urlencoded with a token field"}
	errMalformedForm   = badRequest("Malformed form body", "")
	errFormToken       = badRequest("Missing token", "the form field token is required")

	// Query parameters.
	errPhoneSpace = badRequest("Invalid phone number", "the phone starts with a space, which is what an unencoded + in a query string "+
		"becomes: write the + as %2B, as in ?phone=%2B14155552671")
	errLimit = badRequest("Invalid limit", "limit is 1 to 500")
	errSince = badRequest("Invalid since", "since is an RFC 3339 time such as 2026-12-01T00:00:00Z")
	errUntil = badRequest("Invalid until", "until is an RFC 3339 time such as 2026-12-01T00:00:00Z")

	// Routes and callers.
	errMethod     = &apiError{Status: http.StatusMethodNotAllowed, Title: "Method not allowed"}
	errGETOnly    = &apiError{Status: http.StatusMethodNotAllowed, Title: "Method not allowed", Detail: "only GET mints a token"}
	errNoRoute    = &apiError{Status: http.StatusNotFound, Title: "Not found"}
	errClientCert = &apiError{Status: http.StatusForbidden, Title: "Client certificate required",
		Detail: "this route needs a TLS client certificate from the configured CA"}

	// The audit trail and discovery.
	errNoAuditTrail    = &apiError{Status: http.StatusNotFound, Title: "No audit trail", Detail: "this server keeps no audit trail"}
	errAuditNotWritten = &apiError{Status: http.StatusServiceUnavailable, Title: "Audit trail unavailable",
		Detail: "audit.required is set and the audit entry of this action cannot be written to the store; try again when the store answers"}
	errNoIssuer = &apiError{Status: http.StatusNotFound, Title: "No issuer",
		Detail: "the default profile sets no issuer: set profiles.default.issuer to the URL verifiers reach jwtd at"}
	errUnknownIssuer = &apiError{Status: http.StatusNotFound, Title: "Unknown issuer"}

	// /readyz, and what nothing else maps (a panic too).
	errStoreNotReady  = &apiError{Status: http.StatusServiceUnavailable, Title: "Not ready", Detail: "the record store does not answer, or cannot commit"}
	errKeysNotReady   = &apiError{Status: http.StatusServiceUnavailable, Title: "Not ready", Detail: "the managed signing keys cannot be synced with the store or opened; the log says why"}
	errLimitsNotReady = &apiError{Status: http.StatusServiceUnavailable, Title: "Not ready", Detail: "the rate-limit backend does not answer"}
	errInternal       = &apiError{Status: http.StatusInternalServerError, Title: "Internal error"}
)

// errorFor maps any error to what the client is told, and says whether it
// is the server's fault (to be logged, with no detail for the client). The
// one place errors become HTTP statuses.
func errorFor(err error) (e *apiError, fault bool) {
	var limited *ratelimit.LimitedError
	var broken *audit.Break
	switch {
	case errors.As(err, &e):
		return e, false
	case errors.Is(err, audit.ErrNotWritten): // whatever the cause, below
		return errAuditNotWritten, false
	case errors.As(err, &broken): // a listing met an audit row changed in the store
		return &apiError{Status: http.StatusInternalServerError, Title: "Audit trail broken",
			Detail: broken.Error() + "; jwtd audit verify reports every chain"}, true
	case errors.As(err, &limited):
		return &apiError{Status: http.StatusTooManyRequests, Title: "Too many requests", Detail: limited.Error()}, false
	case errors.Is(err, phone.ErrInvalid):
		return badRequest("Invalid phone number", err.Error()), false
	case errors.Is(err, record.ErrInvalidXID):
		return badRequest("Invalid XID", err.Error()), false
	case errors.Is(err, record.ErrInvalidOutcome):
		return badRequest("Invalid outcome", err.Error()), false
	case errors.Is(err, record.ErrTooManyOutcomes):
		return &apiError{Status: http.StatusConflict, Title: "Too many outcomes", Detail: err.Error()}, false
	case errors.Is(err, record.ErrXIDClosed):
		return &apiError{Status: http.StatusConflict, Title: "Transaction revoked",
			Detail: "this XID's transaction was revoked, and a revoked transaction takes no new tokens; start a new transaction with a new XID"}, false
	case errors.Is(err, record.ErrUnknownXID):
		return &apiError{Status: http.StatusNotFound, Title: "Unknown XID", Detail: "no token was recorded with this XID"}, false
	case errors.Is(err, record.ErrUnknownJTI):
		return &apiError{Status: http.StatusNotFound, Title: "Unknown jti",
			Detail: "no token was recorded with this jti (tokens of a profile with record: false cannot be revoked)"}, false
	case errors.Is(err, record.ErrTarget):
		return badRequest("Invalid request body", err.Error()), false
	case errors.Is(err, record.ErrInvalidJTI):
		return badRequest("Invalid jti", err.Error()), false
	case errors.Is(err, record.ErrXIDConflict):
		return &apiError{Status: http.StatusConflict, Title: "The XID belongs to another phone number",
			Detail: "a transaction belongs to the phone number it was first issued for; use a new XID"}, false
	case errors.Is(err, keys.ErrNotManaged):
		return &apiError{Status: http.StatusConflict, Title: "Keys not managed", Detail: err.Error()}, false
	case errors.Is(err, keys.ErrRotating):
		return &apiError{Status: http.StatusConflict, Title: "Rotation under way", Detail: err.Error()}, false
	case errors.Is(err, token.ErrUnknownProfile):
		return badRequest("Unknown profile", err.Error()), false
	case errors.Is(err, token.ErrTTLTooLong):
		return badRequest("ttl exceeds the profile's", err.Error()), false
	case errors.Is(err, token.ErrInvalidRequest):
		return badRequest("Invalid request", err.Error()), false
	case errors.Is(err, record.ErrBadCursor):
		return badRequest("Invalid cursor", "give next_cursor exactly as a previous page returned it"), false
	case errors.Is(err, audit.ErrInvalidCursor):
		return badRequest("Invalid cursor", err.Error()), false
	case errors.Is(err, apikey.ErrForbidden):
		return &apiError{Status: http.StatusForbidden, Title: "Forbidden", Detail: err.Error()}, false
	case errors.Is(err, apikey.ErrMissing), errors.Is(err, apikey.ErrInvalid):
		return &apiError{Status: http.StatusUnauthorized, Title: "Unauthorized", Detail: err.Error()}, false
	case errors.Is(err, record.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Title: "Record store unavailable"}, true
	case errors.Is(err, ratelimit.ErrBackend): // the limiter logs outages itself, at most once in 10 s
		return &apiError{Status: http.StatusServiceUnavailable, Title: "Rate limit unavailable",
			Detail: "the rate-limit backend cannot be reached"}, false
	case errors.Is(err, token.ErrBusy):
		return &apiError{Status: http.StatusServiceUnavailable, Title: "Too busy", Detail: err.Error() + "; try again in a second"}, false
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 499, Title: "Client closed the request"}, false
	case errors.Is(err, keys.ErrPrivateKey): // a caller's key at /verifyToken
		return badRequest("Private key refused", "Signing_key: "+strings.TrimPrefix(err.Error(), keys.ErrUnsafeKey.Error()+": ")), false
	case errors.Is(err, token.ErrMalformed): // a token /verifyToken cannot read
		return badRequest("Malformed token", "Malformed token: "+err.Error()), false
	}
	return errInternal, true
}

// handler is a route that returns its error rather than writing it.
type handler func(w http.ResponseWriter, r *http.Request) error

// problems serves h, writing its error as problem+json (RFC 9457): seed 000
// and the native routes.
func (s *Server) problems(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeProblem(w, s.errorResponse(w, r, err))
		}
	})
}

// seed serves h, writing its error in seed 003's body.
func (s *Server) seed(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeSeedError(w, s.errorResponse(w, r, err))
		}
	})
}

// errorResponse maps err, logs a server fault, and sets the headers its
// status calls for.
func (s *Server) errorResponse(w http.ResponseWriter, r *http.Request, err error) *apiError {
	e, fault := errorFor(err)
	switch {
	case fault && errors.Is(err, record.ErrUnavailable):
		// During a store outage every request fails alike: one line in
		// 10 s (the commit observer says why too).
		if ok, held := s.unavailableLog.Allow(); ok {
			s.Logger.Error(e.Title, "request_id", RequestID(r.Context()), "route", r.Pattern, "err", err,
				"store_faults_since_last_line", held)
		}
	case fault:
		s.Logger.Error(e.Title, "request_id", RequestID(r.Context()), "route", r.Pattern, "err", err)
	}
	var limited *ratelimit.LimitedError
	switch {
	case errors.As(err, &limited):
		setRateLimitHeaders(w, limited.Decision)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(limited.Decision.RetryAfter.Seconds()))))
	case e.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	case e.Status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="jwtd"`)
	}
	return e
}

// writeProblem writes e as problem+json.
func writeProblem(w http.ResponseWriter, e *apiError) {
	b := append(make([]byte, 0, 128), `{"type":"about:blank","title":`...)
	b = appendString(b, e.Title)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	if e.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendString(b, e.Detail)
	}
	writeBody(w, e.Status, "application/problem+json", append(b, "}\n"...))
}

// writeSeedError writes e in seed 003's body: {"status", "description"}.
// The description is the seed's own text where it has one, else what is
// wrong with the request, else the title.
func writeSeedError(w http.ResponseWriter, e *apiError) {
	code, desc := e.Status, e.Title
	switch {
	case e.SeedCode != 0:
		code = e.SeedCode
	case e.Detail != "" && e.Status < 500 && e.Status != http.StatusTooManyRequests:
		desc = e.Detail
	}
	b := append(make([]byte, 0, 96), `{"status":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"description":`...)
	b = appendString(b, desc)
	writeBody(w, e.Status, "application/json", append(b, "}\n"...))
}

// contentTypes are the Content-Type values jwtd answers with, each one
// slice shared by every response that uses it (nothing appends to a header
// value it did not make).
var contentTypes = map[string][]string{
	"application/json":         {"application/json"},
	"application/problem+json": {"application/problem+json"},
}

// writeBody writes a complete response. net/http adds Content-Length
// itself to a body that fits its buffer, written at once; a larger one
// would go out chunked, so it is given here.
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	ct, ok := contentTypes[contentType]
	if !ok {
		ct = []string{contentType}
	}
	w.Header()["Content-Type"] = ct
	if len(body) > 2048 {
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// appendString appends s as a JSON string, without HTML escaping; invalid
// UTF-8 is replaced with U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
	b, _ = jsontext.AppendQuote(b, s)
	return b
}

// setRateLimitHeaders writes the IETF draft's RateLimit-Policy and
// RateLimit fields (draft-ietf-httpapi-ratelimit-headers).
func setRateLimitHeaders(w http.ResponseWriter, d ratelimit.Decision) {
	if d.Policy == "" || d.Remaining < 0 {
		return
	}
	b := make([]byte, 0, 48)
	b = append(append(append(b, '"'), d.Rule...), `";r=`...) // rule names are plain words
	b = strconv.AppendInt(b, int64(d.Remaining), 10)
	b = append(b, ";t="...)
	b = strconv.AppendInt(b, int64(math.Ceil(d.Reset.Seconds())), 10)
	h := w.Header()
	h["Ratelimit-Policy"] = []string{d.Policy}
	h["Ratelimit"] = []string{string(b)}
}
