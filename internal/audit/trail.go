package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// ErrNotWritten is Record when the entry could not be written (the store
// refuses or does not answer) and the trail is required.
var ErrNotWritten = errors.New("the audit entry could not be written")

// Options of a Trail.
type Options struct {
	Chain    string // the chain this trail advances: the instance name
	Instance string // written into every entry; defaults to Chain
	// Required makes Record wait until the entry is written, and fail
	// (ErrNotWritten) when it cannot be; without it Record only queues it.
	Required bool
	Now      func() time.Time // defaults to time.Now
	Logger   *slog.Logger     // a line per entry written (but mints), with the chain's head
	// Written is told of every batch written (metrics); may be nil.
	Written func(entries []Entry)
	// Failed is told of every failed write; may be nil.
	Failed func(err error)
	// MaxQueue bounds the entries waiting to be written (default 65536):
	// past it, Record fails (required) or the entry is dropped and counted.
	MaxQueue int
	// Timeout bounds one write (default 5 s).
	Timeout time.Duration
	// Linger is how long the writer waits for more entries before it
	// writes a batch, when nobody waits for them (not Required): one
	// commit for many entries, so the trail takes little of the store's
	// one writer from the records. Default 100 ms; Required trails do not
	// linger.
	Linger time.Duration
}

// Trail is an instance's writer of its chain: Record queues an entry,
// and one goroutine writes what is queued in batches, chaining each entry
// to the one before. A batch that fails is retried, so an entry queued is
// written once the store answers again (until Close).
type Trail struct {
	store Store
	opts  Options
	queue chan *pending
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	failing error // the last write's error; nil once one succeeds
	head    Entry // the chain's last entry, as last known
	known   bool  // head was written by this trail or a store's commit
	dropped int
}

type pending struct {
	e    Entry
	done chan error // nil: nobody waits
	told bool       // done was sent to (by the writer only)
}

// tell sends err to the waiter, once.
func (p *pending) tell(err error) {
	if p.done != nil && !p.told {
		p.done <- err
		p.told = true
	}
}

// NewTrail starts the writer of opts.Chain on s.
func NewTrail(s Store, opts Options) *Trail {
	if opts.Instance == "" {
		opts.Instance = opts.Chain
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxQueue <= 0 {
		opts.MaxQueue = 1 << 16
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	switch {
	case opts.Required:
		opts.Linger = 0
	case opts.Linger == 0:
		opts.Linger = 100 * time.Millisecond
	}
	t := &Trail{store: s, opts: opts, queue: make(chan *pending, opts.MaxQueue), quit: make(chan struct{}), done: make(chan struct{})}
	go t.run()
	return t
}

// Required reports whether actions fail when their entry is not written.
func (t *Trail) Required() bool { return t != nil && t.opts.Required }

// Record queues e, filling in its time and instance; when the trail is
// required it waits for the write and returns ErrNotWritten if it failed.
// A nil Trail records nothing.
func (t *Trail) Record(ctx context.Context, e Entry) error {
	if t == nil {
		return nil
	}
	if t.opts.Required {
		return t.Commit(ctx, e)
	}
	t.fill(&e)
	select {
	case t.queue <- &pending{e: e}:
	default:
		t.mu.Lock()
		t.dropped++
		t.mu.Unlock()
		if t.opts.Logger != nil {
			t.opts.Logger.Error("audit: queue full; entry dropped", "action", e.Action, "target", e.Target)
		}
	}
	return nil
}

// Commit queues e and waits until it is written, whatever Required says.
func (t *Trail) Commit(ctx context.Context, e Entry) error {
	if t == nil {
		return nil
	}
	t.fill(&e)
	done := make(chan error, 1)
	select {
	case t.queue <- &pending{e: e, done: done}:
	default:
		return fmt.Errorf("%w: too many entries wait to be written", ErrNotWritten)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", ErrNotWritten, ctx.Err())
	}
}

// Stamp is e as this trail writes it, for a store that writes it itself
// in the commit of the record it belongs to (record.Record.Audit): its
// time, instance and result filled in as Record does, and this trail's
// chain, after whose head the store links it.
func (t *Trail) Stamp(e Entry) Entry {
	t.fill(&e)
	e.Chain = t.opts.Chain
	return e
}

// Committed tells the trail of an entry of its chain that a store wrote
// in a record's commit: the head moves on to it (the store linked it
// after the head it read in that commit), and Options.Written counts it.
func (t *Trail) Committed(e Entry) {
	if t == nil {
		return
	}
	t.advance(e)
	if t.opts.Written != nil {
		t.opts.Written([]Entry{e})
	}
}

// advance makes e the head if it is past the head known: the trail's
// writer and the stores' commits (Committed) both move it on.
func (t *Trail) advance(e Entry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e.Chain == t.opts.Chain && (!t.known || e.Seq > t.head.Seq) {
		t.head, t.known = e, true
	}
}

// Failing is the last write's error, nil once a write succeeds. A
// required trail that is failing refuses actions before they are taken.
func (t *Trail) Failing() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failing
}

// Head is the chain's last entry this trail knows of.
func (t *Trail) Head() Entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.head
}

func (t *Trail) fill(e *Entry) {
	if e.Time.IsZero() {
		e.Time = t.opts.Now()
	}
	e.Time = e.Time.UTC()
	e.Instance = t.opts.Instance
	if e.Result == "" {
		e.Result = ResultOK
	}
}

// Close writes what is queued (trying for at most the write timeout) and
// stops the writer.
func (t *Trail) Close() {
	if t == nil {
		return
	}
	t.once.Do(func() { close(t.quit) })
	<-t.done
}

func (t *Trail) run() {
	defer close(t.done)
	var batch []*pending
	for {
		if len(batch) == 0 {
			select {
			case p := <-t.queue:
				batch = append(batch, p)
			case <-t.quit:
				t.drain()
				return
			}
		}
		batch = t.gather(batch)
		err := t.write(batch)
		if err == nil {
			batch = batch[:0]
			continue
		}
		// Waiters are told; the entries stay queued and are tried again,
		// so that an action taken is recorded once the store answers.
		for _, p := range batch {
			p.tell(fmt.Errorf("%w: %w", ErrNotWritten, err))
		}
		select {
		case <-time.After(time.Second):
		case <-t.quit:
			t.write(batch) //nolint:errcheck // last try; the log says
			t.drain()
			return
		}
	}
}

// gather adds what is queued to batch, up to 256 entries, waiting up to
// the linger for more unless an entry of the batch is waited for.
func (t *Trail) gather(batch []*pending) []*pending {
	var deadline <-chan time.Time
	if t.opts.Linger > 0 && !waited(batch) {
		timer := time.NewTimer(t.opts.Linger)
		defer timer.Stop()
		deadline = timer.C
	}
	for len(batch) < 256 {
		select {
		case p := <-t.queue:
			batch = append(batch, p)
			if p.done != nil {
				deadline = nil // someone waits: write now
			}
			continue
		default:
		}
		if deadline == nil {
			return batch
		}
		select {
		case p := <-t.queue:
			batch = append(batch, p)
			if p.done != nil {
				deadline = nil
			}
		case <-deadline:
			return batch
		case <-t.quit:
			return batch
		}
	}
	return batch
}

func waited(batch []*pending) bool {
	for _, p := range batch {
		if p.done != nil {
			return true
		}
	}
	return false
}

// drain writes what is left in the queue once, at Close.
func (t *Trail) drain() {
	for {
		var batch []*pending
	gather:
		for len(batch) < 256 {
			select {
			case p := <-t.queue:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		if len(batch) == 0 {
			return
		}
		if err := t.write(batch); err != nil {
			for _, p := range batch {
				p.tell(fmt.Errorf("%w: %w", ErrNotWritten, err))
			}
			return
		}
	}
}

// write appends batch to the chain (the store links it after the head
// it writes after), trying again after a store that gave up to other
// writers taking the chain's next sequence numbers (ErrConflict, with what
// it wrote before). On success every waiter is told.
func (t *Trail) write(batch []*pending) error {
	rest := batch
	for attempt := 0; len(rest) > 0; attempt++ {
		entries := make([]Entry, len(rest))
		for i, p := range rest {
			entries[i] = p.e
			entries[i].Chain = t.opts.Chain
		}
		ctx, cancel := context.WithTimeout(context.Background(), t.opts.Timeout)
		n, err := t.store.AppendAudit(ctx, entries)
		cancel()
		if n > 0 {
			t.written(rest[:n], entries[:n])
			rest = rest[n:]
		}
		switch {
		case errors.Is(err, ErrConflict) && attempt < 100:
			continue
		case err != nil:
			return t.fail(err)
		}
	}
	t.mu.Lock()
	t.failing = nil
	t.mu.Unlock()
	return nil
}

func (t *Trail) fail(err error) error {
	t.mu.Lock()
	t.failing = err
	t.mu.Unlock()
	if t.opts.Failed != nil {
		t.opts.Failed(err)
	}
	if t.opts.Logger != nil {
		t.opts.Logger.Error("audit: entries not written; retrying", "chain", t.opts.Chain, "err", err)
	}
	return err
}

func (t *Trail) written(ps []*pending, entries []Entry) {
	t.advance(entries[len(entries)-1])
	for _, p := range ps {
		p.tell(nil)
	}
	if t.opts.Written != nil {
		t.opts.Written(entries)
	}
	if l := t.opts.Logger; l != nil {
		for _, e := range entries {
			if e.Action == ActionMint {
				continue // one line per token would double the log; the head moves on in the next line
			}
			l.Info("audit", "chain", e.Chain, "seq", e.Seq, "hash", e.Hash, "actor", e.Actor, "action", e.Action,
				"target", e.Target, "result", e.Result, "detail", e.Detail, "request_id", e.RequestID)
		}
	}
}

// LogHead logs the chain's head (the server does every minute, so that the
// log holds a recent head even when only mints are audited).
func (t *Trail) LogHead() {
	if t == nil || t.opts.Logger == nil {
		return
	}
	h := t.Head()
	if h.Seq == 0 {
		return
	}
	t.opts.Logger.Info("audit head", "chain", h.Chain, "seq", h.Seq, "hash", h.Hash)
}
