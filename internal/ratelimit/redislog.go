package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// LogRedisTo routes go-redis's own messages (it writes its connection-pool
// errors to the standard logger, in plain text) into log, at warn, at most
// one line per 10 s with a count of the ones left out: while Redis is away
// the pool retries constantly. go-redis has one logger for the process.
func LogRedisTo(log *slog.Logger) {
	redis.SetLogger(&redisLog{log: log})
}

type redisLog struct {
	log        *slog.Logger
	last       atomic.Int64 // unix nanos of the last line written
	suppressed atomic.Int64
}

func (l *redisLog) Printf(ctx context.Context, format string, v ...any) {
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(backendLogEvery) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	l.log.LogAttrs(ctx, slog.LevelWarn, "redis client", slog.String("detail", fmt.Sprintf(format, v...)),
		slog.Int64("lines_since_last", l.suppressed.Swap(0)))
}
