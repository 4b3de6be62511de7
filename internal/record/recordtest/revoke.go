package recordtest

import (
	"context"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/record"
)

func testRevoke(t *testing.T, s Store) {
	ctx := context.Background()
	insert(t, s, rec("r1", "tx", "+1", 0))
	insert(t, s, rec("r2", "tx", "+1", 1))
	insert(t, s, rec("r3", "tx", "+1", 2))
	insert(t, s, rec("r4", "other", "+1", 3))
	at := base.Add(time.Minute)
	if n, err := s.RevokeJTI(ctx, "r1", at); n != 1 || err != nil {
		t.Errorf("revoke jti: %d %v", n, err)
	}
	if n, err := s.RevokeJTI(ctx, "r1", at.Add(time.Second)); n != 0 || err != nil {
		t.Errorf("revoke again: %d %v", n, err)
	}
	if n, err := s.RevokeXID(ctx, "tx", at.Add(2*time.Second)); n != 2 || err != nil {
		t.Errorf("revoke xid: %d %v (r1 already revoked)", n, err)
	}
	if n, err := s.RevokeJTI(ctx, "nope", at); n != 0 || err != nil {
		t.Errorf("revoke unknown: %d %v", n, err)
	}
	r1, _ := s.ByJTI(ctx, "r1")
	r2, _ := s.ByJTI(ctx, "r2")
	r4, _ := s.ByJTI(ctx, "r4")
	if !r1.Revoked.Equal(at) || !r2.Revoked.Equal(at.Add(2*time.Second)) || !r4.Revoked.IsZero() {
		t.Errorf("revoked times: %v %v %v", r1.Revoked, r2.Revoked, r4.Revoked)
	}
	if r1.Status(base) != record.Revoked || r4.Status(base) != record.Active {
		t.Errorf("status: %s %s", r1.Status(base), r4.Status(base))
	}
}

func testRevocations(t *testing.T, s Store) {
	ctx := context.Background()
	for i, jti := range []string{"v1", "v2", "v3", "v4"} {
		insert(t, s, rec(jti, "", "", i)) // expire 90 s after base
	}
	if got, err := s.Revocations(ctx, time.Time{}, base); err != nil || len(got) != 0 {
		t.Fatalf("nothing revoked yet: %+v %v", got, err)
	}
	at := base.Add(10 * time.Second)
	for i, jti := range []string{"v3", "v1", "v2"} {
		if _, err := s.RevokeJTI(ctx, jti, at.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Revocations(ctx, time.Time{}, base)
	if err != nil || len(got) != 3 || got[0].JTI != "v3" || got[1].JTI != "v1" || got[2].JTI != "v2" {
		t.Fatalf("all, oldest first: %+v %v", got, err)
	}
	if !got[0].Revoked.Equal(at) || !got[0].Expires.Equal(base.Add(2*time.Millisecond+90*time.Second)) {
		t.Errorf("times: %+v", got[0])
	}
	// Since a time: only the later ones. Past their expiry: none.
	if got, err := s.Revocations(ctx, at.Add(time.Second), base); err != nil || len(got) != 2 || got[0].JTI != "v1" {
		t.Errorf("since: %+v %v", got, err)
	}
	if got, err := s.Revocations(ctx, time.Time{}, base.Add(2*time.Minute)); err != nil || len(got) != 0 {
		t.Errorf("all expired: %+v %v", got, err)
	}
}
