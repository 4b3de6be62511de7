// Package phone normalises caller-supplied phone numbers to E.164 with
// libphonenumber's rules (github.com/nyaruka/phonenumbers), so that every
// spelling of one number is one record key and one rate-limit key.
package phone

import (
	"errors"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is returned for anything that is not a valid phone number.
var ErrInvalid = errors.New("not a valid phone number")

// maxLen bounds the input before the parser sees it.
const maxLen = 64

// Normalize returns raw in E.164 ("+14155552671"). A number without a
// leading + is read in defaultRegion (ISO 3166 alpha-2, such as "US"); with
// no default region it must start with +. Errors wrap ErrInvalid and say
// what to change.
func Normalize(raw, defaultRegion string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxLen {
		return "", fmt.Errorf("%w: give 1 to %d characters", ErrInvalid, maxLen)
	}
	region := strings.ToUpper(defaultRegion)
	if !strings.HasPrefix(raw, "+") && region == "" {
		return "", fmt.Errorf("%w: a number without a leading + needs phone.default_region (such as US) to be configured; "+
			"or write it in E.164, such as +14155552671", ErrInvalid)
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w: write it in E.164, such as +14155552671, or as a national number of the default region", ErrInvalid)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// ValidRegion reports whether region is a region libphonenumber knows.
func ValidRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region)) != 0
}

// Normalizer normalises numbers with one default region, remembering the
// most recent valid ones: libphonenumber's regular expressions cost about
// 15 µs and 80 allocations a number, and the same numbers come back (an app
// retries, a user verifies again).
type Normalizer struct {
	region string
	recent *lru.Cache[string, string] // raw → E.164, valid numbers only
}

// NewNormalizer returns a Normalizer for defaultRegion ("" for none)
// remembering up to size numbers (size < 1: 10,000).
func NewNormalizer(defaultRegion string, size int) (*Normalizer, error) {
	if defaultRegion != "" && !ValidRegion(defaultRegion) {
		return nil, fmt.Errorf("phone.default_region %q is not a region libphonenumber knows", defaultRegion)
	}
	if size < 1 {
		size = 10_000
	}
	recent, err := lru.New[string, string](size)
	if err != nil {
		return nil, err
	}
	return &Normalizer{region: defaultRegion, recent: recent}, nil
}

// Normalize is Normalize with the Normalizer's default region.
func (n *Normalizer) Normalize(raw string) (string, error) {
	if e164, ok := n.recent.Get(raw); ok {
		return e164, nil
	}
	e164, err := Normalize(raw, n.region)
	if err == nil && len(raw) <= maxLen {
		// A copy: raw may share the memory of a whole request line.
		n.recent.Add(strings.Clone(raw), e164)
	}
	return e164, err
}
