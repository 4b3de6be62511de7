package metrics

import (
	"maps"
	"sync"
	"time"
)

// activityMinutes is how far back Activity reaches.
const activityMinutes = 60

// activity counts, per minute of the last hour, tokens issued by profile
// and requests refused by a rate limit: what the console charts, without a
// time-series database.
type activity struct {
	mu      sync.Mutex
	minutes [activityMinutes]minute
}

type minute struct {
	unix        int64 // the minute, in Unix minutes; 0 for none yet
	issued      map[string]int
	rateLimited int
}

// at is the bucket of the minute t falls in, emptied if it held an older
// minute.
func (a *activity) at(t time.Time) *minute {
	u := t.Unix() / 60
	m := &a.minutes[u%activityMinutes]
	if m.unix != u {
		*m = minute{unix: u}
	}
	return m
}

func (a *activity) issued(profile string, t time.Time) {
	a.mu.Lock()
	m := a.at(t)
	if m.issued == nil {
		m.issued = map[string]int{}
	}
	m.issued[profile]++
	a.mu.Unlock()
}

func (a *activity) rateLimited(t time.Time) {
	a.mu.Lock()
	a.at(t).rateLimited++
	a.mu.Unlock()
}

// Minute is one minute of activity.
type Minute struct {
	Start       time.Time      `json:"start"`
	Issued      map[string]int `json:"issued"`       // tokens handed out, by profile
	RateLimited int            `json:"rate_limited"` // requests refused by a rate limit
}

// Activity returns the last hour, a minute at a time, oldest first, the
// current minute last; minutes without activity are there with zeros.
func (m *Metrics) Activity(now time.Time) []Minute {
	out := make([]Minute, activityMinutes)
	if m == nil {
		return out
	}
	m.activity.mu.Lock()
	defer m.activity.mu.Unlock()
	current := now.Unix() / 60
	for i := range out {
		u := current - activityMinutes + 1 + int64(i)
		out[i] = Minute{Start: time.Unix(u*60, 0).UTC(), Issued: map[string]int{}}
		if b := &m.activity.minutes[u%activityMinutes]; b.unix == u {
			out[i].Issued = maps.Clone(b.issued)
			if out[i].Issued == nil {
				out[i].Issued = map[string]int{}
			}
			out[i].RateLimited = b.rateLimited
		}
	}
	return out
}
