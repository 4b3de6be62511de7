package record

import (
	"context"
	"time"
)

// Purger deletes records a retention period after they expire.
type Purger struct {
	Store     Store
	Retention time.Duration
	Now       func() time.Time
}

// RunOnce purges what expired more than Retention before Now.
func (p *Purger) RunOnce(ctx context.Context) (int, error) {
	return p.Store.Purge(ctx, p.Now().Add(-p.Retention))
}
