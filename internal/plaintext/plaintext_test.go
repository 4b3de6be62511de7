package plaintext

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"", "callback receiver", "Zürich — 東京 ✓", "a\u200bb"} {
		if err := Check("f", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for s, says := range map[string]string{
		"a\x00b": "U+0000", "a\x1b[31m": "U+001B", "tab\there": "U+0009", "line\n": "U+000A", "del\x7f": "U+007F",
		"c1\u0085": "U+0085", "c1\u009b": "U+009B", "evil\u202egnp.exe": "U+202E", "\u202ax": "U+202A",
		"\u2066x": "U+2066", "x\u2069": "U+2069", "bad\xffutf8": "not valid UTF-8",
	} {
		if err := Check("description", s); err == nil || !strings.Contains(err.Error(), says) || !strings.HasPrefix(err.Error(), "description ") {
			t.Errorf("%q: %v, want an error naming %s", s, err, says)
		}
	}
}
