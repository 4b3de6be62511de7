package audit

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Refusals counts refused authentications per API key name and client
// address, and records them one entry per pair per minute (Flush), not
// one per request: a client retrying a wrong key writes a line a minute.
type Refusals struct {
	mu     sync.Mutex
	counts map[[2]string]int
}

// NewRefusals makes an empty count.
func NewRefusals() *Refusals { return &Refusals{counts: map[[2]string]int{}} }

// Add counts one refusal of key name (or "unknown", "none") from addr.
// At most 10000 pairs are held between flushes; past it they count under
// "other".
func (r *Refusals) Add(name, addr string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]string{name, addr}
	if _, ok := r.counts[k]; !ok && len(r.counts) >= 10000 {
		k = [2]string{"other", "other"}
	}
	r.counts[k]++
}

// Flush records the counts since the last flush through t, at time at
// (the end of the minute they were counted in), and starts counting anew.
func (r *Refusals) Flush(ctx context.Context, t *Trail, at time.Time) error {
	r.mu.Lock()
	counts := r.counts
	r.counts = map[[2]string]int{}
	r.mu.Unlock()
	var first error
	for k, n := range counts {
		err := t.Record(ctx, Entry{Time: at, Actor: k[0], Action: ActionAuthRefused, Target: "apikey:" + k[0],
			Result: ResultRefused, ClientIP: k[1], Detail: fmt.Sprintf("count=%d", n)})
		if first == nil {
			first = err
		}
	}
	return first
}
