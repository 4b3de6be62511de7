package ratelimit

import (
	"context"
	"fmt"
	"github.com/jwtd/jwtd/internal/logevery"
	"github.com/redis/go-redis/v9"
	"log/slog"
)

// LogRedisTo routes go-redis's own messages (it writes its connection-pool
// errors to the standard logger, in plain text) into log, at warn, at most
// one line per 10 s with a count of the ones left out: while Redis is away
// the pool retries constantly. go-redis has one logger for the process.
func LogRedisTo(log *slog.Logger) {
	redis.SetLogger(&redisLog{log: log, every: logevery.New(backendLogEvery)})
}

type redisLog struct {
	log   *slog.Logger
	every *logevery.Every
}

func (l *redisLog) Printf(ctx context.Context, format string, v ...any) {
	if ok, held := l.every.Allow(); ok {
		l.log.LogAttrs(ctx, slog.LevelWarn, "redis client", slog.String("detail", fmt.Sprintf(format, v...)),
			slog.Int64("lines_since_last", held))
	}
}
