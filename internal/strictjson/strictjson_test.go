package strictjson

import (
	"encoding/json"
	"strings"
	"testing"
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

// FuzzCheckObject: whatever CheckObject accepts, encoding/json decodes as an
// object with as many keys as the text has top-level members.
func FuzzCheckObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1,"b":{"c":[1,2]}}`, `{"a":1,"a":2}`, `[1]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if CheckObject(data, 16) != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
		}
	})
}
