// Package audittest is the conformance suite every audit.Store passes,
// run by the sqlite and mongo packages against the real backends.
package audittest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/audit"
	"github.com/jwtd/jwtd/internal/record"
)

// Store is what the suite runs on: an audit.Store that is also the record
// store, whose Insert writes a record's audit entry in the record's commit
// (record.Record.Audit).
type Store interface {
	audit.Store
	Insert(ctx context.Context, r *record.Record) error
}

// Run runs the suite; newStore returns an empty store.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	for name, fn := range map[string]func(*testing.T, Store){
		"AppendAndHead":      testAppendAndHead,
		"Conflict":           testConflict,
		"List":               testList,
		"ConcurrentWriters":  testConcurrentWriters,
		"PurgeThenVerify":    testPurgeThenVerify,
		"DeletedPurgeClaim":  testDeletedPurgeClaim,
		"RequiredFailsAfter": testRequiredWaits,
		"WithRecords":        testWithRecords,
		"TargetFilter":       testTargetFilter,
		"ListOrder":          testListOrder,
	} {
		t.Run(name, func(t *testing.T) { fn(t, newStore(t)) })
	}
}

// Keyed mints' entries written in their records' commits, while the
// trail of the same chain writes other entries, and a second writer of
// the chain (another process with the instance's name) writes too: every
// record written has its entry, linked in place; a record refused has
// none; the chain verifies and holds every entry once; the trail's head
// follows the commits.
func testWithRecords(t *testing.T, s Store) {
	ctx := context.Background()
	tr := audit.NewTrail(s, audit.Options{Chain: "m", Required: true})
	other := audit.NewTrail(s, audit.Options{Chain: "m", Required: true})
	defer other.Close()
	defer tr.Close()
	now := time.Now().UTC()
	newRecord := func(jti string) *record.Record {
		e := tr.Stamp(audit.Entry{Actor: "issuer", Action: audit.ActionMint, Target: "jti:" + jti, RequestID: "r-" + jti,
			ClientIP: "192.0.2.7", Detail: "profile=default"})
		return &record.Record{JTI: jti, Profile: "default", Kid: "k1", Alg: "ES256", Subject: "s",
			Issued: now, Expires: now.Add(time.Hour), TokenSHA256: fmt.Sprintf("%064x", len(jti)), Audit: &e}
	}
	const minters, each, others = 8, 12, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	var highest int64 // of the entries written with records
	for w := range minters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := newRecord(fmt.Sprintf("jti-%d-%d", w, i))
				if err := s.Insert(ctx, r); err != nil {
					t.Error(err)
					return
				}
				if r.Audit.Seq < 1 || r.Audit.Chain != "m" || r.Audit.Hash != r.Audit.ComputeHash() {
					t.Errorf("entry after Insert: %+v", r.Audit)
				}
				tr.Committed(*r.Audit)
				mu.Lock()
				highest = max(highest, r.Audit.Seq)
				mu.Unlock()
			}
		}()
	}
	for _, w := range []*audit.Trail{tr, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range others {
				if err := w.Record(ctx, audit.Entry{Actor: "ops", Action: audit.ActionRevoke, Target: fmt.Sprintf("xid:%d", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// A duplicate jti is refused, and so is its entry.
	dup := newRecord("jti-0-0")
	if err := s.Insert(ctx, dup); !errors.Is(err, record.ErrDuplicate) {
		t.Errorf("a duplicate jti: %v", err)
	}
	reps, err := audit.Verify(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Entries != minters*each+2*others {
		t.Fatalf("chains %+v, want one of %d entries", reps, minters*each+2*others)
	}
	mints, err := s.AuditList(ctx, audit.Query{Chain: "m", Action: audit.ActionMint, Order: audit.Oldest})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range mints {
		seen[e.Target]++
		if e.Actor != "issuer" || e.RequestID != "r-"+e.Target[len("jti:"):] || e.Instance != "m" {
			t.Errorf("mint entry %+v", e)
		}
	}
	if len(seen) != minters*each || len(mints) != minters*each {
		t.Errorf("%d mint entries for %d targets, want %d of each", len(mints), len(seen), minters*each)
	}
	// Filters find mints' entries and the others (stores may index them
	// apart).
	for _, f := range []struct {
		q audit.Query
		n int
	}{
		{audit.Query{Actor: "issuer"}, minters * each},
		{audit.Query{Actor: "ops"}, 2 * others},
		{audit.Query{Actor: "ops", Action: audit.ActionRevoke}, 2 * others},
		{audit.Query{Actor: "issuer", Action: audit.ActionRevoke}, 0},
		{audit.Query{Target: "xid:3"}, 2},
		{audit.Query{Target: "jti:jti-1-1"}, 1},
		{audit.Query{Target: "jti:jti-1-1", Actor: "issuer", Action: audit.ActionMint}, 1},
	} {
		if got, err := s.AuditList(ctx, f.q); err != nil || len(got) != f.n {
			t.Errorf("%+v: %d entries, %v; want %d", f.q, len(got), err, f.n)
		}
	}
	if h := tr.Head(); h.Seq < highest {
		t.Errorf("the trail's head %d is behind the entries committed with records (%d)", h.Seq, highest)
	}
}

var base = time.Date(2026, 12, 1, 0, 0, 0, 123456789, time.UTC)

// chained makes n entries continuing head.
func chained(chain string, head audit.Entry, n int, at func(i int) time.Time) []audit.Entry {
	out := make([]audit.Entry, n)
	prev := head
	for i := range out {
		e := audit.Entry{Chain: chain, Seq: prev.Seq + 1, Time: at(i), Instance: chain, Actor: fmt.Sprintf("actor%d", i%3),
			Action: audit.ActionRevoke, Target: fmt.Sprintf("jti:%d", i), Result: audit.ResultOK, RequestID: "r", ClientIP: "192.0.2.1",
			Detail: "count=1", Prev: prev.Hash}
		e.Hash = e.ComputeHash()
		out[i], prev = e, e
	}
	return out
}

func minutes(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

func testAppendAndHead(t *testing.T, s Store) {
	ctx := context.Background()
	h, err := s.AuditHead(ctx, "a")
	if err != nil || h.Seq != 0 {
		t.Fatalf("empty head: %+v %v", h, err)
	}
	es := chained("a", audit.Entry{}, 5, minutes)
	if n, err := s.AppendAudit(ctx, es); n != 5 || err != nil {
		t.Fatalf("append: %d %v", n, err)
	}
	h, err = s.AuditHead(ctx, "a")
	if err != nil || h != es[4] {
		t.Fatalf("head: %+v %v, want %+v", h, err, es[4])
	}
	got, err := s.AuditList(ctx, audit.Query{Chain: "a", Order: audit.BySeq})
	if err != nil || len(got) != 5 {
		t.Fatalf("list: %d %v", len(got), err)
	}
	for i := range got {
		if got[i] != es[i] {
			t.Errorf("entry %d read back as %+v, written %+v", i, got[i], es[i])
		}
	}
	chains, err := s.AuditChains(ctx)
	if err != nil || len(chains) != 1 || chains[0] != "a" {
		t.Errorf("chains: %v %v", chains, err)
	}
	if reps, err := audit.Verify(ctx, s); err != nil || len(reps) != 1 || reps[0].Head != es[4] {
		t.Errorf("verify: %+v %v", reps, err)
	}
}

// Entries linked after a head that is stale (another writer advanced the
// chain) are linked again after the chain's head, in the slice given, and
// the chain verifies.
func testConflict(t *testing.T, s Store) {
	ctx := context.Background()
	first := chained("a", audit.Entry{}, 3, minutes)
	if _, err := s.AppendAudit(ctx, first); err != nil {
		t.Fatal(err)
	}
	for _, es := range [][]audit.Entry{
		chained("a", audit.Entry{}, 2, minutes), // seq 1 and 2 again
		chained("a", first[1], 2, minutes),      // after seq 2, when 3 exists
	} {
		head, err := s.AuditHead(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := s.AppendAudit(ctx, es); n != len(es) || err != nil {
			t.Fatalf("append after a stale head: %d %v", n, err)
		}
		if es[0].Seq != head.Seq+1 || es[0].Prev != head.Hash || es[1].Prev != es[0].Hash || es[1].Hash != es[1].ComputeHash() {
			t.Errorf("entries after head %d linked as %+v", head.Seq, es)
		}
		if h, err := s.AuditHead(ctx, "a"); err != nil || h != es[1] {
			t.Errorf("head %+v %v, want %+v", h, err, es[1])
		}
	}
	if reps, err := audit.Verify(ctx, s); err != nil || len(reps) != 1 || reps[0].Entries != 7 {
		t.Errorf("verify: %+v %v", reps, err)
	}
}

// A target filter finds the entries whose target it is, and those whose
// target starts with it and a space: a keyed mint's "jti:X xid:Y" by
// "jti:X", but not by "jti:" and a prefix of X, nor by "xid:Y".
func testTargetFilter(t *testing.T, s Store) {
	ctx := context.Background()
	var es []audit.Entry
	head := audit.Entry{}
	for i, e := range []struct{ action, target string }{
		{audit.ActionMint, audit.MintTarget("a1", "tx-1")},
		{audit.ActionMint, audit.MintTarget("a10", "")},
		{audit.ActionMint, audit.MintTarget("a1!", "tx-2")},
		{audit.ActionRevoke, "jti:a1"},
		{audit.ActionRevoke, "xid:tx-1"},
		{audit.ActionOutcome, "xid:tx-10"},
		// The filter and a byte below the space: not a match.
		{audit.ActionRevoke, "jti:a1\x1fz"},
		{audit.ActionOutcome, "xid:tx-1\t"},
	} {
		en := audit.Entry{Time: minutes(i), Instance: "t", Actor: "ops", Action: e.action, Target: e.target, Result: audit.ResultOK}
		en.Link("t", head)
		es, head = append(es, en), en
	}
	if _, err := s.AppendAudit(ctx, es); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		q    audit.Query
		want []int // of es, newest first
	}{
		{audit.Query{Target: "jti:a1"}, []int{3, 0}},
		{audit.Query{Target: "jti:a1", Action: audit.ActionMint}, []int{0}},
		{audit.Query{Target: "jti:a1 xid:tx-1"}, []int{0}},
		{audit.Query{Target: "jti:a10"}, []int{1}},
		{audit.Query{Target: "jti:a"}, nil},
		{audit.Query{Target: "xid:tx-1"}, []int{4}},
		{audit.Query{Target: "xid:tx-1", Order: audit.Oldest, Limit: 1}, []int{4}},
	} {
		got, err := s.AuditList(ctx, f.q)
		if err != nil {
			t.Fatal(err)
		}
		var want []audit.Entry
		for _, i := range f.want {
			want = append(want, es[i])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%+v: %v, want %v", f.q, got, want)
		}
		for _, e := range got {
			if !audit.TargetMatches(f.q.Target, e.Target) {
				t.Errorf("%+v: %q does not match", f.q, e.Target)
			}
		}
	}
}

// Listings by time of three chains whose entries interleave, with ties
// within and across chains and entries stamped before the one before them
// (a chain is not in time order), against every entry sorted: each
// listing, newest or oldest first, with times and filters, paged or not,
// lists the sorted entries that pass it, each once.
func testListOrder(t *testing.T, s Store) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	var all []audit.Entry
	for _, c := range []string{"c2", "c1", "c3"} {
		var es []audit.Entry
		head, at := audit.Entry{}, base
		for i := range 80 {
			at = at.Add(time.Duration(rng.IntN(3)) * time.Second)
			e := audit.Entry{Time: at, Instance: c, Actor: []string{"ops", "issuer"}[rng.IntN(2)], Result: audit.ResultOK}
			if e.Actor == "issuer" {
				e.Action, e.Target = audit.ActionMint, audit.MintTarget(fmt.Sprintf("j%s-%d", c, i), fmt.Sprintf("tx-%d", i%5))
			} else {
				e.Action, e.Target = audit.ActionRevoke, fmt.Sprintf("xid:tx-%d", i%5)
			}
			if i%9 == 4 {
				e.Time = at.Add(-time.Minute) // stamped before the entry before it
			}
			e.Link(c, head)
			es, head = append(es, e), e
		}
		if _, err := s.AppendAudit(ctx, es); err != nil {
			t.Fatal(err)
		}
		all = append(all, es...)
	}
	byTime := func(a, b audit.Entry) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		if a.Chain != b.Chain {
			return strings.Compare(a.Chain, b.Chain)
		}
		return int(a.Seq - b.Seq)
	}
	slices.SortFunc(all, byTime)
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	for _, q := range []audit.Query{
		{},
		{Order: audit.Oldest},
		{Since: at(40)},
		{Until: at(61), Order: audit.Oldest},
		{Since: at(20), Until: at(50)},
		{Since: at(200)},
		{Actor: "ops"},
		{Actor: "issuer", Since: at(30), Order: audit.Oldest},
		{Chain: "c2", Since: at(10), Until: at(70)},
		{Target: "xid:tx-3"},
		{Target: "jti:jc1-7", Order: audit.Oldest},
		{Action: audit.ActionRevoke, Until: at(45)},
	} {
		var want []audit.Entry
		for _, e := range all {
			if (q.Chain == "" || e.Chain == q.Chain) && (q.Actor == "" || e.Actor == q.Actor) &&
				(q.Action == "" || e.Action == q.Action) && (q.Target == "" || audit.TargetMatches(q.Target, e.Target)) &&
				(q.Since.IsZero() || !e.Time.Before(q.Since)) && (q.Until.IsZero() || e.Time.Before(q.Until)) {
				want = append(want, e)
			}
		}
		if q.Order == audit.Newest {
			slices.Reverse(want)
		}
		for _, limit := range []int{0, 7, 100} {
			q := q
			q.Limit = limit
			var got []audit.Entry
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("%+v: more pages than entries", q)
				}
				var next string
				if limit == 0 {
					es, err := s.AuditList(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					got = es
				} else {
					p, err := audit.List(ctx, s, q)
					if err != nil {
						t.Fatal(err)
					}
					got, next = append(got, p.Entries...), p.Next
				}
				if next == "" {
					break
				}
				q.After = next
			}
			if !slices.Equal(got, want) {
				t.Errorf("%+v: %d entries, want %d:\n%v\nwant\n%v", q, len(got), len(want), got, want)
			}
		}
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	a := chained("a", audit.Entry{}, 30, minutes)
	b := chained("b", audit.Entry{}, 30, minutes) // same times: ties broken by chain
	for _, es := range [][]audit.Entry{a, b} {
		if _, err := s.AppendAudit(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
	// Newest first, in pages of 7, every entry once.
	var seen []audit.Entry
	q := audit.Query{Limit: 7}
	for {
		p, err := audit.List(ctx, s, q)
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, p.Entries...)
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	if len(seen) != 60 {
		t.Fatalf("paged %d entries, want 60", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		p, c := seen[i-1], seen[i]
		if c.Time.After(p.Time) || c.Time.Equal(p.Time) && c.Chain >= p.Chain {
			t.Fatalf("not newest first at %d: %v %s then %v %s", i, p.Time, p.Chain, c.Time, c.Chain)
		}
	}
	// Filters.
	got, err := s.AuditList(ctx, audit.Query{Actor: "actor1", Since: minutes(3), Until: minutes(9), Order: audit.Oldest})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 { // i = 4, 7 in two chains
		t.Errorf("actor1 in [3, 9) min: %d entries, want 4", len(got))
	}
	for _, e := range got {
		if e.Actor != "actor1" || e.Time.Before(minutes(3)) || !e.Time.Before(minutes(9)) {
			t.Errorf("filtered in: %+v", e)
		}
	}
	got, err = s.AuditList(ctx, audit.Query{Target: "jti:5", Chain: "b"})
	if err != nil || len(got) != 1 || got[0] != b[5] {
		t.Errorf("by target and chain: %+v %v", got, err)
	}
	if got, err := s.AuditList(ctx, audit.Query{Action: "nothing"}); err != nil || len(got) != 0 {
		t.Errorf("unknown action: %d %v", len(got), err)
	}
	if _, err := s.AuditList(ctx, audit.Query{After: "not-a-cursor!"}); !errors.Is(err, audit.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

// Trails of two instances, and two trails of one chain (two processes
// with one instance name), write at once: every chain verifies and holds
// every entry.
func testConcurrentWriters(t *testing.T, s Store) {
	ctx := context.Background()
	trails := []*audit.Trail{
		audit.NewTrail(s, audit.Options{Chain: "one", Required: true}),
		audit.NewTrail(s, audit.Options{Chain: "one", Required: true}),
		audit.NewTrail(s, audit.Options{Chain: "two", Required: true}),
	}
	const each = 60
	var wg sync.WaitGroup
	for ti, tr := range trails {
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each / 3 {
					if err := tr.Record(ctx, audit.Entry{Actor: "k", Action: audit.ActionMint, Target: fmt.Sprintf("jti:%d-%d-%d", ti, w, i)}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, tr := range trails {
		tr.Close()
	}
	reps, err := audit.Verify(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, r := range reps {
		counts[r.Chain] = r.Entries
	}
	if counts["one"] != 2*each || counts["two"] != each {
		t.Errorf("entries per chain: %v, want one=%d two=%d", counts, 2*each, each)
	}
}

// Entries older than the retention go, a chain's head stays, and the
// chains verify after; an entry deleted in the middle is found.
func testPurgeThenVerify(t *testing.T, s Store) {
	ctx := context.Background()
	old := chained("a", audit.Entry{}, 450, minutes) // more than two purge chunks
	if _, err := s.AppendAudit(ctx, old); err != nil {
		t.Fatal(err)
	}
	onlyOld := chained("b", audit.Entry{}, 3, minutes)
	if _, err := s.AppendAudit(ctx, onlyOld); err != nil {
		t.Fatal(err)
	}
	tr := audit.NewTrail(s, audit.Options{Chain: "purger", Now: func() time.Time { return minutes(1000) }})
	defer tr.Close()
	n, err := audit.Purge(ctx, s, tr, minutes(420))
	if err != nil {
		t.Fatal(err)
	}
	if n != 420+2 {
		t.Errorf("purged %d, want 422 (420 of a, all but b's head)", n)
	}
	reps, err := audit.Verify(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		switch r.Chain {
		case "a":
			if r.First != 421 || r.Entries != 30 {
				t.Errorf("chain a after purge: %+v", r)
			}
		case "b":
			if r.First != 3 || r.Entries != 1 {
				t.Errorf("chain b after purge: %+v", r)
			}
		}
	}
	// Now one entry taken out of the middle of a.
	if _, err := s.PurgeAudit(ctx, "a", 422, 1); err != nil { // deletes 421 only: a now starts at 422, unclaimed
		t.Fatal(err)
	}
	var br *audit.Break
	if _, err := audit.Verify(ctx, s); !errors.As(err, &br) || br.Chain != "a" || br.Seq != 421 {
		t.Errorf("verify after deleting the first kept entry: %v, want a break of a at 421", err)
	}
}

// The purge entry that explains where a chain starts is itself chained:
// deleting it is found.
func testDeletedPurgeClaim(t *testing.T, s Store) {
	ctx := context.Background()
	if _, err := s.AppendAudit(ctx, chained("a", audit.Entry{}, 10, minutes)); err != nil {
		t.Fatal(err)
	}
	tr := audit.NewTrail(s, audit.Options{Chain: "p", Now: func() time.Time { return minutes(100) }})
	if _, err := audit.Purge(ctx, s, tr, minutes(5)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Commit(ctx, audit.Entry{Actor: "jwtd", Action: audit.ActionConfigReload}); err != nil {
		t.Fatal(err)
	}
	tr.Close()
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeAudit(ctx, "p", 2, 1); err != nil { // the claim, p's first entry
		t.Fatal(err)
	}
	if _, err := audit.Verify(ctx, s); err == nil {
		t.Error("verify passed with the purge entry deleted")
	}
}

// A required trail answers only once the entry is written.
func testRequiredWaits(t *testing.T, s Store) {
	ctx := context.Background()
	tr := audit.NewTrail(s, audit.Options{Chain: "r", Required: true})
	defer tr.Close()
	if err := tr.Record(ctx, audit.Entry{Actor: "k", Action: audit.ActionRevoke, Target: "xid:x", Detail: "count=2"}); err != nil {
		t.Fatal(err)
	}
	h, err := s.AuditHead(ctx, "r")
	if err != nil || h.Seq != 1 || h.Target != "xid:x" || h.Instance != "r" || h.Result != audit.ResultOK {
		t.Errorf("head right after Record: %+v %v", h, err)
	}
}
