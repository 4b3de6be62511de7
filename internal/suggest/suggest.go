// Package suggest finds the name a person most likely meant, for the
// "did you mean" of jwtd's messages.
package suggest

import (
	"math"
	"strings"

	"github.com/agnivade/levenshtein"
)

// Nearest returns the candidate nearest to word, when it is near enough to
// be a likely typo (a letter or two off, or word is its beginning), or "".
func Nearest(word string, candidates []string) string {
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		d := levenshtein.ComputeDistance(strings.ToLower(word), strings.ToLower(c))
		if d < bestDist || (d == bestDist && c < best) {
			best, bestDist = c, d
		}
	}
	switch {
	case best == "":
		return ""
	case bestDist <= 2 && 2*bestDist <= len(word):
		return best
	}
	for _, c := range candidates {
		if swapped(strings.ToLower(word), strings.ToLower(c)) {
			return c
		}
	}
	for _, c := range candidates {
		if len(word) >= 3 && strings.HasPrefix(c, word) {
			return c
		}
	}
	return ""
}

// swapped reports whether a and b differ only by two neighbouring letters
// swapped ("kdi", "kid"), which Levenshtein distance counts as two edits.
func swapped(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i+1 < len(a); i++ {
		if a[i] != b[i] {
			return a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
		}
	}
	return false
}
