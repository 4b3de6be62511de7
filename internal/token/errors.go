// Package token mints jwtd's tokens from profiles and verifies tokens under
// jwtd's verification rules, which the JOSE libraries alone do not enforce.
//
// Verification is in two layers. Decode and CheckHeader are the JWS layer:
// size, segments, strict base64url, JSON without duplicate keys, and the
// header members jwtd refuses. Service.Verify adds the key (pinned by kid),
// the signature and the JWT claims (exp required and numeric, iat and nbf not
// in the future, bounded leeway). Any error means reject; errors wrap one of
// the reason sentinels below, whose text is the RFC 7662 reason jwtd reports.
package token

import "errors"

// Reasons a token is rejected. Each error returned by Decode, CheckHeader and
// Verify wraps exactly one of them; the wrapping text is safe to show a
// client (it never holds key material).
var (
	ErrMalformed    = errors.New("malformed")
	ErrBadSignature = errors.New("bad_signature")
	ErrUnknownKid   = errors.New("unknown_kid")
	ErrExpired      = errors.New("expired")
	ErrNotYetValid  = errors.New("not_yet_valid")
	ErrRevoked      = errors.New("revoked")
	ErrUnrecorded   = errors.New("unrecorded")
	// ErrForged is a token that carries the jti of a token jwtd recorded
	// and is not that token: re-signed claims, by a holder of the key.
	ErrForged = errors.New("forged")
	// ErrKeyRetired is a token of a key jwtd had and no longer has.
	ErrKeyRetired = errors.New("key_retired")
)

var reasons = []error{ErrMalformed, ErrBadSignature, ErrUnknownKid, ErrExpired, ErrNotYetValid, ErrRevoked, ErrUnrecorded, ErrForged, ErrKeyRetired}

// IsReason reports whether err says why a token is not active, rather than
// that it could not be checked.
func IsReason(err error) bool {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// Reason returns the reason code of a verification error: "malformed",
// "bad_signature", "unknown_kid", "expired", "not_yet_valid", "revoked",
// "unrecorded", "forged" or "key_retired".
// An error that wraps none of them is reported as malformed.
func Reason(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return ErrMalformed.Error()
}
