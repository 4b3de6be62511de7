package token

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/jwtd/jwtd/internal/strictjson"
)

// maxNumericDate is 9999-12-31T23:59:59Z: a NumericDate beyond it (1e300,
// say) is not a time any token of ours carries.
const maxNumericDate = 253402300799

// Claims are a verified token's claims with the registered ones read out.
// Raw is the claims JSON as sent; the rest is read from it.
type Claims struct {
	Raw       []byte
	Expires   time.Time // zero when absent (only where exp is optional)
	IssuedAt  time.Time // zero when absent
	NotBefore time.Time // zero when absent
	JTI       string
	Subject   string
	Issuer    string
}

// claimError is a registered claim of the wrong type or range, or missing:
// the claims are a JSON object, but not a valid claims set.
type claimError struct{ msg string }

func (e *claimError) Error() string { return ErrMalformed.Error() + ": " + e.msg }
func (e *claimError) Unwrap() error { return ErrMalformed }

func badClaim(format string, args ...any) error { return &claimError{fmt.Sprintf(format, args...)} }

// parseClaims reads the payload as a JWT claims set, in one pass: a strict
// JSON object (see strictjson); exp, iat and
// nbf, when present, JSON numbers within [0, year 9999] (fractions allowed);
// jti, sub and iss, when present, strings. A claims set that is a strict
// JSON object (all of it is checked) but breaks those rules is a
// *claimError, the first such; the Claims read come with it.
func parseClaims(payload []byte) (*Claims, error) {
	c := &Claims{Raw: payload}
	var bad error // the first claim that breaks the rules; the walk goes on
	err := strictjson.Walk(payload, maxJSONDepth, func(name string, v jsontext.Value) error {
		var err error
		switch name {
		case "exp":
			c.Expires, err = numericDate(name, v)
		case "iat":
			c.IssuedAt, err = numericDate(name, v)
		case "nbf":
			c.NotBefore, err = numericDate(name, v)
		case "jti":
			err = stringClaim(name, v, &c.JTI)
		case "sub":
			err = stringClaim(name, v, &c.Subject)
		case "iss":
			err = stringClaim(name, v, &c.Issuer)
		}
		if bad == nil {
			bad = err
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	case bad != nil:
		return c, bad
	}
	return c, nil
}

func stringClaim(name string, v jsontext.Value, dst *string) error {
	s, ok := strictjson.String(v)
	if !ok {
		return badClaim("claim %q must be a string", name)
	}
	*dst = s
	return nil
}

func numericDate(name string, v jsontext.Value) (time.Time, error) {
	if v.Kind() != '0' {
		return time.Time{}, badClaim("claim %q must be a number", name)
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, badClaim("claim %q is out of range", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// checkTimes applies exp, nbf and iat, those present, at now with the
// given leeway.
func (c *Claims) checkTimes(now time.Time, leeway time.Duration) error {
	if !c.Expires.IsZero() && !now.Before(c.Expires.Add(leeway)) {
		return fmt.Errorf("%w: expired at %s", ErrExpired, c.Expires.Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && now.Add(leeway).Before(c.NotBefore) {
		return fmt.Errorf("%w: not valid before %s", ErrNotYetValid, c.NotBefore.Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && now.Add(leeway).Before(c.IssuedAt) {
		return fmt.Errorf("%w: issued in the future (%s)", ErrNotYetValid, c.IssuedAt.Format(time.RFC3339))
	}
	return nil
}

// checkTyp accepts a token without typ, or with typ JWT (any case,
// optionally with the "application/" prefix of RFC 7515 §4.1.9).
func checkTyp(typ string) error {
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	if typ != "" && t != "jwt" {
		return fmt.Errorf("%w: typ %q is not JWT", ErrMalformed, typ)
	}
	return nil
}
