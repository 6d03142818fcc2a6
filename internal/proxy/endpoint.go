package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// endpoint is one upstream server of a version. Its health fields are
// atomics read on every request and written only when health changes.
type endpoint struct {
	url  string
	addr string // host:port
	tls  bool
	// h2c: the endpoint speaks cleartext HTTP/2 only (h2c://); HTTP/1.1
	// requests reach it through the HTTP/2 handler (see handle).
	h2c bool
	hc  *fasthttp.HostClient
	// rt carries the requests of HTTP/2 clients (and every request to an
	// h2c endpoint): HTTP/1.1 to http://, HTTP/2 by ALPN (else 1.1) to
	// https://, cleartext HTTP/2 to h2c://; pooled, and multiplexed when
	// HTTP/2.
	rt *http.Transport
	// mirror sends mirrored requests: whole responses, bounded in time as a
	// whole (mirrorTimeout), on connections of its own.
	mirror *fasthttp.HostClient
	// checked: an active health check owns up and healthy; answers to
	// requests prove nothing then (the check's verdict stands).
	checked bool

	// up is set once the endpoint has proven reachable: a connection probe
	// or an active check passed, or it answered a request. Until then no
	// traffic is weighted onto it (a stable with no endpoint proven yet is
	// still tried: see pool.pickAny).
	up atomic.Bool
	// healthy is the active health check's verdict: false until the first
	// check passes, and always true without active checks.
	healthy atomic.Bool
	// ejectedUntil is a unix-nano deadline set by passive outlier detection.
	ejectedUntil atomic.Int64
	consecErrors atomic.Int32
	inflight     atomic.Int64
	// announced is the health last reported as an event (announced*), so
	// that one transition makes one event however many observers see it.
	announced atomic.Int32
}

// Health states an endpoint last announced.
const (
	announcedNone int32 = iota
	announcedHealthy
	announcedUnhealthy
)

// announce records healthy as the announced state and reports whether the
// change deserves an event: any change to unhealthy does, a change to
// healthy only when it recovers from an announced unhealthy state (an
// endpoint's first success is not news).
func (ep *endpoint) announce(healthy bool) bool {
	want := announcedUnhealthy
	if healthy {
		want = announcedHealthy
	}
	for {
		old := ep.announced.Load()
		if old == want {
			return false
		}
		if ep.announced.CompareAndSwap(old, want) {
			return !healthy || old == announcedUnhealthy
		}
	}
}

// endpointConfig is what endpoints of one rollout share.
type endpointConfig struct {
	timeouts    spec.Timeouts
	maxConns    int
	upstreamTLS *tls.Config
	checked     bool
}

func newEndpoint(raw string, cfg endpointConfig) (*endpoint, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("parse endpoint %q: %w", raw, err)
	}
	ep := &endpoint{url: raw, checked: cfg.checked}
	switch u.Scheme {
	case "http":
	case "https":
		ep.tls = true
	case "h2c":
		ep.h2c = true
	default:
		return nil, fmt.Errorf("endpoint %q: scheme must be http, https or h2c", raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if ep.tls {
			port = "443"
		}
	}
	ep.addr = net.JoinHostPort(host, port)
	connect, idle := cfg.timeouts.Connect.D(), cfg.timeouts.Idle.D()
	var tlsCfg *tls.Config
	if ep.tls {
		// nil upstreamTLS means the system roots with the endpoint's host name.
		tlsCfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		if cfg.upstreamTLS != nil {
			tlsCfg = cfg.upstreamTLS.Clone()
			if tlsCfg.ServerName == "" {
				tlsCfg.ServerName = host
			}
		}
	}
	ep.hc = &fasthttp.HostClient{
		Addr:  ep.addr,
		IsTLS: ep.tls,
		// The TLS handshake happens in Dial, under the connect timeout; the
		// connection handed over says it is TLS already (Handshake).
		TLSConfig: tlsCfg,
		Dial: func(addr string) (net.Conn, error) {
			c, err := dialUpstream(addr, connect, tlsCfg)
			if err != nil {
				return nil, err
			}
			return newUpstreamConn(c, idle), nil
		},
		// Errors never quote the upstream's bytes: they could be another
		// user's data left on a desynchronised connection.
		SecureErrorLogMessage: true,
		MaxConns:              cfg.maxConns,
		MaxIdleConnDuration:   cfg.timeouts.Idle.D(),
		ReadTimeout:           cfg.timeouts.Response.D(),
		// Streaming keeps memory flat for large responses and lets the
		// client see the first bytes as soon as the upstream sends them.
		StreamResponseBody:            true,
		DisablePathNormalizing:        true,
		DisableHeaderNamesNormalizing: false,
		NoDefaultUserAgentHeader:      true,
		// Retries, for an idempotent request without a streamed body whose
		// pooled keep-alive connection turned out to be closed by the
		// upstream; several pooled connections can be stale at once (an
		// upstream restart closes them all). Dial errors are retried by the
		// proxy, on another endpoint. Each retry on a stale connection fails
		// at once, so the bound is about how many can be stale together.
		MaxIdemponentCallAttempts: 10,
		// LIFO keeps reusing the most recently used connections, which are
		// the least likely to have been closed by the upstream's idle timeout;
		// the others idle out.
		ConnPoolStrategy: fasthttp.LIFO,
		RetryIfErr:       retryStaleConnection,
	}
	ep.mirror = &fasthttp.HostClient{
		Addr:      ep.addr,
		IsTLS:     ep.tls,
		TLSConfig: tlsCfg,
		Dial: func(addr string) (net.Conn, error) {
			return dialUpstream(addr, connect, tlsCfg)
		},
		MaxConns:                 cfg.maxConns,
		MaxIdleConnDuration:      idle,
		ReadTimeout:              mirrorTimeout,
		WriteTimeout:             mirrorTimeout,
		MaxResponseBodySize:      mirrorMaxResponse,
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		SecureErrorLogMessage:    true,
	}
	ep.rt = newTransport(ep, tlsCfg, cfg)
	ep.healthy.Store(!cfg.checked)
	return ep, nil
}

// newTransport builds the net/http transport of an endpoint. Its limits
// mirror the fasthttp client's: connectionPool.maxConnections connections
// (HTTP/2 streams share them, up to the server's stream limit each), the
// connect timeout for the dial and the TLS handshake, idle connections
// closed after the idle time. An HTTP/2 connection silent for the idle
// time is pinged, and closed if the ping is not answered, so a dead
// upstream under a long stream is found. The response timeout is per
// request (h2Call), because a gRPC stream may not answer for a long time.
func newTransport(ep *endpoint, tlsCfg *tls.Config, cfg endpointConfig) *http.Transport {
	connect, idle := cfg.timeouts.Connect.D(), cfg.timeouts.Idle.D()
	var protos http.Protocols
	switch {
	case ep.h2c:
		protos.SetUnencryptedHTTP2(true)
	case ep.tls:
		protos.SetHTTP1(true)
		protos.SetHTTP2(true)
	default:
		protos.SetHTTP1(true)
	}
	return &http.Transport{
		DialContext: (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		// A copy: the transport adds its ALPN protocols, which the fasthttp
		// client sharing tlsCfg must not offer.
		TLSClientConfig:     tlsCfg.Clone(),
		TLSHandshakeTimeout: connect,
		Protocols:           &protos,
		MaxConnsPerHost:     cfg.maxConns,
		MaxIdleConnsPerHost: cfg.maxConns,
		IdleConnTimeout:     idle,
		DisableCompression:  true,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout:  idle,
			WriteByteTimeout: idle,
		},
	}
}

// transportScheme is the scheme of URLs sent through ep.rt: h2c endpoints
// are http:// to a transport that speaks only unencrypted HTTP/2.
func (ep *endpoint) transportScheme() string {
	if ep.tls {
		return "https"
	}
	return "http"
}

// Mirrors: a response is read whole (its status is all coalmine keeps)
// within mirrorTimeout, and one larger than mirrorMaxResponse is given up.
const (
	mirrorTimeout     = 30 * time.Second
	mirrorMaxResponse = 4 << 20
)

// dialUpstream connects to an endpoint within the connect timeout,
// including the TLS handshake for https endpoints, so that an endpoint that
// accepts TCP but never speaks TLS fails as a connection failure (retried
// elsewhere) and not after the idle time.
func dialUpstream(addr string, connect time.Duration, tlsCfg *tls.Config) (net.Conn, error) {
	c, err := fasthttp.DialTimeout(addr, connect)
	if err != nil || tlsCfg == nil {
		return c, err
	}
	tc := tls.Client(c, tlsCfg)
	_ = tc.SetDeadline(time.Now().Add(connect))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("TLS handshake with %s: %w", addr, err)}
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// wantsNotice reports whether an answer from the endpoint is news: it has
// not proven reachable yet, or it was announced unhealthy. With an active
// check the check decides, never an answer. Two atomic loads, so the
// request path can ask every time.
func (ep *endpoint) wantsNotice() bool {
	return !ep.checked && (!ep.up.Load() || ep.announced.Load() == announcedUnhealthy)
}

// available reports whether the endpoint may take traffic at now (unix nanos).
func (ep *endpoint) available(now int64) bool {
	return ep.up.Load() && ep.healthy.Load() && ep.ejectedUntil.Load() <= now
}

// outlier tracks consecutive failures for passive ejection.
type outlier struct {
	threshold int32
	ejection  time.Duration
}

// fail records an upstream failure and reports whether it ejected ep. An
// endpoint already ejected is not ejected again by the requests that were
// in flight when it failed: one ejection, one event.
func (o outlier) fail(ep *endpoint, now int64) bool {
	if o.threshold <= 0 {
		return false
	}
	if ep.consecErrors.Add(1) < o.threshold {
		return false
	}
	old := ep.ejectedUntil.Load()
	if old > now || !ep.ejectedUntil.CompareAndSwap(old, now+int64(o.ejection)) {
		return false
	}
	ep.consecErrors.Store(0)
	return true
}

// ok records a success; it writes only when there is a streak to reset, so
// the common path stays read-only and cache-friendly.
func (o outlier) ok(ep *endpoint) {
	if ep.consecErrors.Load() != 0 {
		ep.consecErrors.Store(0)
	}
}

// retryStaleConnection allows fasthttp's single retry only when a reused
// connection failed before any response byte and the method is idempotent:
// the upstream closed an idle connection as we sent on it, which every
// keep-alive client meets, and replaying such a request is safe.
func retryStaleConnection(req *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	if !staleConnection(err) {
		return false, false
	}
	switch string(req.Header.Method()) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return false, true
	}
	return false, false
}

// staleConnection reports the errors of a pooled connection the upstream
// had already closed: EOF before the first response byte, or a reset or
// broken pipe while writing the request.
func staleConnection(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

var (
	schemeHTTP  = []byte("http")
	schemeHTTPS = []byte("https")
)

// setScheme gives req the endpoint's scheme. A request that arrived on a
// TLS listener says https, and fasthttp's HostClient refuses to send a
// request whose scheme differs from its own (it takes it for a redirect).
func (ep *endpoint) setScheme(req *fasthttp.Request) {
	if ep.tls {
		req.URI().SetSchemeBytes(schemeHTTPS)
	} else {
		req.URI().SetSchemeBytes(schemeHTTP)
	}
}
