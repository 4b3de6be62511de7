package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-viper/mapstructure/v2"

	"github.com/jwtd/jwtd/internal/suggest"
)

// This file turns what the layers of the configuration got wrong into
// jwtd's words: the setting, where its value came from (the file, a
// JWTD_* variable or a flag), the value, and the fix. The checks walk the
// Config type, so a setting added to it is covered with no list to keep.

// origins says where each setting's value came from, for messages.
type origins struct {
	file string            // the configuration file, if one was read
	set  map[string]string // setting → the flag or variable that set it
}

// of describes where key's value came from: "set by JWTD_LEEWAY", "set by
// --leeway", or "in jwtd.yaml".
func (o origins) of(key string) string {
	if by, ok := o.set[key]; ok {
		return "set by " + by
	}
	if o.file != "" {
		return "in " + o.file
	}
	return ""
}

// settingError is one setting's problem.
type settingError struct {
	setting, origin, problem string
}

func (e *settingError) Error() string {
	if e.origin == "" {
		return e.setting + ": " + e.problem
	}
	return e.setting + " (" + e.origin + "): " + e.problem
}

// unknownKeys reports every key of raw that t has no field for, walking
// nested settings, profiles (maps) and lists of keys (slices) alike.
func unknownKeys(raw any, t reflect.Type, path string, o origins) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs []error
	switch t.Kind() {
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return nil // the decoder says what this should have been
		}
		fields := koanfFields(t)
		names := make([]string, 0, len(fields))
		for name := range fields {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, k := range sortedKeys(m) {
			ft, ok := fieldOf(fields, k)
			if !ok {
				errs = append(errs, unknownKey(join(path, k), k, path, names, o))
				continue
			}
			errs = append(errs, unknownKeys(m[k], ft, join(path, k), o)...)
		}
	case reflect.Map:
		if m, ok := raw.(map[string]any); ok {
			for _, k := range sortedKeys(m) {
				errs = append(errs, unknownKeys(m[k], t.Elem(), join(path, k), o)...)
			}
		}
	case reflect.Slice:
		if s, ok := raw.([]any); ok {
			for i, v := range s {
				errs = append(errs, unknownKeys(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i), o)...)
			}
		}
	}
	return errs
}

func unknownKey(key, name, parent string, known []string, o origins) error {
	problem := "no such setting"
	if near := suggest.Nearest(name, known); near != "" {
		problem += "; did you mean " + join(parent, near) + "?"
	} else if parent == "" {
		problem += "; the settings are " + strings.Join(known, ", ")
	} else {
		problem += "; the settings under " + parent + " are " + strings.Join(known, ", ")
	}
	return &settingError{setting: key, origin: o.of(key), problem: problem}
}

// koanfFields maps a struct's setting names to their types, taking in the
// fields of embedded (squashed) structs. A field's setting is named by its
// koanf tag, or else by its name in snake case (the domain packages'
// configuration types, such as token.ProfileSpec, carry no tags).
func koanfFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(f.Tag.Get("koanf"), ",")
		switch {
		case tag == "-":
			continue
		case f.Anonymous && (tag == "" || strings.Contains(opts, "squash")):
			for name, ft := range koanfFields(f.Type) {
				fields[name] = ft
			}
			continue
		case tag == "":
			tag = snakeCase(f.Name)
		}
		fields[tag] = f.Type
	}
	return fields
}

// snakeCase is a Go field's name as a setting: VerifyKeys → verify_keys,
// TTL → ttl, PrivateKeyFile → private_key_file, SHA256 → sha256.
func snakeCase(name string) string {
	var b strings.Builder
	for i, r := range name {
		upper := unicode.IsUpper(r)
		if upper && i > 0 {
			prev := rune(name[i-1])
			nextLower := i+1 < len(name) && unicode.IsLower(rune(name[i+1]))
			if unicode.IsLower(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// matchSetting is the decoder's MatchName: a key names a field by its tag
// or by its snake-case name, in any case, as koanfFields reads them.
func matchSetting(key, field string) bool { return strings.EqualFold(key, snakeCase(field)) }

// fieldOf finds a setting as the decoder does: its exact name, else one
// differing only in case.
func fieldOf(fields map[string]reflect.Type, key string) (reflect.Type, bool) {
	if t, ok := fields[key]; ok {
		return t, true
	}
	for name, t := range fields {
		if strings.EqualFold(name, key) {
			return t, true
		}
	}
	return nil, false
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// typedValues is the decode hook that reads numbers, true/false and
// durations, with jwtd's messages: the value as written and how to write
// it. It runs for every layer: the file's YAML gives numbers and strings,
// the environment and flags give strings.
func typedValues(from, to reflect.Type, data any) (any, error) {
	if to == reflect.TypeFor[time.Duration]() {
		return duration(data)
	}
	s, isString := data.(string)
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		unsigned := to.Kind() >= reflect.Uint
		switch {
		case isString:
			s = strings.TrimSpace(s)
			var err error
			if unsigned {
				_, err = strconv.ParseUint(s, 10, to.Bits())
			} else {
				_, err = strconv.ParseInt(s, 10, to.Bits())
			}
			if errors.Is(err, strconv.ErrRange) {
				return nil, fmt.Errorf("%q is too large for this setting", data)
			}
			if err != nil {
				return nil, fmt.Errorf("%q is not a whole number; write digits only, such as 1024", data)
			}
			return s, nil
		case from.Kind() == reflect.Float32 || from.Kind() == reflect.Float64:
			if f := reflect.ValueOf(data).Float(); f != math.Trunc(f) {
				return nil, fmt.Errorf("%v is not a whole number; write digits only, such as %v", data, math.Round(f))
			}
		}
		if unsigned && (from.Kind() >= reflect.Int && from.Kind() <= reflect.Int64) && reflect.ValueOf(data).Int() < 0 {
			return nil, fmt.Errorf("%v is negative; write 0 or more", data)
		}
	case reflect.Struct, reflect.Map:
		if from.Kind() != reflect.Map && data != nil {
			return nil, fmt.Errorf("%s is not %s", show(data), expected(to))
		}
	case reflect.Bool:
		if isString {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("%q is not true or false", data)
			}
			return b, nil
		}
	}
	return data, nil
}

// duration reads a duration. A bare number other than 0 is refused, from
// any layer: YAML reads "leeway: 30" as the integer 30, which would
// otherwise mean 30 nanoseconds, and the same 30 from JWTD_LEEWAY or
// --leeway is the same mistake.
func duration(data any) (any, error) {
	var number string
	switch v := reflect.ValueOf(data); v.Kind() {
	case reflect.String:
		s := strings.TrimSpace(v.String())
		if d, err := time.ParseDuration(s); err == nil {
			return d, nil
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil || s == "" {
			return nil, fmt.Errorf("%q is not a duration; write one such as 30s, 500ms, 5m, 1h30m (units: ms, s, m, h)", data)
		}
		number = s
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		number = strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		number = strconv.FormatUint(v.Uint(), 10)
	case reflect.Float32, reflect.Float64:
		number = strconv.FormatFloat(v.Float(), 'f', -1, 64)
	default:
		return data, nil // the decoder says what this should have been
	}
	if f, _ := strconv.ParseFloat(number, 64); f == 0 {
		return time.Duration(0), nil // zero is zero in any unit
	}
	if _, isString := data.(string); isString {
		number = strconv.Quote(number)
	}
	n := strings.Trim(number, `"`)
	return nil, fmt.Errorf("%s has no unit; write a duration such as %ss, %sms, %sm or %sh", number, n, n, n, n)
}

// mapIndex matches a map key in the decoder's names, "profiles[default]",
// written as in YAML, "profiles.default"; list indexes ("keys[0]") stay.
var mapIndex = regexp.MustCompile(`\[([^\]]*[^\]0-9][^\]]*)\]`)

// decodeErrors rewrites the decoder's errors, each naming its setting,
// where its value came from, and the problem.
func decodeErrors(err error, o origins) error {
	var out []error
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		de, ok := err.(*mapstructure.DecodeError)
		if !ok {
			if inner := errors.Unwrap(err); inner != nil {
				walk(inner) // "decoding failed due to the following error(s)"
				return
			}
			out = append(out, err)
			return
		}
		if inner := de.Unwrap(); inner != nil {
			if _, nested := inner.(interface{ Unwrap() []error }); nested {
				walk(inner)
				return
			}
		}
		key := mapIndex.ReplaceAllString(settingPath(de.Name()), ".$1")
		out = append(out, &settingError{setting: key, origin: o.of(key), problem: problem(de.Unwrap())})
	}
	walk(err)
	return errors.Join(out...)
}

// settingPath is a decoder's name of a value, "profiles[default].TTL",
// with its field names as settings: "profiles[default].ttl". Map keys, in
// brackets, stay as written.
func settingPath(name string) string {
	var b strings.Builder
	for name != "" {
		i := strings.IndexByte(name, '[')
		if i < 0 {
			i = len(name)
		}
		for j, field := range strings.Split(name[:i], ".") {
			if j > 0 {
				b.WriteByte('.')
			}
			b.WriteString(snakeCase(field))
		}
		name = name[i:]
		if end := strings.IndexByte(name, ']'); end >= 0 {
			b.WriteString(name[:end+1])
			name = name[end+1:]
		} else {
			b.WriteString(name)
			name = ""
		}
	}
	return b.String()
}

// problem says what is wrong with a value the decoder could not use.
func problem(err error) string {
	var pe *mapstructure.ParseError
	var ue *mapstructure.UnconvertibleTypeError
	switch {
	case errors.As(err, &pe):
		return fmt.Sprintf("%s is not %s", show(pe.Value), expected(pe.Expected.Type()))
	case errors.As(err, &ue):
		return fmt.Sprintf("%s is not %s", show(ue.Value), expected(ue.Expected.Type()))
	}
	return err.Error() // typedValues's, already in jwtd's words
}

// show writes a value as the person wrote it, or says what it is.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case map[string]any:
		return "a mapping (key: value lines)"
	case []any:
		return "a list"
	case nil:
		return "empty"
	}
	return fmt.Sprint(v)
}

// expected names what a setting of type t takes.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number; write digits only, such as 1024"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "text; write a single value"
	case reflect.Slice, reflect.Array:
		return "a list; write [a, b] or one \"- item\" a line"
	case reflect.Map, reflect.Struct:
		return "a mapping; write its settings as key: value lines under it"
	}
	return "a " + t.String()
}

// Paths lists every setting of the configuration as a dotted path: "*"
// stands for the name of a map entry ("profiles.*.ttl"), "[]" for an
// element of a list ("keys[].kid"). A map or list of plain values is one
// setting ("ratelimit.routes", "ratelimit.trusted_proxies").
func Paths() []string {
	var out []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Struct:
			for name, ft := range koanfFields(t) {
				walk(ft, join(path, name))
			}
		case t.Kind() == reflect.Map && isStruct(t.Elem()):
			walk(t.Elem(), path+".*")
		case t.Kind() == reflect.Slice && isStruct(t.Elem()):
			walk(t.Elem(), path+"[]")
		default:
			out = append(out, path)
		}
	}
	walk(reflect.TypeFor[Config](), "")
	slices.Sort(out)
	return out
}

func isStruct(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct
}

// yamlLine finds the line the YAML parser names: "yaml: line 3: …", or
// "line 1: …" among a type error's lines.
var yamlLine = regexp.MustCompile(`(?m)line (\d+): (.*)$`)

// yamlError says what the YAML parser could not read in the configuration
// file, in jwtd's words: the file, the line the parser names (where the
// construct it could not finish starts, so the mistake can be on a line
// after it), the likely mistake and how settings are written. The parser's
// own words are kept only for a mistake not foreseen here.
func yamlError(path string, text []byte, err error) error {
	const how = "write each setting as key: value, a colon and a space after the key, and nest a setting " +
		"by indenting it with spaces under its section (http:, then \"  max_body_bytes: 1024\" on the next line)"
	said := strings.TrimPrefix(err.Error(), "yaml: ")
	said = strings.TrimSpace(strings.TrimPrefix(said, "unmarshal errors:"))
	where := path
	if m := yamlLine.FindStringSubmatch(said); m != nil {
		where += ", near line " + m[1]
		n, _ := strconv.Atoi(m[1])
		if lines := strings.Split(string(text), "\n"); n >= 1 && n <= len(lines) && strings.TrimSpace(lines[n-1]) != "" {
			where += fmt.Sprintf(" (%q)", strings.TrimRight(lines[n-1], "\r"))
		}
		said = m[2]
	}
	var mistake string
	switch {
	case strings.Contains(said, "cannot unmarshal !!seq"):
		mistake = "a list where settings were expected"
	case strings.Contains(said, "cannot unmarshal !!"):
		mistake = "a value where settings were expected; is the colon after a key missing?"
	case strings.Contains(said, "already defined"):
		mistake = "a setting given twice (" + strings.TrimPrefix(said, "mapping key ") + "); keep one"
	case strings.Contains(said, "cannot start any token") && bytes.Contains(text, []byte("\t")):
		mistake = "a tab; indent with spaces only"
	case strings.Contains(said, "could not find expected ':'"):
		mistake = "a key without its colon"
	case strings.Contains(said, "mapping values are not allowed"):
		mistake = "a colon and a space inside a value (put the value in quotes), or a key indented deeper than the one before it"
	case strings.Contains(said, "did not find expected key"):
		mistake = "a key indented less than the ones beside it, or a list item (- x) among settings"
	case strings.Contains(said, "unexpected end of stream"):
		mistake = "the file ends inside a quoted value or a bracket; close it"
	default:
		mistake = "not YAML jwtd can read (the YAML parser says: " + said + ")"
	}
	return fmt.Errorf("%s: %s; %s", where, mistake, how)
}
