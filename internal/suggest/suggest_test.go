package suggest

import "testing"

func TestNearest(t *testing.T) {
	settings := []string{"listen", "data_dir", "log_level", "leeway", "http", "tls", "store", "keys", "profiles"}
	for word, want := range map[string]string{
		"listne":   "listen",   // two letters swapped
		"lisen":    "listen",   // one missing
		"data-dir": "data_dir", // a dash for the underscore
		"Leeway":   "leeway",   // case
		"profile":  "profiles",
		"stor":     "store",
		"key":      "keys",
		"tsl":      "tls",      // swapped, in a three-letter word
		"x":        "",         // too short to guess
		"timeout":  "",         // nothing near
		"tmp":      "",         // two edits in three letters is too far
		"prof":     "profiles", // a beginning
	} {
		if got := Nearest(word, settings); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", word, got, want)
		}
	}
	if got := Nearest("defualt", []string{"appverify", "castlabs", "default"}); got != "default" {
		t.Errorf("defualt: %q", got)
	}
	if got := Nearest("kdi", []string{"kid", "alg", "secret"}); got != "kid" {
		t.Errorf("kdi: %q", got)
	}
}
