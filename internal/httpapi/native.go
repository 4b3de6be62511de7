package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/jwtd/jwtd/internal/apikey"
	"github.com/jwtd/jwtd/internal/phone"
	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/token"
)

// require lets a request through only with an API key that has scope and,
// for the admin and introspect scopes when a client CA is configured, a
// verified client certificate.
func (s *Server) require(scope string, next http.Handler) http.Handler {
	needCert := s.opts.RequireClientCert && (scope == apikey.ScopeAdmin || scope == apikey.ScopeIntrospect)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if needCert && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			writeProblem(w, http.StatusForbidden, "Client certificate required", "this route needs a TLS client certificate from the configured CA")
			return
		}
		_, err := s.apiKeys.Authorize(r.Header.Get("Authorization"), scope)
		switch {
		case errors.Is(err, apikey.ErrForbidden):
			writeProblem(w, http.StatusForbidden, "Forbidden", "the API key lacks the "+scope+" scope")
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="jwtd"`)
			writeProblem(w, http.StatusUnauthorized, "Unauthorized", err.Error())
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// handlePhoneToken is seed 000's GET /v1/token/{phone}[/{xid}]: the
// appverify profile's token as text/plain, recorded with phone and XID.
func (s *Server) handlePhoneToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET")
		if r.Method != http.MethodGet {
			writeProblem(w, http.StatusMethodNotAllowed, "Method not allowed", "only GET mints a token")
			return
		}
		num, err := phone.Normalize(r.PathValue("phone"), s.opts.DefaultRegion)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "Invalid phone number", "the phone number could not be read as a valid number (E.164, or national in the default region)")
			return
		}
		xid := r.PathValue("xid")
		if xid == "" {
			xid = uuid.NewString()
		} else if !record.ValidXID(xid) {
			writeProblem(w, http.StatusBadRequest, "Invalid XID", "an XID is 1 to 128 characters of A-Z a-z 0-9 . _ : -")
			return
		}
		if !s.limit(w, r, "token", num, false) {
			return
		}
		issued, err := s.mint(r, "appverify", token.Request{Phone: num, XID: xid})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, issued.Token)
	})
}

// decodeJSON reads a native route's JSON body into dst: application/json,
// within the body limit, one object without duplicate keys, no unknown
// fields. On failure it has written the problem and returns false.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, berr := s.readJSONBody(r, 16)
	if berr != nil {
		writeProblem(w, berr.status, http.StatusText(berr.status), berr.msg)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeProblem(w, http.StatusBadRequest, "Invalid request body", err.Error())
		return false
	}
	return true
}

// ttl is a lifetime given as a Go duration string ("30s") or seconds.
type ttl time.Duration

func (t *ttl) UnmarshalJSON(b []byte) error {
	var secs json.Number
	if json.Unmarshal(b, &secs) == nil {
		f, err := secs.Float64()
		if err != nil || f <= 0 || f > 1e9 {
			return errors.New("ttl must be a positive number of seconds")
		}
		*t = ttl(time.Duration(f * float64(time.Second)))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("ttl must be a duration such as \"30s\" or a number of seconds")
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return errors.New("ttl must be a positive duration such as \"30s\"")
	}
	*t = ttl(d)
	return nil
}

// handleIssue is POST /v1/tokens.
func (s *Server) handleIssue() http.Handler {
	type request struct {
		Profile string          `json:"profile"`
		Phone   string          `json:"phone"`
		XID     string          `json:"xid"`
		Sub     string          `json:"sub"`
		Aud     string          `json:"aud"`
		Data    json.RawMessage `json:"data"`
		TTL     ttl             `json:"ttl"`
	}
	type response struct {
		Token     string    `json:"token"`
		JTI       string    `json:"jti"`
		XID       string    `json:"xid,omitempty"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if !s.decodeJSON(w, r, &req) {
			return
		}
		if req.Profile == "" {
			req.Profile = "default"
		}
		if req.Phone != "" {
			num, err := phone.Normalize(req.Phone, s.opts.DefaultRegion)
			if err != nil {
				writeProblem(w, http.StatusBadRequest, "Invalid phone number", "")
				return
			}
			req.Phone = num
		}
		if p, ok := s.tokens().Profile(req.Profile); ok && p.Layout == token.LayoutAppVerify && req.XID == "" {
			req.XID = uuid.NewString()
		}
		if req.XID != "" && !record.ValidXID(req.XID) {
			writeProblem(w, http.StatusBadRequest, "Invalid XID", "an XID is 1 to 128 characters of A-Z a-z 0-9 . _ : -")
			return
		}
		if len(req.Sub) > 256 || len(req.Aud) > 256 {
			writeProblem(w, http.StatusBadRequest, "Invalid request body", "sub and aud are at most 256 bytes")
			return
		}
		if !s.limit(w, r, "issue", req.Phone, false) {
			return
		}
		issued, err := s.mint(r, req.Profile, token.Request{
			Phone: req.Phone, XID: req.XID, Subject: req.Sub, Audience: req.Aud, Data: req.Data, TTL: time.Duration(req.TTL),
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusCreated, "application/json", response{Token: issued.Token, JTI: issued.JTI, XID: req.XID, ExpiresAt: issued.ExpiresAt})
	})
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
	now := s.now()
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
func (s *Server) handleTransaction() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xid := r.PathValue("xid")
		if !record.ValidXID(xid) {
			writeProblem(w, http.StatusBadRequest, "Invalid XID", "")
			return
		}
		recs, err := s.store.ByXID(r.Context(), xid)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if len(recs) == 0 {
			writeProblem(w, http.StatusNotFound, "Unknown XID", "no token was recorded with this XID")
			return
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]any{"xid": xid, "records": s.recordsJSON(recs)})
	})
}

// handleListByPhone is GET /v1/tokens?phone=&limit=&cursor=.
func (s *Server) handleListByPhone() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		num, err := phone.Normalize(q.Get("phone"), s.opts.DefaultRegion)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, "Invalid phone number", "give ?phone= as E.164 or a national number of the default region")
			return
		}
		limit := 50
		if l := q.Get("limit"); l != "" {
			if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > 500 {
				writeProblem(w, http.StatusBadRequest, "Invalid limit", "limit is 1 to 500")
				return
			}
		}
		page, err := s.store.ByPhone(r.Context(), num, limit, q.Get("cursor"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := map[string]any{"phone": num, "records": s.recordsJSON(page.Records)}
		if page.Next != "" {
			resp["next_cursor"] = page.Next
		}
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

// handleRevoke is POST /v1/revoke with {"jti"} or {"xid"}.
func (s *Server) handleRevoke() http.Handler {
	type request struct {
		JTI string `json:"jti"`
		XID string `json:"xid"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if !s.decodeJSON(w, r, &req) {
			return
		}
		var n int
		var err error
		switch {
		case (req.JTI == "") == (req.XID == ""):
			writeProblem(w, http.StatusBadRequest, "Invalid request body", "give exactly one of jti and xid")
			return
		case req.JTI != "":
			if len(req.JTI) > 128 {
				writeProblem(w, http.StatusBadRequest, "Invalid jti", "")
				return
			}
			n, err = s.store.RevokeJTI(r.Context(), req.JTI, s.now())
		default:
			if !record.ValidXID(req.XID) {
				writeProblem(w, http.StatusBadRequest, "Invalid XID", "")
				return
			}
			n, err = s.store.RevokeXID(r.Context(), req.XID, s.now())
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if n == 0 {
			// Unknown, or revoked already: say which.
			if req.JTI != "" {
				if _, err := s.store.ByJTI(r.Context(), req.JTI); errors.Is(err, record.ErrNotFound) {
					writeProblem(w, http.StatusNotFound, "Unknown jti", "")
					return
				}
			} else if recs, err := s.store.ByXID(r.Context(), req.XID); err == nil && len(recs) == 0 {
				writeProblem(w, http.StatusNotFound, "Unknown XID", "")
				return
			}
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]int{"revoked": n})
	})
}

// handleIntrospect is RFC 7662: POST /v1/introspect, form field token.
// Inactive answers carry a reason.
func (s *Server) handleIntrospect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
			writeProblem(w, http.StatusUnsupportedMediaType, "Unsupported media type", "send application/x-www-form-urlencoded with a token field")
			return
		}
		if err := r.ParseForm(); err != nil {
			if isTooLarge(err) {
				writeProblem(w, http.StatusRequestEntityTooLarge, "Request body too large", "")
			} else {
				writeProblem(w, http.StatusBadRequest, "Malformed form body", "")
			}
			return
		}
		if _, ok := r.PostForm["token"]; !ok {
			writeProblem(w, http.StatusBadRequest, "Missing token", "the form field token is required")
			return
		}
		tok := r.PostForm.Get("token")
		w.Header().Set("Cache-Control", "no-store")
		v, err := s.tokens().Verify(tok)
		if err != nil {
			s.log.Debug("token inactive", "request_id", RequestID(r.Context()), "reason", token.Reason(err), "detail", err.Error())
			s.metrics.Verified(token.Reason(err))
			writeJSON(w, http.StatusOK, "application/json", map[string]any{"active": false, "reason": token.Reason(err)})
			return
		}
		if v.Claims.JTI != "" {
			rec, err := s.store.ByJTI(r.Context(), v.Claims.JTI)
			switch {
			case err == nil && !rec.Revoked.IsZero():
				s.metrics.Verified(string(record.Revoked))
				writeJSON(w, http.StatusOK, "application/json", map[string]any{"active": false, "reason": string(record.Revoked)})
				return
			case err != nil && !errors.Is(err, record.ErrNotFound):
				s.writeError(w, r, err) // fail closed: revocation cannot be checked
				return
			}
		}
		resp := make(map[string]any, len(v.Claims.All)+2)
		for k, val := range v.Claims.All {
			resp[k] = val
		}
		resp["active"] = true
		resp["kid"] = v.Key.Kid()
		s.metrics.Verified("active")
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "Not ready", "the record store does not answer")
			return
		}
		if s.limitStore != nil {
			if err := s.limitStore.Ping(ctx); err != nil {
				s.log.Warn("not ready", "err", err)
				writeProblem(w, http.StatusServiceUnavailable, "Not ready", "the rate-limit backend does not answer")
				return
			}
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
	})
}
