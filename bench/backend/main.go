// Command backend is a small HTTP upstream for trying coalmine and for its
// benchmarks: it answers every request with its version, optionally after
// a delay and with a share of 500s. It has no /health path on purpose, like
// most services.
//
//	go run ./bench/backend -addr 127.0.0.1:9001 -version v1.4.2
//	go run ./bench/backend -addr 127.0.0.1:9002 -version v1.5.0 -error-rate 0.05 -delay 20ms
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	version := flag.String("version", "v1", "version to answer with (also in the X-Version header)")
	errorRate := flag.Float64("error-rate", 0, "share of requests answered 500, 0 to 1")
	delay := flag.Duration("delay", 0, "time to wait before answering")
	flag.Parse()
	if *errorRate < 0 || *errorRate > 1 {
		fmt.Fprintln(os.Stderr, "backend: -error-rate must be between 0 and 1")
		os.Exit(2)
	}
	body := []byte(*version + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if *delay > 0 {
			time.Sleep(*delay)
		}
		w.Header().Set("X-Version", *version)
		if *errorRate > 0 && rand.Float64() < *errorRate {
			http.Error(w, "injected error from "+*version, http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("backend %s listening on %s", *version, *addr)
	log.Fatal(srv.ListenAndServe())
}
