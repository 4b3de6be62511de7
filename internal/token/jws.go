package token

import (
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/jwtd/jwtd/internal/keys"
	"github.com/jwtd/jwtd/internal/strictjson"
)

// MaxTokenBytes bounds a token before any of it is decoded.
const MaxTokenBytes = 8 << 10

// maxJSONDepth bounds the nesting of header and claims objects.
const maxJSONDepth = 16

// JWS is a compact-serialized token whose three segments decoded cleanly.
// Nothing in it has been verified.
type JWS struct {
	Header       Header
	RawHeader    []byte // the header's JSON, as sent
	Payload      []byte // the payload's bytes, as sent
	SigningInput string // header "." payload, still encoded
	Signature    []byte
}

// Header holds the header members jwtd reads, and the first member it
// never honours, if any, for CheckHeader.
type Header struct {
	Alg     string
	Kid     string
	HasKid  bool
	Typ     string
	Refused string // the first of refusedHeaders present, or ""
}

// Decode splits a compact JWS and decodes its segments: at most
// MaxTokenBytes, exactly three segments, strict unpadded base64url, and a
// header that is a JSON object without duplicate keys. It does not judge the
// header's content; CheckHeader does.
func Decode(tok string) (*JWS, error) {
	if len(tok) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: token is longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	if strings.HasPrefix(strings.TrimSpace(tok), "{") {
		return nil, fmt.Errorf("%w: JWS JSON serialization is not accepted; send the compact form", ErrMalformed)
	}
	if n := strings.Count(tok, "."); n != 2 {
		return nil, fmt.Errorf("%w: a token has 3 dot-separated segments, this one has %d", ErrMalformed, n+1)
	}
	h, rest, _ := strings.Cut(tok, ".")
	p, s, _ := strings.Cut(rest, ".")
	if h == "" {
		return nil, fmt.Errorf("%w: empty header segment", ErrMalformed)
	}
	if s == "" {
		return nil, fmt.Errorf("%w: missing signature", ErrMalformed)
	}
	header, err := decodeSegment("header", h)
	if err != nil {
		return nil, err
	}
	payload, err := decodeSegment("payload", p)
	if err != nil {
		return nil, err
	}
	sig, err := decodeSegment("signature", s)
	if err != nil {
		return nil, err
	}
	j := &JWS{RawHeader: header, Payload: payload, SigningInput: tok[:len(h)+1+len(p)], Signature: sig}
	if err := j.Header.read(header); err != nil {
		return nil, err
	}
	return j, nil
}

// read reads the header in one pass: alg (required), kid and typ, which
// must be strings, and whether a member jwtd refuses is present.
func (h *Header) read(header []byte) error {
	hasAlg := false
	err := strictjson.Walk(header, maxJSONDepth, func(name string, v jsontext.Value) error {
		var dst *string
		switch name {
		case "alg":
			dst, hasAlg = &h.Alg, true
		case "kid":
			dst, h.HasKid = &h.Kid, true
		case "typ":
			dst = &h.Typ
		default:
			if h.Refused == "" && slices.Contains(refusedHeaders, name) {
				h.Refused = name
			}
			return nil
		}
		s, ok := strictjson.String(v)
		if !ok {
			return fmt.Errorf("%w: header %q must be a string", ErrMalformed, name)
		}
		*dst = s
		return nil
	})
	switch {
	case errors.Is(err, ErrMalformed):
		return err
	case err != nil:
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	case !hasAlg:
		return fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	return nil
}

// refusedHeaders are header members jwtd never honours: each would let the
// token choose its own key or its own processing rules.
var refusedHeaders = []string{"crit", "jwk", "jku", "x5u", "x5c", "cty"}

// CheckHeader applies jwtd's header policy: a supported algorithm (never
// "none" in any spelling), typ absent or JWT, and none of crit, jwk, jku,
// x5u, x5c or cty (so no nested JWTs, and nothing a token names is ever
// fetched).
func (j *JWS) CheckHeader() error {
	if err := checkTyp(j.Header.Typ); err != nil {
		return err
	}
	if j.Header.Refused != "" {
		return fmt.Errorf("%w: header %q is not accepted", ErrMalformed, j.Header.Refused)
	}
	if strings.EqualFold(j.Header.Alg, "none") {
		return fmt.Errorf("%w: alg none is never accepted", ErrBadSignature)
	}
	if !keys.Supported(j.Header.Alg) {
		return fmt.Errorf("%w: alg %q is not supported", ErrMalformed, j.Header.Alg)
	}
	return nil
}

// VerifyWith checks the signature with k. The token's alg must be exactly
// the key's: an algorithm is pinned to its key, never chosen by the token.
func (j *JWS) VerifyWith(k *keys.Key) error {
	if j.Header.Alg != k.Alg() {
		return fmt.Errorf("%w: token alg %s does not match the key's %s", ErrBadSignature, j.Header.Alg, k.Alg())
	}
	if err := k.Verify(j.SigningInput, j.Signature); err != nil {
		return fmt.Errorf("%w: signature does not verify", ErrBadSignature)
	}
	return nil
}

// decodeSegment decodes strict unpadded base64url. The alphabet is checked
// first because Go's decoder skips CR and LF.
func decodeSegment(name, seg string) ([]byte, error) {
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%w: %s segment has %q, which is not base64url", ErrMalformed, name, c)
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s segment is not canonical base64url", ErrMalformed, name)
	}
	return b, nil
}
