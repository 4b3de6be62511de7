// Package strictjson reads untrusted JSON more strictly than encoding/json
// does, in the same pass as reading it: one object, valid UTF-8, bounded
// depth, no duplicate member names (which encoding/json silently resolves to
// the last one and other parsers to the first, a classic way to make two
// verifiers disagree), and names matched case-sensitively. The RFC 7493
// (I-JSON) checks are jsontext's, from the JSON v2 work of Go's maintainers
// (github.com/go-json-experiment/json); the depth bound is ours.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Unmarshal decodes data, which must be one JSON object nested at most
// maxDepth deep, into the struct v: member names match field names exactly,
// a member no field names is refused, and so is a name twice in any object.
// Errors say what is wrong in words a client can act on.
func Unmarshal(data []byte, v any, maxDepth int) error {
	if err := checkObject(data); err != nil {
		return err
	}
	if deeper(data, maxDepth) {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	return explain(json.Unmarshal(data, v, json.RejectUnknownMembers(true)))
}

// Walk reads data as one JSON object under the same rules as Unmarshal and
// calls member with each top-level member's name and value, in order. The
// value is the member's JSON as sent, already checked, and valid only until
// member returns. An error from member stops the walk and is returned as it
// is.
func Walk(data []byte, maxDepth int, member func(name string, value jsontext.Value) error) error {
	if err := checkObject(data); err != nil {
		return err
	}
	d := decoders.Get().(*decoder)
	defer d.put()
	d.r.Reset(data)
	d.dec.Reset(&d.r)
	if _, err := d.dec.ReadToken(); err != nil { // '{', checked by checkObject
		return explain(err)
	}
	for d.dec.PeekKind() != '}' {
		raw, err := d.dec.ReadValue()
		if err != nil {
			return explain(err)
		}
		name := unquote(raw) // before the next read, which may reuse raw's bytes
		// Only nested values are scanned for depth, before they are read:
		// most members are strings and numbers.
		if k := d.dec.PeekKind(); (k == '{' || k == '[') && deeper(data[d.dec.InputOffset():], maxDepth-1) {
			return fmt.Errorf("nested deeper than %d", maxDepth)
		}
		value, err := d.dec.ReadValue()
		if err != nil {
			return explain(err)
		}
		if err := member(name, value); err != nil {
			return err
		}
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return explain(err)
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return errors.New("not valid JSON: text after the object")
	}
	return nil
}

// CheckObject accepts exactly one JSON object of valid UTF-8, nested at most
// maxDepth deep, with no name twice in any object (names compared after
// unescaping, so "a" and "\u0061" are the same name).
func CheckObject(data []byte, maxDepth int) error {
	return Walk(data, maxDepth, func(string, jsontext.Value) error { return nil })
}

// decoder is a reusable jsontext.Decoder: one per Walk would allocate its
// buffers and name sets every time.
type decoder struct {
	r   bytes.Reader
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

func (d *decoder) put() {
	d.r.Reset(nil)
	d.dec.Reset(&d.r)
	decoders.Put(d)
}

// String returns the text of v when v is a JSON string, checked already (a
// value Walk passed on).
func String(v jsontext.Value) (string, bool) {
	if v.Kind() != '"' {
		return "", false
	}
	return unquote(v), true
}

// knownNames are the member names jwtd reads, so that reading them
// allocates nothing.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"alg", "kid", "typ", "crit", "jwk", "jku", "x5u", "x5c", "cty", // headers
		"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "phn", "xid", "payload", "data", // claims
		"Token", "Signing_key", "user_data", // seed 003 bodies
	} {
		m[n] = n
	}
	return m
}()

// unquote turns a member name as sent (a JSON string) into its text. Most
// names have no escapes, and need no more than a conversion.
func unquote(raw jsontext.Value) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		if n, ok := knownNames[string(raw[1:len(raw)-1])]; ok {
			return n
		}
		return string(raw[1 : len(raw)-1])
	}
	b, err := jsontext.AppendUnquote(nil, raw)
	if err != nil { // unreachable: the decoder checked it
		return ""
	}
	return string(b)
}

// checkObject requires an object before anything is decoded.
func checkObject(data []byte) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		// Told apart by the first byte only: validating a body that is
		// refused anyway would cost its whole length (a milliseconds for
		// 16 KiB of nesting).
		if len(trimmed) > 0 && strings.IndexByte(`["-0123456789tfn`, trimmed[0]) >= 0 {
			return errors.New("not a JSON object")
		}
		return errors.New("not valid JSON")
	}
	return nil
}

// maxPointer bounds the JSON pointer an error message quotes.
const maxPointer = 64

// explain rewords jsontext's and json's errors for a client: which rule
// failed and where.
func explain(err error) error {
	if err == nil {
		return nil
	}
	where := ""
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		where = string(se.JSONPointer)
	case errors.As(err, &syn):
		where = string(syn.JSONPointer)
	}
	if len(where) > maxPointer {
		// Deep nesting or a long name would make the message, and the
		// answer, as long as the body.
		where = strings.ToValidUTF8(where[:maxPointer], "") + "…"
	}
	at := ""
	if where != "" {
		at = " at " + where
	}
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return fmt.Errorf("duplicate key%s", at)
	case errors.Is(err, json.ErrUnknownName):
		return fmt.Errorf("unknown member %s", where)
	case se != nil && se.JSONKind != 0 && se.GoType != nil:
		return fmt.Errorf("%s: a JSON %s is not accepted here", where, kindName(se.JSONKind))
	case se != nil && se.Err != nil:
		return fmt.Errorf("%s: %v", where, se.Err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: unexpected end of input")
	}
	return fmt.Errorf("not valid JSON (or not valid UTF-8)%s", at)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

// deeper reports whether the JSON value at the start of data (after any
// separator bytes) nests objects and arrays more than limit deep, skipping
// string contents. It stops where that value ends, or as soon as it knows:
// a deep value is refused before a decoder spends its time on it. It is only
// a bound: validity is checked separately.
func deeper(data []byte, limit int) bool {
	d, inString := 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if d++; d > limit {
				return true
			}
		case c == '}' || c == ']':
			if d--; d <= 0 {
				return false
			}
		}
	}
	return false
}
