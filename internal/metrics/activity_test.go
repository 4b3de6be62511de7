package metrics

import (
	"testing"
	"time"
)

// Activity is the last 60 minutes, oldest first, with what each minute
// counted; a minute older than an hour is forgotten when its bucket comes
// round again.
func TestActivity(t *testing.T) {
	m := New()
	now := time.Date(2026, 11, 26, 12, 30, 15, 0, time.UTC)
	m.activity.issued("appverify", now.Add(-2*time.Hour)) // same bucket as now-1h… and stale
	m.activity.issued("appverify", now.Add(-59*time.Minute))
	m.activity.issued("appverify", now)
	m.activity.issued("appverify", now)
	m.activity.issued("default", now)
	m.activity.rateLimited(now.Add(-time.Minute))
	got := m.Activity(now)
	if len(got) != 60 {
		t.Fatalf("%d minutes", len(got))
	}
	last, first := got[59], got[0]
	if !last.Start.Equal(time.Date(2026, 11, 26, 12, 30, 0, 0, time.UTC)) || last.Issued["appverify"] != 2 || last.Issued["default"] != 1 {
		t.Errorf("the current minute: %+v", last)
	}
	if got[58].RateLimited != 1 {
		t.Errorf("a minute ago: %+v", got[58])
	}
	if first.Issued["appverify"] != 1 {
		t.Errorf("59 minutes ago: %+v", first)
	}
	total := 0
	for _, m := range got {
		for _, n := range m.Issued {
			total += n
		}
	}
	if total != 4 {
		t.Errorf("%d tokens in the hour, want 4 (the one two hours ago forgotten)", total)
	}
	var none *Metrics
	if len(none.Activity(now)) != 60 {
		t.Error("a nil Metrics has no hour")
	}
}
