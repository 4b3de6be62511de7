package audit_test

import (
	"context"
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
