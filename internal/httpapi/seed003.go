package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/strictjson"
	"github.com/jwtd/jwtd/internal/token"
)

// readSeedBody reads a seed 003 request body: Content-Type application/json
// (parameters such as charset are fine) and one JSON object without
// duplicate keys.
func (s *Server) readSeedBody(r *http.Request) (map[string]json.RawMessage, *seedError) {
	body, berr := s.readJSONBody(r, 8)
	switch {
	case berr != nil && berr.status == http.StatusUnsupportedMediaType:
		return nil, errSeedContentType
	case berr != nil:
		return nil, &seedError{berr.status, berr.status, berr.msg}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, seedBadRequest("Malformed JSON body")
	}
	return fields, nil
}

// stringField reads a string member; missing is reported as ok == false.
func stringField(fields map[string]json.RawMessage, name string) (v string, ok bool, err *seedError) {
	raw, ok := fields[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", true, seedBadRequest(name + " must be a string")
	}
	return v, true, nil
}

// handleGenerateToken is seed 003's POST /generateToken:
// {"user_data": "<string>"} → {"JWT Token": "<token>"}, castlabs profile.
func (s *Server) handleGenerateToken() http.Handler {
	type response struct {
		Token string `json:"JWT Token"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.limit(w, r, "generate", "", true) {
			return
		}
		fields, serr := s.readSeedBody(r)
		if serr != nil {
			writeSeedError(w, serr)
			return
		}
		data, ok, serr := stringField(fields, "user_data")
		if serr == nil && !ok {
			serr = seedBadRequest("Missing user_data in POST request body")
		}
		if serr != nil {
			writeSeedError(w, serr)
			return
		}
		raw, _ := json.Marshal(data)
		issued, err := s.mint(r, "castlabs", token.Request{Data: raw})
		if err != nil {
			status, title, fault := httpError(err)
			if fault {
				s.log.Error(title, "request_id", RequestID(r.Context()), "route", r.Pattern, "err", err)
			}
			writeSeedError(w, &seedError{status, status, title})
			return
		}
		writeJSON(w, http.StatusOK, "application/json", response{Token: issued.Token})
	})
}

// verifyResponse keeps seed 003's member names and order. Header and Claims
// are the token's own JSON, key order kept.
type verifyResponse struct {
	Header   json.RawMessage `json:"Header"`
	Claims   json.RawMessage `json:"Claims"`
	Verified bool            `json:"Signature Verification"`
	Error    string          `json:"Error,omitempty"`
}

// handleVerifyToken is seed 003's GET (and POST) /verifyToken:
// {"Token", "Signing_key"} → {"Header", "Claims", "Signature Verification"}.
// Signing_key is an HMAC secret (its UTF-8 bytes), a PEM public key or a JWK
// (as a string or a JSON object); the token's alg must fit it.
func (s *Server) handleVerifyToken() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.limit(w, r, "verify", "", true) {
			return
		}
		fields, serr := s.readSeedBody(r)
		if serr != nil {
			writeSeedError(w, serr)
			return
		}
		tok, ok, serr := stringField(fields, "Token")
		if serr == nil && !ok {
			serr = errSeedMissingToken
		}
		if serr != nil {
			writeSeedError(w, serr)
			return
		}
		var key []byte
		switch raw := fields["Signing_key"]; {
		case len(raw) == 0 || string(raw) == "null":
			writeSeedError(w, errSeedMissingKey)
			return
		case raw[0] == '{':
			key = raw
		default:
			k, _, serr := stringField(fields, "Signing_key")
			if serr != nil {
				writeSeedError(w, seedBadRequest("Signing_key must be a string or a JWK object"))
				return
			}
			key = []byte(k)
		}

		j, err := token.Decode(tok)
		if err == nil {
			err = strictjson.CheckObject(j.Payload, 16)
		}
		if err != nil {
			writeSeedError(w, seedBadRequest("Malformed token: "+err.Error()))
			return
		}
		resp := verifyResponse{Header: j.RawHeader, Claims: j.Payload}
		if err := s.verifyWithCallerKey(j, key); err != nil {
			s.log.Debug("verifyToken: not verified", "request_id", RequestID(r.Context()), "reason", token.Reason(err), "detail", err.Error())
			s.metrics.Verified(token.Reason(err))
			resp.Error = err.Error()
		} else {
			s.metrics.Verified("active")
			resp.Verified = true
		}
		writeJSON(w, http.StatusOK, "application/json", resp)
	})
}

// verifyWithCallerKey applies the header policy, checks the signature with
// the caller's key (which must fit the token's alg), then the time claims
// the token has: a signature over an expired token does not make it good.
// exp is not required, since the seed's own tokens have none.
func (s *Server) verifyWithCallerKey(j *token.JWS, key []byte) error {
	if err := j.CheckHeader(); err != nil {
		return err
	}
	k, err := keys.ForVerify(key, j.Header.Alg)
	if err != nil {
		return fmt.Errorf("%w: Signing_key: %v", token.ErrBadSignature, err)
	}
	if err := j.VerifyWith(k); err != nil {
		return err
	}
	_, err = s.tokens().CheckClaims(j, false)
	return err
}
