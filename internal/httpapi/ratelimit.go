package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/jwtd/jwtd/internal/ratelimit"
)

// limit checks the request against the limits of its route group: per
// client IP and, when phone is set, per phone. It sets the RateLimit headers
// of the tightest limit, and on refusal writes 429 (or 503 when the backend
// is away and on_backend_error is closed) in the route's error shape and
// returns false.
func (s *Server) limit(w http.ResponseWriter, r *http.Request, group, phone string, seed bool) bool {
	if s.limiter == nil {
		return true
	}
	var tightest *ratelimit.Decision
	for _, kind := range s.opts.LimitRoutes[group] {
		rule, key := "per_ip", ""
		switch kind {
		case "ip":
			key = ratelimit.Key(s.clientIP.Resolve(r))
		case "phone":
			if phone == "" {
				continue
			}
			rule, key = "per_phone", phone
		default:
			continue
		}
		if !s.limiter.Has(rule) {
			continue
		}
		d, err := s.limiter.Allow(r.Context(), rule, key)
		if err != nil && d.Allowed {
			// on_backend_error open; the other limits share the backend.
			return true
		}
		if !d.Allowed {
			if err != nil {
				w.Header().Set("Retry-After", "1")
				s.refuse(w, http.StatusServiceUnavailable, "Rate limit unavailable", "the rate-limit backend cannot be reached", seed)
				return false
			}
			setRateLimitHeaders(w, d)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.RetryAfter.Seconds()))))
			s.refuse(w, http.StatusTooManyRequests, "Too many requests",
				fmt.Sprintf("%s limit of %s reached", rule, d.Limit), seed)
			return false
		}
		if err == nil && (tightest == nil || d.Remaining < tightest.Remaining) {
			tightest = &d
		}
	}
	if tightest != nil {
		setRateLimitHeaders(w, *tightest)
	}
	return true
}

func (s *Server) refuse(w http.ResponseWriter, status int, title, detail string, seed bool) {
	if seed {
		writeSeedError(w, &seedError{status, status, title})
		return
	}
	writeProblem(w, status, title, detail)
}

// setRateLimitHeaders writes the IETF draft's RateLimit-Policy and
// RateLimit fields (draft-ietf-httpapi-ratelimit-headers).
func setRateLimitHeaders(w http.ResponseWriter, d ratelimit.Decision) {
	if d.Policy == "" || d.Remaining < 0 {
		return
	}
	w.Header().Set("RateLimit-Policy", d.Policy)
	w.Header().Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", d.Rule, d.Remaining, int(math.Ceil(d.Reset.Seconds()))))
}
