package httpapi

import (
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkPhoneToken is the seed 000 hot path end to end in-process:
// phone parsing, XID check, signing and the group-committed record on a
// real SQLite file.
func BenchmarkPhoneToken(b *testing.B) {
	h, _ := testServer(b)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := do(b, h, "GET", fmt.Sprintf("/v1/token/+14155552671/bench-%d", n.Add(1)), "", "")
			if w.Code != 200 {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
}
