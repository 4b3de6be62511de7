package record

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// RevocationList is the store's revocations of live tokens, held in memory
// so that a verification asks a map, not the store. Refresh brings it up to
// date; a list refreshed every interval misses a revocation made through
// another instance for at most that interval (plus the store's own lag).
// Its size is the number of tokens revoked that have not expired yet.
// Safe for concurrent use.
type RevocationList struct {
	store Store
	now   func() time.Time
	keep  time.Duration // how long past its record's expiry a revocation is kept

	// revoked is jti → until when it is kept; a map is never changed once
	// stored, so that readers take no lock (Refresh copies).
	revoked atomic.Pointer[map[string]time.Time]

	mu        sync.Mutex // one Refresh at a time
	watermark time.Time  // revocations from here on are still to be read
	loaded    bool
}

// revocationOverlap is how far back each Refresh reads again: revocations
// carry the revoking instance's clock, and a transaction may commit a
// revocation stamped a little before the previous Refresh ran.
const revocationOverlap = time.Minute

// NewRevocationList returns an empty list over s; Refresh loads it. A
// revocation is kept until keep past its record's expiry: as long as the
// token may still verify (the verifier's leeway, and for tokens without exp
// the lifetime their verifier gives them). now may be nil (time.Now).
func NewRevocationList(s Store, now func() time.Time, keep time.Duration) *RevocationList {
	if now == nil {
		now = time.Now
	}
	l := &RevocationList{store: s, now: now, keep: keep}
	l.revoked.Store(&map[string]time.Time{})
	return l
}

// Refresh reads the revocations made since the last Refresh (all of them
// the first time) and forgets those kept long enough.
func (l *RevocationList) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	since := l.watermark.Add(-revocationOverlap)
	if !l.loaded {
		since = time.Time{}
	}
	revs, err := l.store.Revocations(ctx, since, now.Add(-l.keep))
	if err != nil {
		return err
	}
	old := *l.revoked.Load()
	next := make(map[string]time.Time, len(old)+len(revs))
	for jti, until := range old {
		if until.After(now) {
			next[jti] = until
		}
	}
	for _, r := range revs {
		next[r.JTI] = r.Expires.Add(l.keep)
	}
	l.revoked.Store(&next)
	l.watermark, l.loaded = now, true
	return nil
}

// Revoked reports whether the token with this jti was revoked, as of the
// last Refresh. It takes no lock.
func (l *RevocationList) Revoked(jti string) bool {
	_, ok := (*l.revoked.Load())[jti]
	return ok
}

// Len is how many revoked, unexpired tokens the list holds.
func (l *RevocationList) Len() int { return len(*l.revoked.Load()) }
