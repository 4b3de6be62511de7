package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/throttled/throttled/v2"
)

// errFull is a new key refused by a memory store whose every slot holds a
// bucket that has not refilled yet. The limiter answers it as a limit
// reached.
var errFull = errors.New("rate-limit table full of live buckets")

// memStore is the in-memory GCRA state. It holds at most max keys and drops
// a key only once its bucket has refilled (GCRA gives every write a TTL
// that says when). When every slot is live, a new key is refused rather
// than a live bucket evicted: an attacker with many addresses cannot push
// out someone's saturated bucket to reset it. The cost falls on new keys
// only while the table is full of live ones, and a full table is scanned
// for refilled buckets at most once per the earliest refill time it saw.
type memStore struct {
	max int
	now func() time.Time

	mu        sync.Mutex
	entries   map[string]memEntry
	nextSweep time.Time // no bucket refills before this: a sweep would find nothing
}

type memEntry struct {
	tat     int64     // GCRA's theoretical arrival time, unix nanoseconds
	refills time.Time // when the bucket is full again, and the entry may go
}

var _ throttled.GCRAStoreCtx = (*memStore)(nil)

func newMemStore(max int, now func() time.Time) *memStore {
	if now == nil {
		now = time.Now
	}
	return &memStore{max: max, now: now, entries: map[string]memEntry{}}
}

// GetWithTime returns the key's value, or -1 when it has none or its
// bucket has refilled (the same thing to GCRA), and the store's time.
func (m *memStore) GetWithTime(_ context.Context, key string) (int64, time.Time, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || !now.Before(e.refills) {
		return -1, now, nil
	}
	return e.tat, now, nil
}

// SetIfNotExistsWithTTL sets the key unless it holds a live bucket; a new
// key in a table full of live buckets is errFull.
func (m *memStore) SetIfNotExistsWithTTL(_ context.Context, key string, value int64, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		if now.Before(e.refills) {
			return false, nil
		}
	} else if len(m.entries) >= m.max && !m.sweep(now) {
		return false, errFull
	}
	m.entries[key] = memEntry{tat: value, refills: now.Add(ttl)}
	return true, nil
}

// CompareAndSwapWithTTL swaps the key's value when it is old and live.
func (m *memStore) CompareAndSwapWithTTL(_ context.Context, key string, old, value int64, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[key]
	if !ok || !now.Before(e.refills) || e.tat != old {
		return false, nil
	}
	m.entries[key] = memEntry{tat: value, refills: now.Add(ttl)}
	return true, nil
}

// sweep drops the buckets that have refilled and reports whether it freed
// a slot. It scans only when one may have: it remembers the earliest refill
// it saw.
func (m *memStore) sweep(now time.Time) bool {
	if now.Before(m.nextSweep) {
		return false
	}
	var earliest time.Time
	for k, e := range m.entries {
		switch {
		case !now.Before(e.refills):
			delete(m.entries, k)
		case earliest.IsZero() || e.refills.Before(earliest):
			earliest = e.refills
		}
	}
	m.nextSweep = earliest
	return len(m.entries) < m.max
}
