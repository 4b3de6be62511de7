// Package seedexample loads testdata/seed003-example.json: the token of
// seed 003's section 7.2, its signing key, and the response the seed's
// service gave for it. Tests only.
package seedexample

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Example is the seed's verify request and its expected response.
type Example struct {
	Key      string          `json:"signing_key"`
	Token    string          `json:"token"`
	Expected json.RawMessage `json:"expected_response"`
}

// Load reads the example from the repository's testdata directory.
func Load(t testing.TB) Example {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "seed003-example.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ex Example
	if err := json.Unmarshal(data, &ex); err != nil {
		t.Fatal(err)
	}
	return ex
}
