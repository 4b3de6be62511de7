package ratelimit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/jwtd/jwtd/internal/testservice"
)

// BenchmarkAllow is the limiter's cost per request on each backend: one
// per_ip check over many client keys, from parallel goroutines.
func BenchmarkAllow(b *testing.B) {
	backends := map[string]func(b *testing.B) *Store{
		"memory": func(b *testing.B) *Store {
			st, err := NewMemoryStore(100000, nil)
			if err != nil {
				b.Fatal(err)
			}
			return st
		},
		"redis": func(b *testing.B) *Store {
			st, err := NewRedisStore(testservice.RedisURL(b))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return st
		},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			st := backends[name](b)
			lims, _ := ParseLimits("1000000 per second")
			l, err := New(st, []Rule{{Name: "per_ip", Limits: lims}}, "open", quiet, Hooks{})
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("198.51.100.%d", n.Add(1)%250)
					if _, err := l.Allow(context.Background(), "per_ip", key); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
