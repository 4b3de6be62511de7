// Command fill writes recorded tokens straight into a jwtd SQLite store, as
// the seed 000 route records them (one of 1,000 phones, a fresh XID each),
// so that `make bench` can measure jwtd on a store that already holds a
// million records without minting them over HTTP first.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jwtd/jwtd/internal/record"
	"github.com/jwtd/jwtd/internal/sqlite"
)

func main() {
	path := flag.String("db", "jwtd.db", "SQLite file")
	n := flag.Int64("n", 1_000_000, "records to write")
	writers := flag.Int("writers", 256, "concurrent writers")
	flag.Parse()
	store, err := sqlite.Open(*path, sqlite.Options{GroupOptions: record.GroupOptions{MaxBatch: 1024}})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range *writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= *n; i = next.Add(1) {
				now := time.Now().UTC()
				r := &record.Record{
					JTI: fmt.Sprintf("%032x", i), Profile: "appverify", Kid: "appverify-hs256", Alg: "HS256",
					XID: fmt.Sprintf("fill-%d", i), Phone: fmt.Sprintf("+1415555%04d", 2000+i%1000),
					Issued: now, Expires: now.Add(90 * time.Second), ClientIP: "127.0.0.1",
					TokenSHA256: fmt.Sprintf("%064x", i),
				}
				if err := store.Insert(context.Background(), r); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("wrote %d records in %s\n", *n, time.Since(start).Round(time.Second))
}
