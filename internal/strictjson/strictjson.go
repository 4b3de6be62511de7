// Package strictjson checks untrusted JSON more strictly than
// encoding/json does: one object, valid UTF-8, bounded depth, and no
// duplicate keys, which encoding/json silently resolves to the last one and
// other parsers to the first (a classic way to make two verifiers disagree).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// CheckObject accepts exactly one JSON object of valid UTF-8, nested at most
// maxDepth deep, with no key twice in any object (keys compared after
// unescaping, so "a" and "\u0061" are the same key).
func CheckObject(data []byte, maxDepth int) error {
	if !utf8.Valid(data) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not valid JSON")
	}
	if tok != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	if err := checkObject(dec, 1, maxDepth); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// checkObject reads the members of an object whose '{' was just read.
func checkObject(dec *json.Decoder, depth, maxDepth int) error {
	seen := make(map[string]struct{})
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New("not valid JSON")
		}
		key, _ := tok.(string)
		if _, dup := seen[key]; dup {
			return fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = struct{}{}
		if err := checkValue(dec, depth, maxDepth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return errors.New("not valid JSON")
	}
	return nil
}

func checkValue(dec *json.Decoder, depth, maxDepth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not valid JSON")
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxDepth {
		return fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if d == '{' {
		return checkObject(dec, depth+1, maxDepth)
	}
	for dec.More() { // an array
		if err := checkValue(dec, depth+1, maxDepth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return errors.New("not valid JSON")
	}
	return nil
}
