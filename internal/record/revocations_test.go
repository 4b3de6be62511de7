package record_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/sqlite"
)

// The list learns revocations at Refresh, also those stamped a little
// before the last Refresh (another instance's clock), and forgets tokens
// once they expire.
func TestRevocationList(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "jwtd.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for jti, ttl := range map[string]time.Duration{"short": time.Minute, "long": time.Hour, "late": time.Hour, "kept": time.Hour} {
		r := &record.Record{JTI: jti, Profile: "p", Kid: "k", Alg: "HS256", Issued: now, Expires: now.Add(ttl)}
		if err := store.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	l := record.NewRevocationList(store, func() time.Time { return now }, 30*time.Second)
	if err := l.Refresh(ctx); err != nil || l.Len() != 0 {
		t.Fatalf("empty: %d %v", l.Len(), err)
	}
	store.RevokeJTI(ctx, "short", now)
	store.RevokeJTI(ctx, "long", now)
	if l.Revoked("short") {
		t.Error("known before a Refresh")
	}
	now = now.Add(2 * time.Second)
	if err := l.Refresh(ctx); err != nil || !l.Revoked("short") || !l.Revoked("long") || l.Revoked("kept") {
		t.Fatalf("after a refresh: %d %v", l.Len(), err)
	}
	// Stamped 30 s in the past by a slow clock elsewhere: still read.
	store.RevokeJTI(ctx, "late", now.Add(-30*time.Second))
	now = now.Add(2 * time.Second)
	if err := l.Refresh(ctx); err != nil || !l.Revoked("late") {
		t.Errorf("a revocation stamped before the last refresh: %v", err)
	}
	// Kept while the token may still verify (its expiry plus 30 s here),
	// then forgotten: it fails on exp anyway.
	now = now.Add(time.Minute) // "short" expired 4 s ago
	if err := l.Refresh(ctx); err != nil || !l.Revoked("short") {
		t.Errorf("within the keep after expiry: %v", err)
	}
	now = now.Add(time.Minute)
	if err := l.Refresh(ctx); err != nil || l.Revoked("short") || !l.Revoked("long") || l.Len() != 2 {
		t.Errorf("after short expired: %d %v", l.Len(), err)
	}
	// A list made later still reads a revocation within the keep.
	late := record.NewRevocationList(store, func() time.Time { return now }, time.Hour)
	if err := late.Refresh(ctx); err != nil || !late.Revoked("short") {
		t.Errorf("a fresh list with an hour's keep: %v", err)
	}
}
