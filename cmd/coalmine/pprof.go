package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
)

// servePprof exposes Go's profiler on a separate listener, loopback only:
// profiles reveal memory contents and are not for the admin port.
func servePprof(addr string) error {
	if err := api.CheckBind(addr, ""); err != nil {
		return usageErr(fmt.Errorf("--pprof-addr must be a loopback address: %w", err))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on --pprof-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) //nolint:errcheck
	return nil
}
