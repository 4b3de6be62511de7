// Package plaintext checks free text that people will read (an outcome's
// description, a token's subject): no control characters, which can
// truncate, colour or rewrite a terminal line or a log, and no
// bidirectional overrides or isolates, which make text display as other
// text (the "Trojan Source" trick).
package plaintext

import (
	"fmt"
	"unicode/utf8"
)

// Check returns an error naming field and the first character it refuses:
// invalid UTF-8, a C0 or C1 control character (tab included: none of the
// fields it guards is laid out), DEL, or one of U+202A–U+202E (embeddings
// and overrides) and U+2066–U+2069 (isolates).
func Check(field, s string) error {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !utf8.ValidString(s[i:min(i+utf8.UTFMax, len(s))]):
			return fmt.Errorf("%s is not valid UTF-8 (at byte %d)", field, i)
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return fmt.Errorf("%s holds the control character U+%04X at byte %d; send plain text", field, r, i)
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			return fmt.Errorf("%s holds the bidirectional formatting character U+%04X at byte %d, which can make text display as other text; send plain text", field, r, i)
		}
	}
	return nil
}
