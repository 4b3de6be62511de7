// Command floor is the baseline of `make bench`: a bare net/http server that
// answers every request with a fixed token-sized body. Nothing on the
// machine serves HTTP faster, so jwtd's figures are read as a ratio to it.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18081", "address")
	flag.Parse()
	body := []byte("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzUxMiJ9." + strings.Repeat("x", 220) + "." + strings.Repeat("y", 86))
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
