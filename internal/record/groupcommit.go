package record

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// CommitFunc durably writes a batch in one transaction (or the backend's
// nearest equivalent). It returns either an error for the whole batch
// (nothing written), or one result per record: nil, or ErrDuplicate or
// ErrXIDConflict for a record that was refused alone.
type CommitFunc func(batch []*Record) (results []error, err error)

// GroupCommitter is the one writer of a store: Insert queues a record and
// waits; the writer takes one, gathers what else is queued (up to MaxBatch,
// waiting at most Linger) and commits them together, so concurrent requests
// share a commit.
type GroupCommitter struct {
	commit   CommitFunc
	maxBatch int
	linger   time.Duration
	observe  Observer

	inserts chan *pending
	quit    chan struct{}
	stopped chan struct{}
	once    sync.Once

	commits, records atomic.Uint64
}

type pending struct {
	rec  *Record
	done chan error
}

// Observer is told of every commit: its size, how long it took, and the
// error that failed it as a whole, if any (metrics).
type Observer func(records int, took time.Duration, err error)

// NewGroupCommitter starts the writer. maxBatch ≤ 0 means 256. Linger zero
// waits for nothing: a batch is whatever queued while the previous commit
// was made durable, which batches under load without adding latency when
// idle. observe may be nil.
func NewGroupCommitter(commit CommitFunc, maxBatch int, linger time.Duration, observe Observer) *GroupCommitter {
	if maxBatch <= 0 {
		maxBatch = 256
	}
	if observe == nil {
		observe = func(int, time.Duration, error) {}
	}
	g := &GroupCommitter{
		commit: commit, maxBatch: maxBatch, linger: linger, observe: observe,
		inserts: make(chan *pending), quit: make(chan struct{}), stopped: make(chan struct{}),
	}
	go g.run()
	return g
}

// Insert returns once r's batch is committed, with r's own result.
func (g *GroupCommitter) Insert(ctx context.Context, r *Record) error {
	p := &pending{rec: r, done: make(chan error, 1)}
	select {
	case g.inserts <- p: // unbuffered: taken only by a running writer
	case <-g.quit:
		return fmt.Errorf("%w: store closed", ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
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
		start := time.Now()
		results, err := g.commit(recs)
		g.observe(len(recs), time.Since(start), err)
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
	var timer *time.Timer
	var linger <-chan time.Time
	if g.linger > 0 {
		timer = time.NewTimer(g.linger)
		defer timer.Stop()
		linger = timer.C
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
