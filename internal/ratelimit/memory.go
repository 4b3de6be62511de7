package ratelimit

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/throttled/throttled/v2"
)

// memStore is the in-memory GCRA state, at most max keys. When a new key
// needs a slot in a full table, the bucket nearest to refilling gives way
// (one that has refilled first of all): evicting it hands its owner at most
// the little it had not yet regained. So churn from many addresses pushes
// out other churn, whose buckets refill soonest, and a saturated bucket,
// which refills last, is the last to go: an attacker cannot reset someone
// else's limit without first saturating more buckets than the table holds,
// and no caller is ever refused for want of a slot.
type memStore struct {
	max int
	now func() time.Time

	mu       sync.Mutex
	entries  map[string]memEntry
	byRefill refillHeap // every write's (refills, key); stale items are skipped
}

type memEntry struct {
	tat     int64     // GCRA's theoretical arrival time, unix nanoseconds
	refills time.Time // when the bucket is full again (GCRA's TTL)
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

// SetIfNotExistsWithTTL sets the key unless it holds a live bucket, making
// room in a full table first.
func (m *memStore) SetIfNotExistsWithTTL(_ context.Context, key string, value int64, ttl time.Duration) (bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.entries[key]; ok {
		if now.Before(e.refills) {
			return false, nil
		}
	} else {
		for len(m.entries) >= m.max && m.evictOne() {
		}
	}
	m.put(key, memEntry{tat: value, refills: now.Add(ttl)})
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
	m.put(key, memEntry{tat: value, refills: now.Add(ttl)})
	return true, nil
}

func (m *memStore) put(key string, e memEntry) {
	m.entries[key] = e
	heap.Push(&m.byRefill, refillItem{refills: e.refills, key: key})
	if len(m.byRefill) > 2*m.max+64 { // mostly stale items: start afresh
		m.byRefill = m.byRefill[:0]
		for k, e := range m.entries {
			m.byRefill = append(m.byRefill, refillItem{refills: e.refills, key: k})
		}
		heap.Init(&m.byRefill)
	}
}

// evictOne removes the entry that refills first and reports whether it
// removed one.
func (m *memStore) evictOne() bool {
	for len(m.byRefill) > 0 {
		it := heap.Pop(&m.byRefill).(refillItem)
		if e, ok := m.entries[it.key]; ok && e.refills.Equal(it.refills) {
			delete(m.entries, it.key)
			return true
		}
	}
	return false
}

// refillHeap orders keys by when their buckets refill, soonest first.
type refillItem struct {
	refills time.Time
	key     string
}

type refillHeap []refillItem

func (h refillHeap) Len() int           { return len(h) }
func (h refillHeap) Less(i, j int) bool { return h[i].refills.Before(h[j].refills) }
func (h refillHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refillHeap) Push(x any)        { *h = append(*h, x.(refillItem)) }
func (h *refillHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
