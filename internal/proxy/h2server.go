package proxy

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// HTTP/2 limits of a listener, beside those from the rollout: a client's
// concurrent streams per connection (nginx allows 128, Go 250; a client
// wanting more opens another connection, within clientLimits), and the
// header list size, which is clientLimits.maxHeaderBytes as for HTTP/1.1.
const h2MaxConcurrentStreams = 250

// http2Front is a rollout's HTTP/2 server: Go's net/http, fed the HTTP/2
// connections the protocol splitter picks out, over TLS (ALPN h2) or
// cleartext (h2c prior knowledge).
type http2Front struct {
	srv    *http.Server
	served chan struct{}
}

// startHTTP2 serves the HTTP/2 connections of ln with rp's HTTP/2 handler.
//
// Limits: streams per connection h2MaxConcurrentStreams; header list
// clientLimits.maxHeaderBytes (a larger one is refused: 431 before the
// handler); a connection with no stream open is closed after
// timeouts.idle, one that sends nothing for timeouts.idle is pinged and
// closed if it does not answer, and a write that makes no progress for
// timeouts.idle closes the connection (a client that stops reading).
// Frame and window sizes keep Go's defaults (frames up to 1 MiB read,
// 1 MiB connection and stream windows). Go's server also bounds what
// the HTTP/2 attacks exploit: reset streams count against the stream
// limit until their handlers end (rapid reset), CONTINUATION frames stop
// at the header limit, and a peer over the limits gets GOAWAY.
func startHTTP2(rp *rolloutProxy, s spec.RolloutSpec, ln net.Listener) *http2Front {
	tr := s.TrafficRouting
	var protos http.Protocols
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	idle := tr.Timeouts.Idle.D()
	srv := &http.Server{
		Handler:        http.HandlerFunc(rp.serveHTTP2),
		Protocols:      &protos,
		MaxHeaderBytes: tr.ClientLimits.MaxHeaderBytes,
		IdleTimeout:    idle,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: h2MaxConcurrentStreams,
			SendPingTimeout:      idle,
			WriteByteTimeout:     idle,
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	f := &http2Front{srv: srv, served: make(chan struct{})}
	go func() {
		defer close(f.served)
		_ = srv.Serve(ln)
	}()
	return f
}

// shutdown sends every HTTP/2 connection GOAWAY and waits for its streams
// until ctx ends, then closes what is left.
func (f *http2Front) shutdown(ctx context.Context) error {
	if f == nil {
		return nil
	}
	err := f.srv.Shutdown(ctx)
	if err != nil {
		_ = f.srv.Close()
	}
	<-f.served
	return err
}
