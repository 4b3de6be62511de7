package record

import (
	"testing"
	"time"
)

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{Issued: time.Date(2026, 11, 23, 1, 2, 3, 456789, time.UTC), JTI: "abc"}
	got, ok, err := DecodeCursor(c.Encode())
	if err != nil || !ok || !got.Issued.Equal(c.Issued) || got.JTI != c.JTI {
		t.Errorf("%+v %v %v", got, ok, err)
	}
	if _, ok, err := DecodeCursor(""); ok || err != nil {
		t.Error("empty cursor")
	}
	for _, bad := range []string{"!!", "bm8tY29sb24", "eDphYmM", "MTI6"} {
		if _, _, err := DecodeCursor(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzDecodeCursor: any string either fails or round-trips.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(Cursor{Issued: time.Unix(0, 42), JTI: "j"}.Encode())
	f.Add("")
	f.Add("!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, ok, err := DecodeCursor(s)
		if err != nil || !ok {
			return
		}
		again, _, err := DecodeCursor(c.Encode())
		if err != nil || !again.Issued.Equal(c.Issued) || again.JTI != c.JTI {
			t.Fatalf("%q: %+v does not round-trip: %+v %v", s, c, again, err)
		}
	})
}

func TestValidXID(t *testing.T) {
	for s, want := range map[string]bool{"tx-1": true, "a.b_c:d-e": true, "": false, "a b": false, "é": false, "a/b": false} {
		if ValidXID(s) != want {
			t.Errorf("ValidXID(%q) != %v", s, want)
		}
	}
}
