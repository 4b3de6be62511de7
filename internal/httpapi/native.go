package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/strictjson"
	"github.com/jwtd/jwtd/internal/token"
)

// require lets a request through only with an API key that has scope and,
// for the admin and introspect scopes when a client CA is configured, a
// verified client certificate.
func (s *Server) require(scope string, next handler) http.Handler {
	needCert := s.opts.RequireClientCert && (scope == apikey.ScopeAdmin || scope == apikey.ScopeIntrospect)
	return s.problems(func(w http.ResponseWriter, r *http.Request) error {
		if needCert && !hasClientCert(r) {
			return errClientCert
		}
		r, err := s.authenticate(r, scope)
		if err != nil {
			return err
		}
		return next(w, r)
	})
}

// authenticate returns r with the name of its API key in its context
// (apiKeyName) if the key has scope; else authorize's error, the refusal
// counted (auth.refused).
func (s *Server) authenticate(r *http.Request, scope string) (*http.Request, error) {
	name, err := s.authorize(r, scope)
	if err != nil {
		s.refused(r, name, err)
		return nil, err
	}
	return r.WithContext(context.WithValue(r.Context(), apiKeyNameKey, name)), nil
}

// authorize returns the name of the request's API key if it has scope,
// else an error of apikey's: ErrMissing or ErrInvalid (401) when it has no
// key or one jwtd does not know, ErrForbidden (403) when the key lacks the
// scope.
func (s *Server) authorize(r *http.Request, scope string) (string, error) {
	return s.APIKeys().Authorize(r.Header.Get("Authorization"), scope)
}

// hasClientCert reports a TLS client certificate verified against the
// configured client CA.
func hasClientCert(r *http.Request) bool {
	return r.TLS != nil && len(r.TLS.VerifiedChains) > 0
}

// apiKeyNameKey keys the name of the request's API key in its context.
const apiKeyNameKey ctxKey = 1

// apiKeyName is the name of the API key the request authenticated with, or
// "" for an anonymous route.
func apiKeyName(ctx context.Context) string {
	name, _ := ctx.Value(apiKeyNameKey).(string)
	return name
}

// writeJSON writes v, a response struct, as compact JSON without HTML
// escaping.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v, jsontext.EscapeForHTML(false))
	if err != nil {
		return err
	}
	writeBody(w, status, "application/json", append(b, '\n'))
	return nil
}

// ttl is a lifetime given as a Go duration string ("90s") or a JSON
// number of seconds: whole seconds, at least one, since a token's exp is
// whole seconds (1e-10 or 0.5 would otherwise become a ttl of 0, the
// profile's full lifetime).
type ttl time.Duration

// maxTTLSeconds bounds a ttl in seconds far above any profile's, and far
// below time.Duration's range.
const maxTTLSeconds = 1e9

func (t *ttl) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	switch v.Kind() {
	case '0':
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 1 || n > maxTTLSeconds {
			return fmt.Errorf("ttl %s is not a whole number of seconds from 1 to %d; write it such as 60, or as a duration such as \"90s\"", v, int64(maxTTLSeconds))
		}
		*t = ttl(time.Duration(n) * time.Second)
		return nil
	case '"':
		text, _ := strictjson.String(v)
		d, err := time.ParseDuration(text)
		if err != nil || d < time.Second || d%time.Second != 0 || d > maxTTLSeconds*time.Second {
			return fmt.Errorf("ttl %s is not a duration of whole seconds, at least 1s, such as \"90s\" or \"5m\"", v)
		}
		*t = ttl(d)
		return nil
	}
	return errors.New("ttl must be a duration such as \"90s\" or a whole number of seconds such as 60")
}

// handleIssue is POST /v1/tokens.
func (s *Server) handleIssue(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Profile string         `json:"profile"`
		Phone   string         `json:"phone"`
		XID     string         `json:"xid"`
		Sub     string         `json:"sub"`
		Aud     string         `json:"aud"`
		Data    jsontext.Value `json:"data"`
		TTL     ttl            `json:"ttl"`
	}
	if err := s.readJSON(r, &req); err != nil {
		return err
	}
	if err := s.auditReady(); err != nil {
		return err
	}
	minted, err := s.Minter.Mint(r.Context(), mint.Request{
		Profile: req.Profile, Phone: req.Phone, XID: req.XID, Subject: req.Sub, Audience: req.Aud,
		Data: []byte(req.Data), TTL: time.Duration(req.TTL), ClientIP: s.ClientIP.Resolve(r), Limits: "issue",
		APIKey: apiKeyName(r.Context()), Audit: s.actor(r),
	})
	if err != nil {
		return err
	}
	setRateLimitHeaders(w, minted.Limit)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, struct {
		Token     string    `json:"token"`
		JTI       string    `json:"jti"`
		XID       string    `json:"xid,omitempty"`
		ExpiresAt time.Time `json:"expires_at"`
	}{minted.Token, minted.JTI, minted.XID, minted.ExpiresAt})
}

// recordJSON is a record as the admin routes show it.
type recordJSON struct {
	JTI         string     `json:"jti"`
	Profile     string     `json:"profile"`
	Kid         string     `json:"kid"`
	Alg         string     `json:"alg"`
	XID         string     `json:"xid,omitempty"`
	Phone       string     `json:"phone,omitempty"`
	Subject     string     `json:"sub,omitempty"`
	IssuedAt    time.Time  `json:"issued_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	Status      string     `json:"status"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	ClientIP    string     `json:"client_ip,omitempty"`
	TokenSHA256 string     `json:"token_sha256"`
	Token       string     `json:"token,omitempty"`
}

func (s *Server) recordsJSON(recs []record.Record) []recordJSON {
	now := s.Now()
	out := make([]recordJSON, len(recs))
	for i, r := range recs {
		out[i] = recordJSON{
			JTI: r.JTI, Profile: r.Profile, Kid: r.Kid, Alg: r.Alg, XID: r.XID, Phone: r.Phone, Subject: r.Subject,
			IssuedAt: r.Issued, ExpiresAt: r.Expires, Status: string(r.Status(now)),
			ClientIP: r.ClientIP, TokenSHA256: r.TokenSHA256, Token: r.TokenText,
		}
		if !r.Revoked.IsZero() {
			t := r.Revoked
			out[i].RevokedAt = &t
		}
	}
	return out
}

// handleTransaction is Get Status: GET /v1/tokens/{xid}.
func (s *Server) handleTransaction(w http.ResponseWriter, r *http.Request) error {
	t, err := record.ReadTransaction(r.Context(), s.Store, r.PathValue("xid"))
	if err != nil {
		return err
	}
	out := struct {
		XID string `json:"xid"`
		// Closed is when a revocation of the whole transaction closed it:
		// it takes no new token. Absent while it is open.
		Closed *time.Time `json:"closed,omitempty"`
		// Summary is where the transaction stands: its latest outcome's
		// status and time; absent until one is reported.
		Summary  *summaryJSON  `json:"summary,omitempty"`
		Outcomes []outcomeJSON `json:"outcomes"`
		Records  []recordJSON  `json:"records"`
	}{XID: t.XID, Outcomes: make([]outcomeJSON, len(t.Outcomes)), Records: s.recordsJSON(t.Records)}
	if !t.Closed.IsZero() {
		out.Closed = &t.Closed
	}
	for i, o := range t.Outcomes {
		out.Outcomes[i] = toOutcomeJSON(o)
	}
	if len(t.Outcomes) > 0 {
		out.Summary = &summaryJSON{string(t.Outcomes[0].Status), t.Outcomes[0].UpdatedOn}
	}
	return writeJSON(w, http.StatusOK, out)
}

// handleListByPhone is GET /v1/tokens?phone=&limit=&cursor=.
func (s *Server) handleListByPhone(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if strings.HasPrefix(q.Get("phone"), " ") {
		// An unencoded + in a query string arrives as a space.
		return errPhoneSpace
	}
	num, err := s.Phones.Normalize(q.Get("phone"))
	if err != nil {
		return err
	}
	limit, err := limitParam(q, 50)
	if err != nil {
		return err
	}
	page, err := s.Store.ByPhone(r.Context(), num, limit, q.Get("cursor"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Phone      string       `json:"phone"`
		Records    []recordJSON `json:"records"`
		NextCursor string       `json:"next_cursor,omitempty"`
	}{num, s.recordsJSON(page.Records), page.Next})
}

// limitParam is a listing's limit query parameter: 1 to 500, def when
// absent.
func limitParam(q url.Values, def int) (int, error) {
	l := q.Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || n > 500 {
		return 0, errLimit
	}
	return n, nil
}

// handleRevoke is POST /v1/revoke with {"jti"} or {"xid"}.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		JTI string `json:"jti"`
		XID string `json:"xid"`
	}
	if err := s.readJSON(r, &req); err != nil {
		return err
	}
	if err := s.auditReady(); err != nil {
		return err
	}
	n, err := record.Revoke(r.Context(), s.Store, record.Target{JTI: req.JTI, XID: req.XID}, s.Now())
	if err != nil {
		return err
	}
	target := "jti:" + req.JTI
	if req.XID != "" {
		target = "xid:" + req.XID
	}
	if err := s.auditEntry(r, audit.Entry{Action: audit.ActionRevoke, Target: target, Detail: "count=" + strconv.Itoa(n)}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Revoked int `json:"revoked"`
	}{n})
}

// handleIntrospect is RFC 7662: POST /v1/introspect, form field token.
// Inactive answers carry a reason.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(r, "application/x-www-form-urlencoded", errFormType, tokenBodyBytes)
	if err != nil {
		return err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return withDetail(errMalformedForm, err.Error())
	}
	if _, ok := form["token"]; !ok {
		return errFormToken
	}
	w.Header().Set("Cache-Control", "no-store")
	v, err := s.Tokens().Introspect(r.Context(), form.Get("token"), s.Store.ByJTI)
	if err != nil && !token.IsReason(err) {
		return err // revocation cannot be checked: fail closed
	}
	if err != nil {
		reason := token.Reason(err)
		s.Logger.Debug("token inactive", "request_id", RequestID(r.Context()), "reason", reason, "detail", err.Error())
		s.Metrics.Verified(reason)
		b := append(make([]byte, 0, 48), `{"active":false,"reason":`...)
		b = appendString(b, reason)
		writeBody(w, http.StatusOK, "application/json", append(b, "}\n"...))
		return nil
	}
	s.Metrics.Verified("active")
	// {"active":true, the claims as sent but active and kid, "kid"}.
	b := append(make([]byte, 0, len(v.Claims.Raw)+64), `{"active":true`...)
	err = strictjson.Walk(v.Claims.Raw, 16, func(name string, value jsontext.Value) error {
		if name != "active" && name != "kid" {
			b = append(b, ',')
			b = appendString(b, name)
			b = append(b, ':')
			b = appendCompact(b, value)
		}
		return nil
	})
	if err != nil {
		return err // unreachable: the claims were read this way already
	}
	b = append(b, `,"kid":`...)
	b = appendString(b, v.Key.Kid())
	writeBody(w, http.StatusOK, "application/json", append(b, "}\n"...))
	return nil
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.Ping(ctx); err != nil {
		s.Logger.Warn("not ready", "err", err)
		return errStoreNotReady
	}
	if err := s.Keys.Ready(); err != nil {
		s.Logger.Warn("not ready", "err", err)
		return errKeysNotReady
	}
	if s.LimitStore != nil {
		if err := s.LimitStore.Ping(ctx); err != nil {
			s.Logger.Warn("not ready", "err", err)
			return errLimitsNotReady
		}
	}
	writeBody(w, http.StatusOK, "application/json", []byte("{\"status\":\"ready\"}\n"))
	return nil
}
