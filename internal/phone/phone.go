// Package phone normalises caller-supplied phone numbers to E.164 with
// libphonenumber's rules (github.com/nyaruka/phonenumbers), so that every
// spelling of one number is one record key and one rate-limit key.
package phone

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is returned for anything that is not a valid phone number.
var ErrInvalid = errors.New("not a valid phone number")

// maxLen bounds the input before the parser sees it.
const maxLen = 64

// Normalize returns raw in E.164 ("+14155552671"). A number without a
// leading + is read in defaultRegion (ISO 3166 alpha-2, such as "US"); with
// no default region it must start with +.
func Normalize(raw, defaultRegion string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > maxLen {
		return "", ErrInvalid
	}
	region := strings.ToUpper(defaultRegion)
	if !strings.HasPrefix(raw, "+") && region == "" {
		return "", ErrInvalid
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", ErrInvalid
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// ValidRegion reports whether region is a region libphonenumber knows.
func ValidRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(strings.ToUpper(region)) != 0
}
