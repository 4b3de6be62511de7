package phone

import (
	"errors"
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
