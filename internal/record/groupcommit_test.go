package record

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/jwtd/jwtd/internal/clock"
)

// The group committer's tests run in a synctest bubble on a clock.Fake:
// synctest.Wait says when every goroutine waits (the writer on its timer
// or on a commit, each Insert on the writer), and the test moves the clock
// or lets a commit through. Nothing sleeps.

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// commits is a CommitFunc that notes each batch's JTIs as it starts and,
// when gated, waits for the test to let it through.
type commits struct {
	mu      sync.Mutex
	batches [][]string
	gate    chan struct{} // nil: commits go through at once
	took    time.Duration // how long each commit takes on clk
	clk     *clock.Fake
}

func (c *commits) commit(batch []*Record) ([]error, error) {
	var jtis []string
	for _, r := range batch {
		jtis = append(jtis, r.JTI)
	}
	c.mu.Lock()
	c.batches = append(c.batches, jtis)
	c.mu.Unlock()
	if c.gate != nil {
		<-c.gate
	}
	if c.took > 0 {
		c.clk.Advance(c.took)
	}
	return make([]error, len(batch)), nil
}

func (c *commits) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n []int
	for _, b := range c.batches {
		n = append(n, len(b))
	}
	return n
}

// insert runs Insert in a goroutine of its own; its result arrives on the
// channel.
func insert(g *GroupCommitter, jti string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- g.Insert(context.Background(), &Record{JTI: jti}) }()
	return done
}

// answered reports whether an Insert has returned, without waiting.
func answered(c <-chan error) bool { return len(c) > 0 }

// What queues while a commit is made goes in the next commit, up to
// MaxBatch records; each commit is observed with its size and the time it
// took on the clock.
func TestGroupCommitterBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(epoch)
		c := &commits{gate: make(chan struct{}), took: 2 * time.Millisecond, clk: clk}
		var mu sync.Mutex
		var observed []int
		g := NewGroupCommitter(c.commit, GroupOptions{MaxBatch: 3, Clock: clk, Observe: func(n int, took time.Duration, err error) {
			mu.Lock()
			defer mu.Unlock()
			if took != 2*time.Millisecond || err != nil {
				t.Errorf("observed a commit of %s, %v; want 2ms, nil", took, err)
			}
			observed = append(observed, n)
		}})
		defer g.Close()

		first := insert(g, "a")
		synctest.Wait() // a's commit has started
		var queued []<-chan error
		for _, jti := range []string{"b", "c", "d", "e"} {
			queued = append(queued, insert(g, jti))
		}
		synctest.Wait() // b to e wait for the writer
		if got := c.sizes(); !slices.Equal(got, []int{1}) {
			t.Fatalf("batches %v before the first commit ends; want [1]", got)
		}
		c.gate <- struct{}{}
		synctest.Wait()
		if err := <-first; err != nil {
			t.Errorf("a: %v", err)
		}
		if got := c.sizes(); !slices.Equal(got, []int{1, 3}) {
			t.Errorf("batches %v; want [1 3]: three of the four queued, MaxBatch", got)
		}
		c.gate <- struct{}{}
		c.gate <- struct{}{}
		for _, q := range queued {
			if err := <-q; err != nil {
				t.Errorf("a queued insert: %v", err)
			}
		}
		if got := c.sizes(); !slices.Equal(got, []int{1, 3, 1}) {
			t.Errorf("batches %v; want [1 3 1]", got)
		}
		if commits, records := g.Stats(); commits != 3 || records != 5 {
			t.Errorf("Stats %d commits, %d records; want 3, 5", commits, records)
		}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(observed, []int{1, 3, 1}) {
			t.Errorf("observed %v", observed)
		}
	})
}

// With a linger, the writer waits that long for more records before it
// commits, unless the batch fills first.
func TestGroupCommitterLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(epoch)
		c := &commits{}
		g := NewGroupCommitter(c.commit, GroupOptions{MaxBatch: 2, Linger: 10 * time.Millisecond, Clock: clk})
		defer g.Close()

		a := insert(g, "a")
		synctest.Wait()
		if got := c.sizes(); len(got) != 0 {
			t.Fatalf("committed %v before the linger ended", got)
		}
		b := insert(g, "b")
		synctest.Wait()
		if got := c.sizes(); !slices.Equal(got, []int{2}) {
			t.Fatalf("batches %v once MaxBatch records waited; want [2] without waiting out the linger", got)
		}
		if err1, err2 := <-a, <-b; err1 != nil || err2 != nil {
			t.Errorf("a %v, b %v", err1, err2)
		}

		d := insert(g, "d")
		synctest.Wait()
		clk.Advance(9 * time.Millisecond)
		synctest.Wait()
		if got := c.sizes(); len(got) != 1 || answered(d) {
			t.Fatalf("batches %v 9ms into a 10ms linger; want [2]", got)
		}
		clk.Advance(time.Millisecond)
		synctest.Wait()
		if got := c.sizes(); !slices.Equal(got, []int{2, 1}) {
			t.Errorf("batches %v once the linger ended; want [2 1]", got)
		}
		if err := <-d; err != nil {
			t.Errorf("d: %v", err)
		}
	})
}

// Behind a store that stops answering, at most MaxWaiting inserts wait;
// past them Insert fails at once with ErrBusy; once the store answers
// again, inserts are taken again.
func TestGroupCommitterMaxWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &commits{gate: make(chan struct{})}
		g := NewGroupCommitter(c.commit, GroupOptions{MaxBatch: 1, MaxWaiting: 3, Clock: clock.NewFake(epoch)})
		defer g.Close()

		waiting := []<-chan error{insert(g, "a")}
		synctest.Wait()
		waiting = append(waiting, insert(g, "b"), insert(g, "c"))
		synctest.Wait()
		if err := g.Insert(context.Background(), &Record{JTI: "d"}); !errors.Is(err, ErrBusy) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("a fourth insert with three waiting: %v; want ErrBusy, an ErrUnavailable", err)
		}
		for range waiting {
			c.gate <- struct{}{} // one commit each, in whatever order the writer took them
		}
		for _, w := range waiting {
			if err := <-w; err != nil {
				t.Errorf("a waiting insert: %v", err)
			}
		}
		e := insert(g, "e")
		synctest.Wait()
		c.gate <- struct{}{}
		if err := <-e; err != nil {
			t.Errorf("an insert once the others were committed: %v", err)
		}
	})
}

// Insert waits at most Timeout, whether its record was taken (its commit
// did not end in time: the record may be stored or not) or not taken yet.
func TestGroupCommitterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(epoch)
		c := &commits{gate: make(chan struct{})}
		g := NewGroupCommitter(c.commit, GroupOptions{MaxBatch: 1, Timeout: 5 * time.Second, Clock: clk})
		defer g.Close()

		taken := insert(g, "a")
		synctest.Wait()
		queued := insert(g, "b")
		synctest.Wait()
		clk.Advance(5*time.Second - time.Nanosecond)
		synctest.Wait()
		if answered(taken) || answered(queued) {
			t.Fatal("an insert gave up before its timeout")
		}
		clk.Advance(time.Nanosecond)
		synctest.Wait()
		if err := <-taken; !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "may or may not be stored") {
			t.Errorf("a taken record whose commit did not end: %v", err)
		}
		if err := <-queued; !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "took no record") {
			t.Errorf("a record the writer did not take: %v", err)
		}
		// The store answers again: the hung commit ends, and the next
		// insert commits.
		c.gate <- struct{}{}
		next := insert(g, "c")
		synctest.Wait()
		c.gate <- struct{}{}
		if err := <-next; err != nil {
			t.Errorf("after the store answers again: %v", err)
		}
	})
}

// Close commits what the writer has taken, lingering included, before it
// returns; inserts it has not taken, and those after Close, fail with
// ErrUnavailable.
func TestGroupCommitterCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &commits{gate: make(chan struct{})}
		g := NewGroupCommitter(c.commit, GroupOptions{MaxBatch: 1, Clock: clock.NewFake(epoch)})
		taken := insert(g, "a")
		synctest.Wait()
		notTaken := insert(g, "b")
		synctest.Wait()
		closed := make(chan struct{})
		go func() { g.Close(); close(closed) }()
		synctest.Wait()
		if err := <-notTaken; !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "closed") {
			t.Errorf("an insert not taken when Close began: %v", err)
		}
		select {
		case <-closed:
			t.Fatal("Close returned before the commit under way ended")
		default:
		}
		c.gate <- struct{}{}
		<-closed
		if err := <-taken; err != nil {
			t.Errorf("a taken record at Close: %v", err)
		}
		if err := g.Insert(context.Background(), &Record{JTI: "c"}); !errors.Is(err, ErrUnavailable) {
			t.Errorf("Insert after Close: %v", err)
		}
		if got := c.sizes(); !slices.Equal(got, []int{1}) {
			t.Errorf("batches %v; want [1]", got)
		}
	})

	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(epoch)
		c := &commits{}
		g := NewGroupCommitter(c.commit, GroupOptions{Linger: time.Second, Clock: clk})
		a, b := insert(g, "a"), insert(g, "b")
		synctest.Wait() // both taken, the writer lingers
		closed := make(chan struct{})
		go func() { g.Close(); close(closed) }()
		synctest.Wait()
		if len(c.sizes()) != 0 {
			t.Fatal("Close cut the linger short")
		}
		clk.Advance(time.Second)
		<-closed
		if err1, err2 := <-a, <-b; err1 != nil || err2 != nil {
			t.Errorf("records lingering at Close: %v, %v", err1, err2)
		}
		if got := c.sizes(); !slices.Equal(got, []int{2}) {
			t.Errorf("batches %v; want [2]", got)
		}
	})
}

// A commit that fails as a whole makes the committer failing until one
// succeeds.
func TestGroupCommitterFailing(t *testing.T) {
	full := errors.New("database or disk is full")
	var mu sync.Mutex
	fail := true
	g := NewGroupCommitter(func(batch []*Record) ([]error, error) {
		mu.Lock()
		defer mu.Unlock()
		if fail {
			return nil, full
		}
		return make([]error, len(batch)), nil
	}, GroupOptions{})
	defer g.Close()
	if err := g.Insert(context.Background(), &Record{JTI: "a"}); !errors.Is(err, full) || !errors.Is(g.Failing(), full) {
		t.Fatalf("Insert %v, Failing %v", err, g.Failing())
	}
	mu.Lock()
	fail = false
	mu.Unlock()
	if err := g.Insert(context.Background(), &Record{JTI: "b"}); err != nil || g.Failing() != nil {
		t.Errorf("Insert %v, Failing %v", err, g.Failing())
	}
}
