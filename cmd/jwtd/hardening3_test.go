package main

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jwtd/jwtd/internal/apikey"
)

// The attacks of the third hardening round (issue 22), each against a
// running jwtd.

const issueKey = "issue-key-for-hardening-tests"

// An anonymous burst on the seed route spends the phone's anonymous
// bucket only: a keyed mint for the same phone still succeeds, and the
// anonymous callers stay limited (the SMS-pumping protection holds).
func TestAnonymousBurstLeavesKeyedMintsAlone(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.yaml", fmt.Sprintf("api_keys:\n  - {name: crm, sha256: %q, scopes: [issue]}\n", apikey.Hash(issueKey)))
	base, _ := startServe(t, nil, "--config", cfg, "--data-dir", filepath.Join(dir, "data"))
	spellings := []string{"+14155552680", "+1 415 555 2680", "+1-415-555-2680", "+1 (415) 555-2680", "+1.415.555.2680"}
	for i := range 10 {
		code, body := httpDo(t, "GET", fmt.Sprintf("%s/v1/token/%s/pv-%d", base, url.PathEscape(spellings[i%len(spellings)]), i), "", "", "")
		if code != 200 {
			t.Fatalf("anonymous %d (%s): %d %s", i+1, spellings[i%len(spellings)], code, body)
		}
	}
	if code, body := httpDo(t, "GET", base+"/v1/token/+14155552680/pv-10", "", "", ""); code != 429 || !strings.Contains(body, "per_phone") {
		t.Errorf("the 11th anonymous: %d %s, want 429 per_phone", code, body)
	}
	mint := `{"profile":"default","phone":"+14155552680","sub":"alice"}`
	if code, body := httpDo(t, "POST", base+"/v1/tokens", issueKey, "application/json", mint); code != 201 {
		t.Errorf("keyed mint after the anonymous burst: %d %s, want 201", code, body)
	}
	if code, body := httpDo(t, "GET", base+"/v1/token/+14155552680/pv-11", "", "", ""); code != 429 {
		t.Errorf("anonymous after the keyed mint: %d %s, want 429", code, body)
	}
}
