package mongo

import (
	"context"
	"testing"
	"time"

	"github.com/jwtd/jwtd/internal/testservice"
)

// Opening a database a second time (a restart) finds its indexes there.
func TestReopen(t *testing.T) {
	s := open(t, testservice.MongoURL(t), Options{Retention: time.Hour})
	uri := testservice.MongoURL(t) + "/" + s.tokens.Database().Name()
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		again, err := Open(ctx, uri, Options{Retention: time.Hour})
		cancel()
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		again.Close()
	}
}
