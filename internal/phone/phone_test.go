package phone

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		raw, region, want string
	}{
		{"+1 (415) 555-2671", "", "+14155552671"},
		{"+14155552671", "", "+14155552671"},
		{"4155552671", "US", "+14155552671"},
		{"(415) 555-2671", "us", "+14155552671"},
		{"+44 20 7946 0958", "US", "+442079460958"},
		{"020 7946 0958", "GB", "+442079460958"},
		{" +14155552671 ", "", "+14155552671"},
	} {
		got, err := Normalize(tc.raw, tc.region)
		if err != nil || got != tc.want {
			t.Errorf("Normalize(%q, %q) = %q, %v; want %q", tc.raw, tc.region, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ raw, region string }{
		{"", "US"}, {"4155552671", ""}, {"+1", ""}, {"+1415555267", ""}, {"hello", "US"},
		{"+999 123", ""}, {"+1 415 555 2671 ext 9" + strings.Repeat("9", 60), ""}, {"+0000000000", ""},
		{"555-0100", "US"},
	} {
		if got, err := Normalize(tc.raw, tc.region); err == nil {
			t.Errorf("Normalize(%q, %q) = %q, want an error", tc.raw, tc.region, got)
		}
	}
	if !ValidRegion("US") || !ValidRegion("gb") || ValidRegion("XX") || ValidRegion("") {
		t.Error("ValidRegion")
	}
}

// FuzzNormalize: never panics, and its output is a fixed point.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+1 (415) 555-2671", "4155552671", "+44 20 7946 0958", "00", "+"} {
		f.Add(s, "US")
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		e164, err := Normalize(raw, region)
		if err != nil {
			return
		}
		again, err := Normalize(e164, "")
		if err != nil || again != e164 {
			t.Fatalf("Normalize(%q) = %q, which normalises to %q, %v", raw, e164, again, err)
		}
	})
}
