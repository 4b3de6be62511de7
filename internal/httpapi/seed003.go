package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/jwtd/jwtd/internal/mint"
	"github.com/jwtd/jwtd/internal/ratelimit"
	"github.com/jwtd/jwtd/internal/strictjson"
	"github.com/jwtd/jwtd/internal/token"
)

// readSeedBody reads a seed 003 body, one JSON object, and hands each
// member to member. Members the seed did not know are ignored, as the seed
// ignored them.
func (s *Server) readSeedBody(r *http.Request, member func(name string, v jsontext.Value) error) error {
	body, err := s.readBody(r, "application/json", errContentType, tokenBodyBytes)
	if err != nil {
		return err
	}
	if err := strictjson.Walk(body, seedBodyDepth, member); err != nil {
		if _, ok := err.(*apiError); ok {
			return err
		}
		return withDetail(errMalformedJSON, "Malformed JSON body: "+err.Error())
	}
	return nil
}

// seedString reads a string member; JSON null is as good as missing.
func seedString(v jsontext.Value, dst *string, present *bool, name string) error {
	if v.Kind() == 'n' {
		return nil
	}
	text, ok := strictjson.String(v)
	if !ok {
		return withDetail(errInvalidBody, name+" must be a string")
	}
	*dst, *present = text, true
	return nil
}

// handleGenerateToken is seed 003's POST /generateToken:
// {"user_data": "<string>"} → {"JWT Token": "<token>"}, castlabs profile.
// The body is read once the request has passed its limits, as the seed
// did: a refused client costs no parsing.
func (s *Server) handleGenerateToken(w http.ResponseWriter, r *http.Request) error {
	minted, err := s.Minter.Mint(r.Context(), mint.Request{
		Profile: "castlabs", ClientIP: s.ClientIP.Resolve(r), Limits: "generate",
		ReadData: func(limit ratelimit.Decision) (json.RawMessage, error) {
			setRateLimitHeaders(w, limit)
			return s.readUserData(r)
		},
	})
	if err != nil {
		return err
	}
	b := append(make([]byte, 0, len(minted.Token)+20), `{"JWT Token":"`...)
	b = append(b, minted.Token...) // base64url and dots: nothing to escape
	writeBody(w, http.StatusOK, "application/json", append(b, "\"}\n"...))
	return nil
}

// readUserData reads /generateToken's body: its user_data, as the JSON
// string that goes into the token.
func (s *Server) readUserData(r *http.Request) (json.RawMessage, error) {
	var data string
	var has bool
	err := s.readSeedBody(r, func(name string, v jsontext.Value) error {
		if name == "user_data" {
			return seedString(v, &data, &has, name)
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, err
	case !has:
		return nil, errMissingUserData
	}
	return appendString(nil, data), nil
}

// handleVerifyToken is seed 003's GET (and POST) /verifyToken:
// {"Token", "Signing_key"} → {"Header", "Claims", "Signature Verification"},
// plus "Error" when it does not verify. Signing_key is an HMAC secret (its
// UTF-8 bytes), a PEM public key or a JWK (as a string or a JSON object).
func (s *Server) handleVerifyToken(w http.ResponseWriter, r *http.Request) error {
	// Limited before the body is read, as the seed did: a refused client
	// costs no parsing.
	d, err := s.Limiter.Check(r.Context(), s.opts.VerifyLimits, ratelimit.Caller{IP: s.ClientIP.Resolve(r)}, "")
	if err != nil {
		return err
	}
	setRateLimitHeaders(w, d)
	var tok, keyText string
	var key []byte
	var hasTok, hasKey bool
	var badKey error // reported after a missing Token, as the seed did
	err = s.readSeedBody(r, func(name string, v jsontext.Value) error {
		switch {
		case name == "Token":
			return seedString(v, &tok, &hasTok, name)
		case name != "Signing_key" || v.Kind() == 'n':
		case v.Kind() == '{':
			key, hasKey = append([]byte(nil), v...), true // valid only during the walk
		case v.Kind() == '"':
			return seedString(v, &keyText, &hasKey, name)
		default:
			badKey = errKeyType
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case !hasTok:
		return errMissingToken
	case badKey != nil:
		return badKey
	case !hasKey:
		return errMissingKey
	}
	if key == nil {
		key = []byte(keyText)
	}
	checked, err := s.Tokens().VerifyWithKey(r.Context(), tok, key, s.Store.ByJTI)
	if err != nil {
		return err // a token that does not read, a private key, or no verdict
	}
	reason := "active"
	if checked.Err != nil {
		reason = token.Reason(checked.Err)
		s.Logger.Debug("verifyToken: not verified", "request_id", RequestID(r.Context()), "reason", reason, "detail", checked.Err.Error())
	}
	s.Metrics.Verified(reason)

	// Seed 003's member names and order; Header and Claims are the token's
	// own JSON, key order kept.
	b := append(make([]byte, 0, len(checked.Header)+len(checked.Claims)+96), `{"Header":`...)
	b = appendCompact(b, checked.Header)
	b = append(b, `,"Claims":`...)
	b = appendCompact(b, checked.Claims)
	b = append(b, `,"Signature Verification":`...)
	b = strconv.AppendBool(b, checked.Err == nil)
	if checked.Err != nil {
		b = append(b, `,"Error":`...)
		b = appendString(b, checked.Err.Error())
	}
	writeBody(w, http.StatusOK, "application/json", append(b, "}\n"...))
	return nil
}

// appendCompact appends JSON that was checked already, without the
// whitespace a token's author may have put in it.
func appendCompact(b []byte, v []byte) []byte {
	if !bytes.ContainsAny(v, " \t\r\n") {
		return append(b, v...)
	}
	buf := bytes.NewBuffer(b)
	if json.Compact(buf, v) != nil {
		return append(b, v...) // unreachable: v was checked
	}
	return buf.Bytes()
}
