package token

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jwtd/jwtd/internal/strictjson"
)

// maxNumericDate is 9999-12-31T23:59:59Z: a NumericDate beyond it (1e300,
// say) is not a time any token of ours carries.
const maxNumericDate = 253402300799

// Claims are a verified token's claims with the registered ones read out.
type Claims struct {
	Raw       []byte         // the claims JSON as sent
	All       map[string]any // every claim; numbers as json.Number
	Expires   time.Time      // zero when absent (only where exp is optional)
	IssuedAt  time.Time      // zero when absent
	NotBefore time.Time      // zero when absent
	JTI       string
	Subject   string
	Issuer    string
}

// parseClaims reads the payload as a JWT claims set. exp is required when
// requireExp; exp, iat and nbf, when present, must be JSON numbers within
// [0, year 9999] (fractions allowed).
func parseClaims(payload []byte, requireExp bool) (*Claims, error) {
	if err := strictjson.CheckObject(payload, maxJSONDepth); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	c := &Claims{Raw: payload}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&c.All); err != nil {
		return nil, fmt.Errorf("%w: claims: %v", ErrMalformed, err)
	}
	var err error
	if c.Expires, err = numericDate(c.All, "exp", requireExp); err != nil {
		return nil, err
	}
	if c.IssuedAt, err = numericDate(c.All, "iat", false); err != nil {
		return nil, err
	}
	if c.NotBefore, err = numericDate(c.All, "nbf", false); err != nil {
		return nil, err
	}
	for name, dst := range map[string]*string{"jti": &c.JTI, "sub": &c.Subject, "iss": &c.Issuer} {
		v, ok := c.All[name]
		if !ok {
			continue
		}
		s, isString := v.(string)
		if !isString {
			return nil, fmt.Errorf("%w: claim %q must be a string", ErrMalformed, name)
		}
		*dst = s
	}
	return c, nil
}

func numericDate(all map[string]any, name string, required bool) (time.Time, error) {
	v, ok := all[name]
	if !ok {
		if required {
			return time.Time{}, fmt.Errorf("%w: claim %q is required", ErrMalformed, name)
		}
		return time.Time{}, nil
	}
	n, isNumber := v.(json.Number)
	if !isNumber {
		return time.Time{}, fmt.Errorf("%w: claim %q must be a number", ErrMalformed, name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%w: claim %q is out of range", ErrMalformed, name)
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
