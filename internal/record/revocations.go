package record

import (
	"context"
	"sync"
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

	mu        sync.RWMutex
	revoked   map[string]time.Time // jti → when the token expires
	watermark time.Time            // revocations from here on are still to be read
	loaded    bool
}

// revocationOverlap is how far back each Refresh reads again: revocations
// carry the revoking instance's clock, and a transaction may commit a
// revocation stamped a little before the previous Refresh ran.
const revocationOverlap = time.Minute

// NewRevocationList returns an empty list over s; Refresh loads it. now
// may be nil (time.Now).
func NewRevocationList(s Store, now func() time.Time) *RevocationList {
	if now == nil {
		now = time.Now
	}
	return &RevocationList{store: s, now: now, revoked: map[string]time.Time{}}
}

// Refresh reads the revocations made since the last Refresh (all of them
// the first time) and forgets the tokens that have expired.
func (l *RevocationList) Refresh(ctx context.Context) error {
	now := l.now()
	l.mu.RLock()
	since := l.watermark.Add(-revocationOverlap)
	if !l.loaded {
		since = time.Time{}
	}
	l.mu.RUnlock()
	revs, err := l.store.Revocations(ctx, since, now)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range revs {
		l.revoked[r.JTI] = r.Expires
	}
	for jti, exp := range l.revoked {
		if !exp.After(now) {
			delete(l.revoked, jti)
		}
	}
	l.watermark, l.loaded = now, true
	return nil
}

// Revoked reports whether the token with this jti was revoked, as of the
// last Refresh.
func (l *RevocationList) Revoked(jti string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.revoked[jti]
	return ok
}

// Len is how many revoked, unexpired tokens the list holds.
func (l *RevocationList) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.revoked)
}
