package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/jwtd/jwtd/internal/suggest"
)

// EnvNames lists, for --help, the environment variables of the named
// settings (all of them when none are named): JWTD_CONFIG, each setting's
// own, and, for a command that opens the record store (store.url), where
// the managed keys are kept sealed, JWTD_MASTER_KEY.
func EnvNames(only ...string) string {
	return strings.Join(envNames(only...), ", ")
}

func envNames(only ...string) []string {
	names := []string{"JWTD_CONFIG"}
	for _, s := range settings {
		if len(only) == 0 || slices.Contains(only, s.key) {
			names = append(names, s.env)
		}
	}
	if len(only) == 0 || slices.Contains(only, "store.url") {
		names = append(names, "JWTD_MASTER_KEY")
	}
	return names
}

// notJwtds are JWTD_ variables that jwtd's tests and scripts read, never
// jwtd: they are set beside it without being a mistake.
var notJwtds = []string{"JWTD_BIN", "JWTD_SCREENSHOTS"}

// UnreadVar is a JWTD_ variable jwtd does not read, and the one most
// likely meant ("" when none is near).
type UnreadVar struct{ Name, Near string }

func (u UnreadVar) String() string {
	if u.Near != "" {
		return fmt.Sprintf("%s is set, but jwtd reads no such variable; did you mean %s?", u.Name, u.Near)
	}
	return fmt.Sprintf("%s is set, but jwtd reads no such variable; it reads %s", u.Name, EnvNames())
}

// UnreadEnv finds the JWTD_ variables of environ ("NAME=value" pairs) that
// jwtd does not read: a mistyped JWTD_LISEN would otherwise leave listen at
// its default without a word. Those of jwtd's tests and scripts
// (JWTD_TEST_*, JWTD_BIN, JWTD_SCREENSHOTS) are not reported.
func UnreadEnv(environ []string) []UnreadVar {
	known := envNames()
	var suffixes []string // compared without the JWTD_ they all share
	for _, k := range known {
		suffixes = append(suffixes, strings.TrimPrefix(k, "JWTD_"))
	}
	var out []UnreadVar
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "JWTD_") || slices.Contains(known, name) ||
			strings.HasPrefix(name, "JWTD_TEST_") || slices.Contains(notJwtds, name) {
			continue
		}
		u := UnreadVar{Name: name}
		if near := suggest.Nearest(strings.TrimPrefix(name, "JWTD_"), suffixes); near != "" {
			u.Near = "JWTD_" + near
		}
		out = append(out, u)
	}
	return out
}
