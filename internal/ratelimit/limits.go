// Package ratelimit limits callers per client IP and per phone number with
// GCRA (github.com/throttled/throttled/v2): one algorithm over two stores, a
// bounded in-memory LRU and Redis, so that the limit is the same whether one
// instance runs or several share a Redis. It also resolves the client IP
// behind trusted proxies.
package ratelimit

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Limit is one rate: Count requests per Period.
type Limit struct {
	Count  int
	Period time.Duration
}

// String is the limit in Flask-Limiter's words, such as "10 per 1 minute".
func (l Limit) String() string {
	return fmt.Sprintf("%d per %s", l.Count, l.Period)
}

var units = map[string]time.Duration{
	"second": time.Second, "minute": time.Minute, "hour": time.Hour,
	"day": 24 * time.Hour, "month": 30 * 24 * time.Hour, "year": 365 * 24 * time.Hour,
}

// One limit as Flask-Limiter (the limits library) writes it: "10 per
// minute", "10/minute", "100/hour", "5 per 2 seconds".
var limitRE = regexp.MustCompile(`^\s*(\d{1,9})\s*(?:per|/)\s*(\d{1,6})?\s*(second|minute|hour|day|month|year)s?\s*$`)

// ErrBadLimit is wrapped by every parse error.
var ErrBadLimit = errors.New("invalid rate limit")

// ParseLimits reads one or more limits separated by ";", "," or "|", as
// Flask-Limiter accepts them. The empty string is no limit.
func ParseLimits(s string) ([]Limit, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > 256 {
		return nil, fmt.Errorf("%w: longer than 256 characters", ErrBadLimit)
	}
	var out []Limit
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == '|' }) {
		m := limitRE.FindStringSubmatch(strings.ToLower(part))
		if m == nil {
			return nil, fmt.Errorf("%w: %q is not like \"10 per minute\" or \"100/hour\"", ErrBadLimit, strings.TrimSpace(part))
		}
		count, _ := strconv.Atoi(m[1])
		multiple := 1
		if m[2] != "" {
			multiple, _ = strconv.Atoi(m[2])
		}
		if count < 1 || multiple < 1 {
			return nil, fmt.Errorf("%w: %q must allow at least 1 request in at least 1 %s", ErrBadLimit, strings.TrimSpace(part), m[3])
		}
		out = append(out, Limit{Count: count, Period: time.Duration(multiple) * units[m[3]]})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrBadLimit, s)
	}
	return out, nil
}
