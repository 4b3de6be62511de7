package httpapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A transaction's outcomes: appended with the outcome scope only, shown by
// Get Status newest first with a summary, recorded after the token is
// revoked, refused for an XID jwtd never issued, and bad input refused with
// a message that says what is wrong.
func TestOutcomes(t *testing.T) {
	h, _ := testServer(t)
	if w := do(t, h, "GET", "/v1/token/+14155552671/tx-out", "", ""); w.Code != 200 {
		t.Fatalf("mint: %d %s", w.Code, w.Body)
	}
	post := func(key, xid, body string) (int, string) {
		w := doAuth(t, h, "POST", "/v1/transactions/"+xid+"/outcome", key, "application/json", body)
		return w.Code, w.Body.String()
	}
	now := time.Now().UTC()
	earlier := now.Add(-time.Minute).Format(time.RFC3339)

	code, body := post(outcomeKey, "tx-out", fmt.Sprintf(`{"code":2400,"updated_on":%q}`, earlier))
	if code != 201 || !strings.Contains(body, `"status":"pending"`) || !strings.Contains(body, `"description":"pending"`) {
		t.Fatalf("pending: %d %s", code, body)
	}
	// The transaction's token is revoked; its outcome still arrives.
	if w := doAuth(t, h, "POST", "/v1/revoke", adminKey, "application/json", `{"xid":"tx-out"}`); w.Code != 200 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	code, body = post(outcomeKey, "tx-out", `{"status":"verified","code":2401,"description":"answered","source":"callback"}`)
	if code != 201 {
		t.Fatalf("verified: %d %s", code, body)
	}

	w := doAuth(t, h, "GET", "/v1/tokens/tx-out", adminKey, "", "")
	var status struct {
		Summary  *struct{ Status string }
		Outcomes []struct {
			Status, Description, Source string
			Code                        int
		}
		Records []struct{ Status string }
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &status) != nil {
		t.Fatalf("Get Status: %d %s", w.Code, w.Body)
	}
	if status.Summary == nil || status.Summary.Status != "verified" || len(status.Outcomes) != 2 ||
		status.Outcomes[0].Code != 2401 || status.Outcomes[0].Source != "callback" || status.Outcomes[1].Status != "pending" ||
		len(status.Records) != 1 || status.Records[0].Status != "revoked" {
		t.Errorf("Get Status: %s", w.Body)
	}

	// Scopes: the outcome key records outcomes and does nothing else; no
	// other key records them.
	for _, key := range []string{adminKey, issuerKey, introspectKey} {
		if code, body := post(key, "tx-out", `{"code":2401}`); code != 403 {
			t.Errorf("key %s: %d %s", key, code, body)
		}
	}
	if code, _ := post("", "tx-out", `{"code":2401}`); code != 401 {
		t.Errorf("no key: %d", code)
	}
	if w := doAuth(t, h, "GET", "/v1/tokens/tx-out", outcomeKey, "", ""); w.Code != 403 {
		t.Errorf("the outcome key reading Get Status: %d", w.Code)
	}

	for _, tc := range []struct{ name, xid, body, says string }{
		{"an XID never issued", "tx-never", `{"code":2401}`, "Unknown XID"},
		{"an invalid XID", "tx%20bad", `{"code":2401}`, "Invalid XID"},
		{"a code as a string", "tx-out", `{"code":"2401"}`, "/code"},
		{"an unknown code", "tx-out", `{"code":1234}`, "2401 (success)"},
		{"an unknown status", "tx-out", `{"status":"done"}`, "pending, verified, failed"},
		{"a code against its status", "tx-out", `{"status":"failed","code":2401}`, "means verified"},
		{"neither status nor code", "tx-out", `{"source":"x"}`, "give a status"},
		{"a huge description", "tx-out", `{"code":2402,"description":"` + strings.Repeat("d", 513) + `"}`, "at most 512"},
		{"a huge source", "tx-out", `{"code":2402,"source":"` + strings.Repeat("s", 129) + `"}`, "at most 128"},
		{"updated_on in the future", "tx-out", fmt.Sprintf(`{"code":2401,"updated_on":%q}`, now.Add(10*time.Minute).Format(time.RFC3339)), "in the future"},
		{"updated_on not RFC 3339", "tx-out", `{"code":2401,"updated_on":"yesterday"}`, "/updated_on"},
		{"an unknown member", "tx-out", `{"code":2401,"reason":"x"}`, "unknown member /reason"},
	} {
		code, body := post(outcomeKey, tc.xid, tc.body)
		want := 400
		if tc.xid == "tx-never" {
			want = 404
		}
		if code != want || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.name, code, body, want, tc.says)
		}
	}
	if w := doAuth(t, h, "GET", "/v1/tokens/tx-out", adminKey, "", ""); !strings.Contains(w.Body.String(), `"outcomes":[{`) ||
		strings.Count(w.Body.String(), `"recorded_at"`) != 2 {
		t.Errorf("a refused outcome was recorded: %s", w.Body)
	}
}
