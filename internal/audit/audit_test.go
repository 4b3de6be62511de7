package audit_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/sqlite"
)

// Refused authentications are one entry per key name and address per
// flush, with the count, at the flush's time.
func TestRefusals(t *testing.T) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tr := audit.NewTrail(s, audit.Options{Chain: "a", Required: true})
	defer tr.Close()
	r := audit.NewRefusals()
	for range 5 {
		r.Add("unknown", "192.0.2.1")
	}
	r.Add("reader", "192.0.2.1")
	r.Add("unknown", "192.0.2.2")
	minute := time.Date(2026, 12, 7, 5, 1, 0, 0, time.UTC)
	if err := r.Flush(context.Background(), tr, minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(context.Background(), tr, minute.Add(time.Minute)); err != nil { // nothing new: no entry
		t.Fatal(err)
	}
	es, err := s.AuditList(context.Background(), audit.Query{Action: audit.ActionAuthRefused, Order: audit.Oldest})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range es {
		got[e.Actor+" "+e.ClientIP] = e.Detail
		if !e.Time.Equal(minute) || e.Result != audit.ResultRefused {
			t.Errorf("entry %+v", e)
		}
	}
	want := map[string]string{"unknown 192.0.2.1": "count=5", "reader 192.0.2.1": "count=1", "unknown 192.0.2.2": "count=1"}
	if len(got) != len(want) || len(es) != 3 {
		t.Fatalf("entries %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}

// The hash covers every field: changing any one changes it.
func TestHashCoversEveryField(t *testing.T) {
	e := audit.Entry{Chain: "c", Seq: 1, Time: time.Unix(0, 1), Instance: "i", Actor: "a", Action: "x", Target: "t",
		Result: "ok", RequestID: "r", ClientIP: "ip", Detail: "d", Prev: "p"}
	h := e.ComputeHash()
	for i, change := range []func(*audit.Entry){
		func(e *audit.Entry) { e.Chain = "C" }, func(e *audit.Entry) { e.Seq = 2 }, func(e *audit.Entry) { e.Time = time.Unix(0, 2) },
		func(e *audit.Entry) { e.Instance = "I" }, func(e *audit.Entry) { e.Actor = "A" }, func(e *audit.Entry) { e.Action = "X" },
		func(e *audit.Entry) { e.Target = "T" }, func(e *audit.Entry) { e.Result = "failed" }, func(e *audit.Entry) { e.RequestID = "R" },
		func(e *audit.Entry) { e.ClientIP = "IP" }, func(e *audit.Entry) { e.Detail = "D" }, func(e *audit.Entry) { e.Prev = "P" },
	} {
		c := e
		change(&c)
		if c.ComputeHash() == h {
			t.Errorf("change %d left the hash as it was", i)
		}
	}
}

// canonicalRef is how Canonical was first written, through encoding/json:
// the hashes of entries in stores depend on Canonical's bytes staying these.
func canonicalRef(e *audit.Entry) []byte {
	b, _ := json.Marshal([]any{1, e.Chain, e.Seq, e.Time.UnixNano(), e.Instance, e.Actor, e.Action,
		e.Target, e.Result, e.RequestID, e.ClientIP, e.Detail, e.Prev})
	return b
}

func TestCanonicalIsEncodingJSONs(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<b>&amp;</b>", "tab\tnew\nline\r\b\f\x00\x1f\x7f",
		"é ü 日本", "\u2028\u2029", "bad \xff utf-8", "jti:0123456789abcdef xid:tx-1"} {
		e := audit.Entry{Chain: s, Seq: -7, Time: time.Unix(-1, 5), Instance: s, Actor: s, Action: s, Target: s, Result: s,
			RequestID: s, ClientIP: s, Detail: s, Prev: s}
		if got, want := e.Canonical(), canonicalRef(&e); string(got) != string(want) {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add("node-a", int64(1), int64(1765000000123456789), "issuer", "jti:x xid:y", "<&>\"\\\n\u2028\xff")
	f.Fuzz(func(t *testing.T, chain string, seq, ns int64, actor, target, detail string) {
		e := audit.Entry{Chain: chain, Seq: seq, Time: time.Unix(0, ns), Instance: chain, Actor: actor, Action: audit.ActionMint,
			Target: target, Result: audit.ResultOK, RequestID: detail, ClientIP: actor, Detail: detail, Prev: target}
		if got, want := e.Canonical(), canonicalRef(&e); string(got) != string(want) {
			t.Errorf("%s, want %s", got, want)
		}
	})
}
