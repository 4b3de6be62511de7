// Package seedexample loads testdata/seed003-example.json: the token of
// seed 003's section 7.2, its signing key, and the response the seed's
// service gave for it. Tests only.
package seedexample

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Example is the seed's verify request and its expected response.
type Example struct {
	Key      string          `json:"signing_key"`
	Token    string          `json:"token"`
	Expected json.RawMessage `json:"expected_response"`
}

// Load reads the example from the repository's testdata directory: that
// of the module whose package the test runs in (go test runs it in the
// package's directory). Not found from this file's path, which a build
// with -trimpath does not keep.
func Load(t testing.TB) Example {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("seedexample: no go.mod above the test's directory")
		}
		dir = parent
	}
	data, err := os.ReadFile(filepath.Join(dir, "testdata", "seed003-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ex Example
	if err := json.Unmarshal(data, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}
