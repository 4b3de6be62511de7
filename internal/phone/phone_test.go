package phone

import (
	"errors"
	"fmt"
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
		{"+1.415.555.2671", "", "+14155552671"},
		{"+1-415-555-2671", "", "+14155552671"},
		{"415.555.2671", "US", "+14155552671"},
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

// What libphonenumber would read into another number than the one
// written is refused before it reads it, naming the character and the form
// wanted: letters (keypad digits to libphonenumber), an extension, a second
// or misplaced +.
func TestNormalizeRefusesRewrites(t *testing.T) {
	for _, tc := range []struct{ raw, region, says string }{
		{"+1415abc2671", "", "character 6 is the letter 'a'"},
		{"+14155552671x", "", "character 13 is the letter 'x'"},
		{"+1 415 555 2671 ext 9", "", "character 17 is the letter 'e'"},
		{"(415) 555-2671 x12", "US", "character 16 is the letter 'x'"},
		{"++14155552671", "", "character 2 is another +"},
		{"+1415+5552671", "", "character 6 is another +"},
		{"1+4155552671", "US", "character 2 is another +"},
		{"+14155552671#12", "", "character 13, '#', is not part of a phone number"},
		{"+14155552671;ext=12", "", "character 13, ';', is not part of a phone number"},
		{"+1\u00a0415 555 2671", "", `character 3, '\u00a0', is not part of a phone number`},
	} {
		got, err := Normalize(tc.raw, tc.region)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "E.164, such as +14155552671") {
			t.Errorf("Normalize(%q, %q) = %q, %v; want an error saying %q and the form wanted", tc.raw, tc.region, got, err, tc.says)
		}
	}
}

// A number libphonenumber refuses is told what is wrong with it and the
// form that applies: E.164 alone with no phone.default_region, or a
// national number of the region too when one is configured and the
// number has no +.
func TestNormalizeSaysWhatApplies(t *testing.T) {
	for _, tc := range []struct{ raw, region, want string }{
		{"+1415555267", "", "not a valid phone number: it is too short for a number of country code 1; " +
			"write it in E.164: +, the country code, then the number, such as +14155552671"},
		{"+1415555267", "US", "not a valid phone number: it is too short for a number of country code 1; " +
			"write it in E.164: +, the country code, then the number, such as +14155552671"},
		{"415555267", "US", "not a valid phone number: it is too short for a number of country code 1; " +
			"write it as a national number of US (phone.default_region), such as (201) 555-0123, or in E.164, such as +14155552671"},
		{"+999 123", "", "not a valid phone number: it does not start with a calling code any country has; " +
			"write it in E.164: +, the country code, then the number, such as +14155552671"},
	} {
		_, err := Normalize(tc.raw, tc.region)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Normalize(%q, %q): %v\nwant %s", tc.raw, tc.region, err, tc.want)
		}
		if tc.region == "" && strings.Contains(fmt.Sprint(err), "default region") {
			t.Errorf("Normalize(%q) with no default region speaks of one: %v", tc.raw, err)
		}
	}
}

// FuzzNormalize: never panics, its output is a fixed point, and what it
// accepts holds only digits, a leading + and the separators between groups:
// no letter, extension or second + is ever read into a number.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"+1 (415) 555-2671", "4155552671", "+44 20 7946 0958", "00", "+",
		"+1415abc2671", "+14155552671x", "++14155552671", "1+4155552671", "+1 415 555 2671 ext. 9",
		"+14155552671#12", "+14155552671;ext=12", "+1.415.555.2671", "(415) 555-2671", "+1-800-FLOWERS"} {
		f.Add(s, "US")
	}
	f.Add("+1415555267", "")
	f.Fuzz(func(t *testing.T, raw, region string) {
		e164, err := Normalize(raw, region)
		if err != nil {
			return
		}
		for i, r := range strings.TrimSpace(raw) {
			if !strings.ContainsRune("0123456789 -.()", r) && (r != '+' || i > 0) {
				t.Fatalf("Normalize(%q) = %q, accepting %q", raw, e164, r)
			}
		}
		again, err := Normalize(e164, "")
		if err != nil || again != e164 {
			t.Fatalf("Normalize(%q) = %q, which normalises to %q, %v", raw, e164, again, err)
		}
	})
}

func TestNormalizer(t *testing.T) {
	if _, err := NewNormalizer("XX", 0); err == nil {
		t.Error("region XX accepted")
	}
	n, err := NewNormalizer("US", 2)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time from the cache
		if got, err := n.Normalize("(415) 555-2671"); err != nil || got != "+14155552671" {
			t.Errorf("got %q, %v", got, err)
		}
	}
	if _, ok := n.recent.Get("(415) 555-2671"); !ok {
		t.Error("a valid number was not remembered")
	}
	if _, err := n.Normalize("555"); !errors.Is(err, ErrInvalid) {
		t.Errorf("invalid: %v", err)
	}
	if n.recent.Contains("555") {
		t.Error("an invalid number was remembered")
	}
	// Without a default region, the error says how to fix the input.
	n, _ = NewNormalizer("", 0)
	if _, err := n.Normalize("4155552671"); err == nil || !strings.Contains(err.Error(), "default_region") {
		t.Errorf("national number without a region: %v", err)
	}
}

func BenchmarkNormalize(b *testing.B) {
	n, _ := NewNormalizer("", 0)
	b.Run("libphonenumber", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Normalize("+14155552671", ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("remembered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := n.Normalize("+14155552671"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
