package strictjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

func TestCheckObject(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{}`, true},
		{`{"a":1,"b":[1,{"c":null}],"d":{"e":"f"}}`, true},
		{` {"a":1} `, true},
		{`{"a":1,"a":2}`, false},
		{`{"a":1,"\u0061":2}`, false},
		{`{"x":{"a":1,"a":2}}`, false},
		{`{"x":[{"a":1,"a":2}]}`, false},
		{`[]`, false},
		{`"s"`, false},
		{``, false},
		{`{`, false},
		{`{"a":1}{}`, false},
		{`{"a":1} x`, false},
		{"{\"a\":\"\xff\"}", false},
		{`{"d":` + strings.Repeat("[", 16) + strings.Repeat("]", 16) + `}`, false},
		{`{"d":` + strings.Repeat("[", 14) + strings.Repeat("]", 14) + `}`, true},
	} {
		if err := CheckObject([]byte(tc.in), 16); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestUnmarshal(t *testing.T) {
	type body struct {
		Name string `json:"name"`
		N    int    `json:"n"`
		Any  any    `json:"any"`
	}
	for _, tc := range []struct {
		in, err string // err: a part of the error, "" for none
	}{
		{`{"name":"a","n":1}`, ""},
		{`{"name":"a","n":1,"any":{"x":[1,2]}}`, ""},
		{`{"Name":"a"}`, `unknown member /Name`}, // names match exactly
		{`{"name":"a","name":"b"}`, "duplicate key"},
		{`{"any":{"x":1,"x":2}}`, "duplicate key"},
		{`{"name":1}`, "/name: a JSON number is not accepted here"},
		{`{"n":"1"}`, "/n: a JSON string is not accepted here"},
		{`{"other":1}`, "unknown member /other"},
		{`{"name":"a"} {}`, "not valid JSON"},
		{"{\"name\":\"\xff\"}", "UTF-8"},
		{`[]`, "not a JSON object"},
		{``, "not valid JSON"},
		{`{"any":` + strings.Repeat("[", 20) + strings.Repeat("]", 20) + `}`, "nested deeper than 16"},
	} {
		var b body
		err := Unmarshal([]byte(tc.in), &b, 16)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.err)
		}
	}
}

// Deep nesting is refused before it is decoded, and the pointer to where a
// long name fails is cut short: the message would otherwise be as long as
// the body.
func TestWalkBoundsItsErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"any":` + strings.Repeat("[", 12000):              "nested deeper than 16",
		`{"` + strings.Repeat("a", 12000) + `":x}`:          "not valid JSON (or not valid UTF-8) at /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…",
		`{"a":[{"b":[` + strings.Repeat("1,", 20) + `1]}]}`: "",
	} {
		err := CheckObject([]byte(in), 16)
		if fmt.Sprint(err) != want && !(want == "" && err == nil) {
			t.Errorf("%.40s…: %.300v, want %q", in, err, want)
		}
	}
}

func TestWalk(t *testing.T) {
	var names, values []string
	err := Walk([]byte(` {"a":1, "b":{"c":[true]},"\u0064":"x\"y"} `), 16, func(name string, v jsontext.Value) error {
		names, values = append(names, name), append(values, string(v))
		return nil
	})
	if err != nil || strings.Join(names, ",") != "a,b,d" || strings.Join(values, " ") != `1 {"c":[true]} "x\"y"` {
		t.Errorf("%v %q %q", err, names, values)
	}
	// The member function's error stops the walk as it is.
	stop := errors.New("stop")
	if err := Walk([]byte(`{"a":1,"b":2}`), 16, func(string, jsontext.Value) error { return stop }); err != stop {
		t.Errorf("got %v", err)
	}
	if s, ok := String(jsontext.Value(`"a\u00e9"`)); !ok || s != "aé" {
		t.Errorf("String: %q %v", s, ok)
	}
	if _, ok := String(jsontext.Value(`1`)); ok {
		t.Error("String of a number")
	}
}

// FuzzWalk: Walk and CheckObject agree, and what Walk accepts encoding/json
// decodes with the same members in the same order.
func FuzzWalk(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":{"c":[1,2]}}`, `{"a":1,"a":2}`, `{"\u0061":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var names []string
		err := Walk(data, 16, func(name string, _ jsontext.Value) error {
			names = append(names, name)
			return nil
		})
		if (err == nil) != (CheckObject(data, 16) == nil) {
			t.Fatalf("Walk and CheckObject disagree on %q", data)
		}
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil || len(m) != len(names) {
			t.Fatalf("Walk accepted %q with members %q; encoding/json: %v, %d members", data, names, err, len(m))
		}
	})
}
