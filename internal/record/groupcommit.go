package record

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtd/jwtd/internal/clock"
)

// CommitFunc durably writes a batch in one transaction (or the backend's
// nearest equivalent), with the audit entries of its records. It returns
// either an error for the whole batch (nothing written), or one result per
// record: nil, or ErrDuplicate, ErrXIDConflict or ErrXIDClosed for a
// record that was refused alone, or an error wrapping audit.ErrNotWritten
// for a record written whose entry was not.
type CommitFunc func(batch []*Record) (results []error, err error)

// GroupCommitter is the one writer of a store: Insert queues a record and
// waits; the writer takes one, gathers what else is queued (up to MaxBatch,
// waiting at most Linger) and commits them together, so concurrent requests
// share a commit. When the store is slow or away, requests do not pile up:
// at most MaxWaiting wait, each at most Timeout.
type GroupCommitter struct {
	commit     CommitFunc
	maxBatch   int
	linger     time.Duration
	maxWaiting int64
	timeout    time.Duration
	observe    Observer
	clock      clock.Clock

	inserts chan *pending
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once

	waiting          atomic.Int64 // Inserts under way
	commits, records atomic.Uint64
	mu               sync.Mutex
	failing          error // the last commit's error, nil once one succeeds
}

// GroupOptions tune a GroupCommitter; the zero value is the defaults.
type GroupOptions struct {
	MaxBatch int           // records per commit; 0 means 256
	Linger   time.Duration // how long to wait for more records; 0 waits for none
	// MaxWaiting bounds the requests waiting for a commit; past it Insert
	// fails at once with ErrBusy, instead of queueing without limit
	// behind a slow store. 0 means 4 × MaxBatch.
	MaxWaiting int
	// Timeout bounds how long Insert waits for its record's commit; past
	// it Insert fails with an error wrapping ErrUnavailable (the record
	// may be committed later, or not: its token must not be handed out).
	// 0 means 5 s.
	Timeout time.Duration
	Observe Observer // told of every commit (metrics); may be nil
	// Clock times the linger, the timeout and each commit; nil is the
	// system clock (tests step a clock.Fake).
	Clock clock.Clock
}

// WithDefaults is o with its zero fields given their defaults.
func (o GroupOptions) WithDefaults() GroupOptions {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.MaxWaiting <= 0 {
		o.MaxWaiting = 4 * o.MaxBatch
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Observe == nil {
		o.Observe = func(int, time.Duration, error) {}
	}
	if o.Clock == nil {
		o.Clock = clock.Real
	}
	return o
}

// ErrBusy is Insert refused at once: too many requests wait for commits
// already.
var ErrBusy = fmt.Errorf("%w: too many records waiting for a commit", ErrUnavailable)

type pending struct {
	rec  *Record
	done chan error
}

// Observer is told of every commit: its size, how long it took, and the
// error that failed it as a whole, if any (metrics).
type Observer func(records int, took time.Duration, err error)

// NewGroupCommitter starts the writer. Linger zero waits for nothing: a
// batch is whatever queued while the previous commit was made durable,
// which batches under load without adding latency when idle.
func NewGroupCommitter(commit CommitFunc, opts GroupOptions) *GroupCommitter {
	opts = opts.WithDefaults()
	g := &GroupCommitter{
		commit: commit, maxBatch: opts.MaxBatch, linger: opts.Linger, maxWaiting: int64(opts.MaxWaiting),
		timeout: opts.Timeout, observe: opts.Observe, clock: opts.Clock,
		inserts: make(chan *pending), quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	go g.run()
	return g
}

// Insert returns once r's batch is committed, with r's own result; or
// ErrBusy at once when MaxWaiting requests wait already; or, after Timeout,
// an error wrapping ErrUnavailable.
func (g *GroupCommitter) Insert(ctx context.Context, r *Record) error {
	if g.waiting.Add(1) > g.maxWaiting {
		g.waiting.Add(-1)
		return ErrBusy
	}
	defer g.waiting.Add(-1)
	timer := g.clock.NewTimer(g.timeout)
	defer timer.Stop()
	p := &pending{rec: r, done: make(chan error, 1)}
	select {
	case g.inserts <- p: // unbuffered: taken only by a running writer
	case <-g.quit:
		return fmt.Errorf("%w: store closed", ErrUnavailable)
	case <-timer.C():
		return fmt.Errorf("%w: the store took no record for %s", ErrUnavailable, g.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-timer.C():
		return fmt.Errorf("%w: no commit within %s; the record may or may not be stored", ErrUnavailable, g.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Failing is the error of the last commit when it failed as a whole, and
// nil once one succeeds: a store whose commits fail (a full disk) is not
// ready, even if it answers reads.
func (g *GroupCommitter) Failing() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failing
}

// Close stops taking inserts; those already taken are committed first.
func (g *GroupCommitter) Close() {
	g.once.Do(func() { close(g.quit) })
	<-g.stopped
}

// Stats returns how many batches and records were committed.
func (g *GroupCommitter) Stats() (commits, records uint64) {
	return g.commits.Load(), g.records.Load()
}

func (g *GroupCommitter) run() {
	defer close(g.stopped)
	batch := make([]*pending, 0, g.maxBatch)
	recs := make([]*Record, 0, g.maxBatch)
	for {
		select {
		case p := <-g.inserts:
			batch = append(batch[:0], p)
		case <-g.quit:
			return
		}
		g.gather(&batch)
		recs = recs[:0]
		for _, p := range batch {
			recs = append(recs, p.rec)
		}
		start := g.clock.Now()
		results, err := g.commit(recs)
		g.observe(len(recs), g.clock.Now().Sub(start), err)
		g.mu.Lock()
		g.failing = err
		g.mu.Unlock()
		if err == nil {
			g.commits.Add(1)
			g.records.Add(uint64(len(batch)))
		}
		for i, p := range batch {
			if err != nil {
				p.done <- err
			} else {
				p.done <- results[i]
			}
		}
	}
}

// gather adds what is queued, waiting at most linger.
func (g *GroupCommitter) gather(batch *[]*pending) {
	var linger <-chan time.Time
	if g.linger > 0 {
		timer := g.clock.NewTimer(g.linger)
		defer timer.Stop()
		linger = timer.C()
	}
	for len(*batch) < g.maxBatch {
		if linger == nil {
			select {
			case p := <-g.inserts:
				*batch = append(*batch, p)
				continue
			default:
				return
			}
		}
		select {
		case p := <-g.inserts:
			*batch = append(*batch, p)
		case <-linger:
			return
		}
	}
}
