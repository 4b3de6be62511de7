// Package strictjson checks untrusted JSON more strictly than
// encoding/json does: one object, valid UTF-8, bounded depth, and no
// duplicate keys, which encoding/json silently resolves to the last one and
// other parsers to the first (a classic way to make two verifiers disagree).
// The RFC 7493 (I-JSON) checks are jsontext's, from the JSON v2 work
// (github.com/go-json-experiment/json); the depth bound is ours.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"
)

// CheckObject accepts exactly one JSON object of valid UTF-8, nested at most
// maxDepth deep, with no key twice in any object (keys compared after
// unescaping, so "a" and "\u0061" are the same key).
func CheckObject(data []byte, maxDepth int) error {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) > 0 && jsontext.Value(data).IsValid() {
			return errors.New("not a JSON object")
		}
		return errors.New("not valid JSON")
	}
	if depth(trimmed) > maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if !jsontext.Value(data).IsValid() {
		// Say which rule failed: the same text with duplicates allowed.
		if jsontext.Value(data).IsValid(jsontext.AllowDuplicateNames(true)) {
			return errors.New("duplicate key")
		}
		return errors.New("not valid JSON (or not valid UTF-8)")
	}
	return nil
}

// depth is the deepest nesting of objects and arrays in data, skipping
// string contents. It is only a bound: validity is checked separately.
func depth(data []byte) int {
	d, deepest, inString := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}
