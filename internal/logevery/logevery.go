// Package logevery spaces out a log line that would otherwise repeat for
// every request during an outage (a store that cannot commit, a rate-limit
// backend away): one line per interval, with the count of those left out.
// Metrics count every occurrence; the log says why.
package logevery

import (
	"sync/atomic"
	"time"
)

// Every lets one line through per interval. The zero value lets every line
// through; it is safe for concurrent use.
type Every struct {
	interval   time.Duration
	last       atomic.Int64 // unix nanos of the last line let through
	suppressed atomic.Int64 // lines held back since
}

// New lets one line through per interval.
func New(interval time.Duration) *Every { return &Every{interval: interval} }

// Allow reports whether a line may be written now and, when it may, how
// many were held back since the last one.
func (e *Every) Allow() (ok bool, heldBack int64) { return e.AllowAt(time.Now()) }

// AllowAt is Allow at the time t (tests step it).
func (e *Every) AllowAt(t time.Time) (ok bool, heldBack int64) {
	now := t.UnixNano()
	last := e.last.Load()
	if last != 0 && now-last < int64(e.interval) || !e.last.CompareAndSwap(last, now) {
		e.suppressed.Add(1)
		return false, 0
	}
	return true, e.suppressed.Swap(0)
}
