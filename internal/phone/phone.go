// Package phone normalises caller-supplied phone numbers to E.164 with
// libphonenumber's rules (github.com/nyaruka/phonenumbers), so that every
// spelling of one number is one record key and one rate-limit key.
package phone

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

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
	if err := checkCharacters(raw); err != nil {
		return "", err
	}
	region := strings.ToUpper(defaultRegion)
	if !strings.HasPrefix(raw, "+") && region == "" {
		return "", fmt.Errorf("%w: a number without a leading + needs phone.default_region (such as US) to be configured; "+
			"or write it in E.164, such as +14155552671", ErrInvalid)
	}
	num, err := phonenumbers.Parse(raw, region)
	if err != nil || !phonenumbers.IsValidNumber(num) {
		return "", invalidNumber(num, err, region, strings.HasPrefix(raw, "+"))
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}

// checkCharacters refuses, before libphonenumber reads raw, what it would
// read into another number than the one written: it takes letters for
// keypad digits (+1415abc2671 becomes +14152222671), drops an extension
// (x12, ext. 12, #12, ;ext=12) and skips a second or misplaced +. Digits, a
// leading +, and the spaces, dashes, dots and parentheses people write
// between groups pass.
func checkCharacters(raw string) error {
	const form = "write the number in E.164, such as +14155552671 (spaces, dashes, dots and parentheses between digits are fine)"
	pos := 0
	for i, r := range raw {
		pos++
		switch {
		case r >= '0' && r <= '9', r == ' ', r == '-', r == '.', r == '(', r == ')':
		case r == '+' && i == 0:
		case r == '+':
			return fmt.Errorf("%w: a + may only start the number, and character %d is another +; %s", ErrInvalid, pos, form)
		case unicode.IsLetter(r):
			return fmt.Errorf("%w: character %d is the letter %q, and a phone number is digits: jwtd reads no keypad letters "+
				"and takes no extension (x12, ext 12); %s", ErrInvalid, pos, r, form)
		case strings.ContainsRune("#;,*", r):
			return fmt.Errorf("%w: character %d, %q, is not part of a phone number (jwtd takes no extension or dialling pause, "+
				"such as #12, ;ext=12 or ,12); %s", ErrInvalid, pos, r, form)
		default:
			return fmt.Errorf("%w: character %d, %q, is not part of a phone number; %s", ErrInvalid, pos, r, form)
		}
	}
	return nil
}

// invalidNumber says why libphonenumber refused a number and how to write
// it: in E.164 always, or as a national number when a default region is
// configured and the number was written without +.
func invalidNumber(num *phonenumbers.PhoneNumber, parseErr error, region string, international bool) error {
	why := "it is not a valid number"
	if parseErr == nil {
		cc := num.GetCountryCode()
		switch phonenumbers.IsPossibleNumberWithReason(num) {
		case phonenumbers.INVALID_COUNTRY_CODE:
			why = fmt.Sprintf("no country has the calling code %d", cc)
		case phonenumbers.TOO_SHORT:
			why = fmt.Sprintf("it is too short for a number of country code %d", cc)
		case phonenumbers.TOO_LONG:
			why = fmt.Sprintf("it is too long for a number of country code %d", cc)
		default:
			why = fmt.Sprintf("it is not a number in use in country code %d", cc)
		}
	} else if errors.Is(parseErr, phonenumbers.ErrInvalidCountryCode) {
		why = "it does not start with a calling code any country has"
	}
	fix := "write it in E.164: +, the country code, then the number, such as +14155552671"
	if region != "" && !international {
		national := ""
		if ex := phonenumbers.GetExampleNumber(region); ex != nil {
			national = ", such as " + phonenumbers.Format(ex, phonenumbers.NATIONAL)
		}
		fix = fmt.Sprintf("write it as a national number of %s (phone.default_region)%s, or in E.164, such as +14155552671", region, national)
	}
	return fmt.Errorf("%w: %s; %s", ErrInvalid, why, fix)
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
