// Package proxy is coalmine's data plane: one HTTP listener per rollout that
// routes each request to the stable or the canary version with a
// route.Table read from an atomic pointer, load-balances among healthy
// endpoints, mirrors, and records telemetry.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// ErrUnknownRollout is returned for a rollout the proxy does not serve.
var ErrUnknownRollout = errors.New("unknown rollout")

// Options configure a Proxy.
type Options struct {
	Logger    *slog.Logger
	Telemetry *telemetry.Registry
	// MirrorWorkers and MirrorQueue bound mirroring (defaults 32 and 1024).
	MirrorWorkers int
	MirrorQueue   int
	// OnEndpointHealth is called (from a background goroutine) when an
	// endpoint becomes healthy or unhealthy, by active check or ejection.
	OnEndpointHealth func(rollout string, role spec.Role, version, url string, healthy bool, reason string)
}

// Proxy serves every rollout's listener. Its methods are safe for concurrent
// use; they are control-plane operations and may take a lock. The request
// path never does.
type Proxy struct {
	opts   Options
	log    *slog.Logger
	mirror *mirrorPool

	mu       sync.Mutex
	rollouts map[string]*rolloutProxy
	// closing stops background rebinding; wg waits for it.
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New creates a Proxy with no rollouts.
func New(opts Options) *Proxy {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Telemetry == nil {
		opts.Telemetry = telemetry.NewRegistry(telemetry.Options{})
	}
	if opts.MirrorWorkers <= 0 {
		opts.MirrorWorkers = 32
	}
	if opts.MirrorQueue <= 0 {
		opts.MirrorQueue = 1024
	}
	return &Proxy{
		opts:     opts,
		log:      opts.Logger,
		mirror:   newMirrorPool(opts.MirrorWorkers, opts.MirrorQueue, 30*time.Second, opts.Logger),
		rollouts: map[string]*rolloutProxy{},
		closing:  make(chan struct{}),
	}
}

// rolloutProxy is the data plane of one rollout.
type rolloutProxy struct {
	name      string
	log       *slog.Logger
	stats     *telemetry.RolloutStats
	mirror    *mirrorPool
	table     atomic.Pointer[route.Table]
	upstreams atomic.Pointer[upstreamSet]
	onHealth  func(pl *pool, ep *endpoint, healthy bool, reason string)
	// bridge serves an HTTP/1.1 request with the HTTP/2 handler, for
	// rollouts with h2c endpoints.
	bridge fasthttp.RequestHandler
	// cert is the TLS listener's certificate, swapped by
	// ReloadCertificates without restarting the listener.
	cert atomic.Pointer[tls.Certificate]

	// Guarded by Proxy.mu. spec is the latest applied, servedSpec the one
	// the listener was started with; listenErr is why there is no
	// listener (retried while rebinding).
	spec       spec.RolloutSpec
	servedSpec spec.RolloutSpec
	listenErr  error
	rebinding  bool
	server     *fasthttp.Server
	h2         *http2Front // nil when the listener takes no HTTP/2
	ln         net.Listener
	guard      *guardedListener
	served     chan struct{}
	checker    *healthChecker
}

// upstreamSet is an immutable snapshot of a rollout's versions and the
// settings the request path needs, swapped as a whole.
type upstreamSet struct {
	stable        *pool
	canary        *pool // nil when there is nothing to roll out
	timeouts      spec.Timeouts
	mirrorMaxBody int64
	tlsConfig     *tls.Config
	// viaHTTP2: an endpoint is h2c://, which HTTP/1.1 cannot reach, so
	// HTTP/1.1 requests take the HTTP/2 path (rolloutProxy.bridge).
	viaHTTP2 bool
}

// closeIdle closes the idle upstream connections of the net/http
// transports, once a set is replaced; connections in use finish.
func (u *upstreamSet) closeIdle() {
	for _, pl := range u.pools() {
		for _, ep := range pl.endpoints {
			ep.rt.CloseIdleConnections()
		}
	}
}

func (u *upstreamSet) pools() []*pool {
	if u.canary == nil {
		return []*pool{u.stable}
	}
	return []*pool{u.stable, u.canary}
}

// inherit carries what the data plane learned about an endpoint over to
// the same endpoint (same role and URL) in a rebuilt set: that it proved
// reachable, and the health last announced, so a new canary revision does
// not re-prove its stable or repeat an event. Call it before publishing u.
func (u *upstreamSet) inherit(old *upstreamSet) {
	for _, pl := range u.pools() {
		for _, opl := range old.pools() {
			if opl.target != pl.target {
				continue
			}
			for _, ep := range pl.endpoints {
				for _, oep := range opl.endpoints {
					if oep.url == ep.url {
						ep.up.Store(oep.up.Load())
						ep.announced.Store(oep.announced.Load())
						if ep.checked == oep.checked {
							ep.healthy.Store(oep.healthy.Load())
						}
					}
				}
			}
		}
	}
}

// Apply starts serving r with table t, or updates a served rollout: a new
// listen address or TLS setting restarts the listener, new versions or
// endpoint settings replace the upstream set, and the table is swapped.
func (p *Proxy) Apply(ctx context.Context, r *spec.Rollout, t *route.Table) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closing:
		// A listener started now would outlive Shutdown.
		return errors.New("the proxy is shutting down")
	default:
	}
	name := r.Metadata.Name
	rp := p.rollouts[name]
	if rp == nil {
		rp = &rolloutProxy{name: name, log: p.log.With("rollout", name), stats: p.opts.Telemetry.Rollout(name), mirror: p.mirror}
		rp.bridge = rp.newBridge()
		rp.onHealth = func(pl *pool, ep *endpoint, healthy bool, reason string) {
			rp.log.Info("endpoint health changed", "role", pl.target.Role(), "version", pl.version, "endpoint", ep.url, "healthy", healthy, "reason", reason)
			if p.opts.OnEndpointHealth != nil {
				p.opts.OnEndpointHealth(name, pl.target.Role(), pl.version, ep.url, healthy, reason)
			}
		}
	}
	if rp.upstreams.Load() == nil || upstreamsChanged(rp.spec, r.Spec) {
		ups, err := buildUpstreams(r, rp.stats)
		if err != nil {
			return err
		}
		if old := rp.upstreams.Load(); old != nil {
			ups.inherit(old)
		}
		old := rp.checker
		if prev := rp.upstreams.Load(); prev != nil {
			defer prev.closeIdle()
		}
		rp.upstreams.Store(ups)
		rp.checker = startHealthChecks(r.Spec.HealthCheck, r.Spec.TrafficRouting.Timeouts.Connect.D(), ups.tlsConfig, ups, rp.announce)
		if old != nil {
			old.stop()
		}
	}
	rp.table.Store(t)
	rp.spec = r.Spec
	p.rollouts[name] = rp
	if rp.server == nil || rp.listenErr != nil || listenerChanged(rp.servedSpec, r.Spec) {
		if err := p.listen(rp, r.Spec); err != nil {
			// One rollout that cannot bind must not keep the others from
			// serving: it stays known (tables, telemetry), is reported in
			// ListenerErrors and Observed, and binding is retried.
			rp.listenErr = err
			p.log.Error("cannot listen; retrying every "+rebindInterval.String(), "rollout", name, "err", err)
			p.retryListen(rp)
			return nil
		}
		rp.listenErr = nil
	}
	return nil
}

// rebindInterval is how often a listener that could not be bound is tried
// again.
const rebindInterval = 2 * time.Second

// retryListen binds rp's listener in the background until it succeeds or
// the rollout is removed. The bind (a DNS lookup for a host name, the
// certificate files) happens outside p.mu, so a slow one never stalls the
// other rollouts. Caller holds p.mu.
func (p *Proxy) retryListen(rp *rolloutProxy) {
	if rp.rebinding {
		return
	}
	rp.rebinding = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(rebindInterval)
		defer t.Stop()
		for {
			select {
			case <-p.closing:
				return
			case <-t.C:
			}
			p.mu.Lock()
			if p.rollouts[rp.name] != rp || rp.listenErr == nil {
				rp.rebinding = false
				p.mu.Unlock()
				return
			}
			s := rp.spec
			p.mu.Unlock()

			b, err := bindListener(s)

			p.mu.Lock()
			current := p.rollouts[rp.name] == rp && rp.listenErr != nil && rp.spec.Listen == s.Listen && reflect.DeepEqual(rp.spec.TLS, s.TLS)
			switch {
			case !current:
				b.close()
				if p.rollouts[rp.name] != rp || rp.listenErr == nil {
					rp.rebinding = false
					p.mu.Unlock()
					return
				}
			case err != nil:
				rp.listenErr = p.listenError(rp.name, s.Listen, err)
			default:
				p.serve(rp, s, b)
				rp.listenErr = nil
				rp.rebinding = false
				rp.log.Info("listening again", "listen", s.Listen)
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
		}
	}()
}

// CheckListen reports whether rollout name could listen on addr: nil when
// it already does, else the error binding addr gives now. An API apply
// calls it before saving a spec, so a listen address this machine cannot
// bind (busy, the admin port, not one of its addresses) is refused instead
// of being saved and failing every later start.
func (p *Proxy) CheckListen(name, addr string) error {
	p.mu.Lock()
	rp := p.rollouts[name]
	if rp != nil && rp.server != nil && (spec.ListenersClash(rp.servedSpec.Listen, addr) || spec.ListenersClash(rp.guard.Addr().String(), addr)) {
		// Its own socket holds the port: a respelling (0.0.0.0 for
		// 127.0.0.1) rebinds when applied, after the old one closes.
		p.mu.Unlock()
		return nil
	}
	holder := p.holderOf(addr, name)
	p.mu.Unlock()
	if holder != "" {
		return fmt.Errorf("listen address %s is already served by rollout %q", addr, holder)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, opCause(err))
	}
	return ln.Close()
}

// opCause strips a net.OpError's "listen tcp ADDR:" or "dial tcp ADDR:"
// prefix, which coalmine's messages already say: what is left is what an
// operator needs ("bind: address already in use", "connect: connection
// refused").
func opCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// holderOf names another served rollout whose listener takes addr's port
// on an overlapping address, or "". Caller holds p.mu.
func (p *Proxy) holderOf(addr, except string) string {
	for name, rp := range p.rollouts {
		if name != except && rp.server != nil && spec.ListenersClash(rp.servedSpec.Listen, addr) {
			return name
		}
	}
	return ""
}

// ReloadCertificates reads every TLS listener's certificate and key files
// again (SIGHUP; SPEC §2) and serves the new pair from the next handshake
// on. A pair that cannot be loaded is reported and the old one stays.
func (p *Proxy) ReloadCertificates() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, rp := range p.rollouts {
		t := rp.spec.TLS
		if t == nil || rp.server == nil {
			continue
		}
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("reload TLS certificate of rollout %q (the previous one stays): %w", name, err))
			continue
		}
		rp.cert.Store(&cert)
	}
	return errors.Join(errs...)
}

// SetTable swaps a served rollout's routing table. It is the path a weight
// change takes: one atomic store, so no request fails or waits.
func (p *Proxy) SetTable(name string, t *route.Table) error {
	p.mu.Lock()
	rp := p.rollouts[name]
	p.mu.Unlock()
	if rp == nil {
		return fmt.Errorf("set routing table of %q: %w", name, ErrUnknownRollout)
	}
	rp.table.Store(t)
	return nil
}

// Observed returns the generation of the table the data plane routes with
// and whether the canary has an endpoint that can take traffic.
func (p *Proxy) Observed(name string) (generation uint64, weight spec.Weight, canaryAvailable bool, err error) {
	p.mu.Lock()
	rp := p.rollouts[name]
	var listenErr error
	if rp != nil {
		listenErr = rp.listenErr
	}
	p.mu.Unlock()
	if rp == nil {
		return 0, 0, false, fmt.Errorf("observe %q: %w", name, ErrUnknownRollout)
	}
	if listenErr != nil {
		// Nothing routes while nothing listens: a step must not complete.
		return 0, 0, false, fmt.Errorf("observe %q: %w", name, listenErr)
	}
	t := rp.table.Load()
	ups := rp.upstreams.Load()
	avail := ups.canary != nil && ups.canary.available(time.Now().UnixNano())
	return t.Generation, t.Weight, avail, nil
}

// EndpointState is one endpoint's health as seen by the data plane.
type EndpointState struct {
	Role    spec.Role
	Version string
	URL     string
	// Healthy: the endpoint proved reachable and its active check (if
	// any) passes.
	Healthy  bool
	Ejected  bool
	InFlight int64
}

// Endpoints reports every endpoint of a rollout.
func (p *Proxy) Endpoints(name string) ([]EndpointState, error) {
	p.mu.Lock()
	rp := p.rollouts[name]
	p.mu.Unlock()
	if rp == nil {
		return nil, fmt.Errorf("endpoints of %q: %w", name, ErrUnknownRollout)
	}
	now := time.Now().UnixNano()
	var out []EndpointState
	for _, pl := range rp.upstreams.Load().pools() {
		for _, ep := range pl.endpoints {
			out = append(out, EndpointState{
				Role: pl.target.Role(), Version: pl.version, URL: ep.url,
				Healthy: ep.up.Load() && ep.healthy.Load(), Ejected: ep.ejectedUntil.Load() > now, InFlight: ep.inflight.Load(),
			})
		}
	}
	return out, nil
}

// Addr returns the address a rollout's listener is bound to.
func (p *Proxy) Addr(name string) (net.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rp := p.rollouts[name]
	if rp == nil || rp.ln == nil {
		if rp != nil && rp.listenErr != nil {
			return nil, rp.listenErr
		}
		return nil, fmt.Errorf("address of %q: %w", name, ErrUnknownRollout)
	}
	return rp.ln.Addr(), nil
}

// Remove stops serving a rollout, draining in-flight requests until ctx ends.
func (p *Proxy) Remove(ctx context.Context, name string) error {
	p.mu.Lock()
	rp := p.rollouts[name]
	delete(p.rollouts, name)
	p.mu.Unlock()
	if rp == nil {
		return fmt.Errorf("remove %q: %w", name, ErrUnknownRollout)
	}
	return rp.shutdown(ctx)
}

// Shutdown stops accepting connections on every listener, lets in-flight
// requests finish until ctx ends, and stops background work.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	rps := make([]*rolloutProxy, 0, len(p.rollouts))
	for _, rp := range p.rollouts {
		rps = append(rps, rp)
	}
	p.rollouts = map[string]*rolloutProxy{}
	// Closed under p.mu: Apply checks it under p.mu, and every wg.Add
	// happens under p.mu, so nothing is added once Wait begins.
	p.closeOnce.Do(func() { close(p.closing) })
	p.mu.Unlock()
	p.wg.Wait()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, rp := range rps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rp.shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p.mirror.close()
	return errors.Join(errs...)
}

func (rp *rolloutProxy) shutdown(ctx context.Context) error {
	var err error
	h2done := make(chan error, 1)
	go func() { h2done <- rp.h2.shutdown(ctx) }()
	if rp.server != nil {
		err = rp.server.ShutdownWithContext(ctx)
		// Shutdown only closes listeners that Serve has registered; one
		// started a moment ago may not be yet, and Serve would then run on
		// forever. Closing ours makes Serve return in every case.
		_ = rp.ln.Close()
		<-rp.served
	}
	err = errors.Join(err, <-h2done)
	if rp.checker != nil {
		rp.checker.stop()
	}
	if ups := rp.upstreams.Load(); ups != nil {
		ups.closeIdle()
	}
	if err != nil {
		return fmt.Errorf("drain rollout %q: %w", rp.name, err)
	}
	return nil
}

// boundListener is a listening socket and the certificate it serves, bound
// but not served yet.
type boundListener struct {
	tcp  net.Listener
	cert *tls.Certificate
}

func (b boundListener) close() {
	if b.tcp != nil {
		_ = b.tcp.Close()
	}
}

// bindListener opens a rollout's listening socket and loads its
// certificate. It takes no lock.
func bindListener(s spec.RolloutSpec) (boundListener, error) {
	tcp, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return boundListener{}, err
	}
	b := boundListener{tcp: tcp}
	if s.TLS != nil {
		cert, err := tls.LoadX509KeyPair(s.TLS.CertFile, s.TLS.KeyFile)
		if err != nil {
			tcp.Close()
			return boundListener{}, fmt.Errorf("load TLS certificate: %w", err)
		}
		b.cert = &cert
	}
	return b, nil
}

// listenError words a bind failure, naming the rollout that holds the
// address when one of ours does. Caller holds p.mu.
func (p *Proxy) listenError(name, addr string, err error) error {
	if holder := p.holderOf(addr, name); holder != "" {
		return fmt.Errorf("listen on %s for rollout %q: %w (rollout %q listens there)", addr, name, opCause(err), holder)
	}
	return fmt.Errorf("listen on %s for rollout %q: %w", addr, name, opCause(err))
}

// listen binds the rollout's address and serves it. A previous listener
// stops accepting at once (the address may be the same), the new one
// serves from the next moment, and the old server's connections drain in
// the background, outside p.mu: there is no window of refused
// connections, and no rollout waits for another's drain. Caller holds
// p.mu.
func (p *Proxy) listen(rp *rolloutProxy, s spec.RolloutSpec) error {
	oldServer, oldServed, oldLn, oldH2 := rp.server, rp.served, rp.ln, rp.h2
	if oldServer != nil {
		_ = oldLn.Close()
		rp.server, rp.ln, rp.guard, rp.h2 = nil, nil, nil, nil
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// Both servers drain on the same deadline, and this waits for
			// both: HTTP/2 streams (a gRPC-only listener has no HTTP/1.1
			// connection to wait for) finish instead of being reset.
			h2Done := make(chan struct{})
			go func() { defer close(h2Done); _ = oldH2.shutdown(ctx) }()
			_ = oldServer.ShutdownWithContext(ctx)
			<-oldServed
			<-h2Done
		}()
	}
	b, err := bindListener(s)
	if err != nil {
		return p.listenError(rp.name, s.Listen, err)
	}
	p.serve(rp, s, b)
	return nil
}

// serve starts serving a bound listener for rp. Caller holds p.mu.
func (p *Proxy) serve(rp *rolloutProxy, s spec.RolloutSpec, b boundListener) {
	maxConns := p.connectionBudget(rp.name, s.TrafficRouting.ClientLimits.MaxConnections)
	guard := newGuardedListener(b.tcp, rp.stats, s.TrafficRouting.Timeouts.Idle.D(), maxConns, s.TLS != nil, rp.log)
	proto := protocolsOf(s)
	var ln net.Listener = guard
	if b.cert != nil {
		rp.cert.Store(b.cert)
		cfg := &tls.Config{
			// Each handshake reads the current certificate, so a renewed
			// one is served from the next connection on (SIGHUP).
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return rp.cert.Load(), nil },
			MinVersion:     tls.VersionTLS12,
		}
		if proto.h2TLS {
			cfg.NextProtos = proto.alpn()
		}
		ln = tls.NewListener(ln, cfg)
	}
	var h2 *http2Front
	switch {
	case proto.http2() || !proto.h1:
		// HTTP/2 goes to net/http, HTTP/1.x stays on fasthttp: the
		// splitter sorts each connection (ALPN, or the h2c preface).
		sp := newProtocolSplitter(ln, proto, b.cert != nil, s.TrafficRouting.Timeouts.RequestHeaders.D())
		ln = sp.h1
		h2 = startHTTP2(rp, s, sp.h2)
	case b.cert != nil:
		ln = tlsLineListener{ln}
	}
	srv := newServer(rp, s, maxConns)
	rp.server, rp.ln, rp.guard, rp.h2, rp.served, rp.servedSpec = srv, ln, guard, h2, make(chan struct{}), s
	served := rp.served
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil {
			rp.log.Error("listener stopped", "listen", s.Listen, "err", err)
		}
	}()
}

func newServer(rp *rolloutProxy, s spec.RolloutSpec, maxConns int) *fasthttp.Server {
	tr := s.TrafficRouting
	return &fasthttp.Server{
		Handler:                      rp.handle,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		DisableKeepalive:             false,
		// Bodies up to the mirror cap are buffered (so they can be mirrored);
		// larger ones stream through without being held in memory.
		StreamRequestBody:  true,
		MaxRequestBodySize: int(max(tr.MirrorMaxBodyBytes, 4096)),
		// ReadTimeout bounds a request's line and headers: from the
		// connection's start for the first request (so a silent or
		// byte-a-second connection is dropped), from the first byte for
		// later ones. The body is bounded by the idle time between reads
		// (clientBody), the wait between requests by IdleTimeout.
		ReadTimeout: tr.Timeouts.RequestHeaders.D(),
		IdleTimeout: tr.Timeouts.Idle.D(),
		// The header buffer is the header size limit.
		ReadBufferSize: tr.ClientLimits.MaxHeaderBytes,
		// The listener enforces the connection cap (and counts what it
		// refuses); fasthttp's own cap stays above it, out of the way.
		Concurrency:           maxConns + 64,
		CloseOnShutdown:       true,
		SecureErrorLogMessage: true,
		ErrorHandler:          rp.serverError(tr.ClientLimits.MaxHeaderBytes),
		Logger:                log.New(io.Discard, "", 0),
	}
}

// buildUpstreams creates the pools of a rollout spec.
func buildUpstreams(r *spec.Rollout, stats *telemetry.RolloutStats) (*upstreamSet, error) {
	s := r.Spec
	tlsCfg, err := upstreamTLSConfig(s.UpstreamTLS)
	if err != nil {
		return nil, fmt.Errorf("rollout %q: %w", r.Metadata.Name, err)
	}
	ups := &upstreamSet{timeouts: s.TrafficRouting.Timeouts, mirrorMaxBody: s.TrafficRouting.MirrorMaxBodyBytes, tlsConfig: tlsCfg}
	epCfg := endpointConfig{timeouts: s.TrafficRouting.Timeouts, maxConns: s.ConnectionPool.MaxConnections, upstreamTLS: tlsCfg,
		checked: s.HealthCheck != nil && !s.HealthCheck.Disabled}
	mk := func(target route.Target, v spec.VersionSpec) (*pool, error) {
		pl := &pool{
			target:     target,
			version:    v.Version,
			roundRobin: s.TrafficRouting.Balancer == "round-robin",
			limit:      newLimiter(s.ConnectionPool.MaxConnections, s.ConnectionPool.MaxPendingRequests, s.TrafficRouting.Timeouts.Connect.D()),
			outlier:    outlier{threshold: int32(s.OutlierDetection.ConsecutiveErrors), ejection: s.OutlierDetection.EjectionTime.D()},
			stats:      stats.Version(target.Role(), v.Version),
			grpcErrors: grpcErrorsOf(s.TrafficRouting),
		}
		if vh := s.TrafficRouting.VersionHeader; vh != "" && vh != "-" {
			pl.headerName = []byte(vh)
			pl.versionHeader = []byte(v.Version)
		}
		for _, raw := range v.Endpoints {
			ep, err := newEndpoint(raw, epCfg)
			if err != nil {
				return nil, fmt.Errorf("rollout %q %s: %w", r.Metadata.Name, target, err)
			}
			ups.viaHTTP2 = ups.viaHTTP2 || ep.h2c
			pl.endpoints = append(pl.endpoints, ep)
		}
		if len(pl.endpoints) == 0 {
			return nil, fmt.Errorf("rollout %q: version %s has no endpoints", r.Metadata.Name, v.Version)
		}
		return pl, nil
	}
	if ups.stable, err = mk(route.Stable, s.Stable); err != nil {
		return nil, err
	}
	if s.Canary != nil && len(s.Canary.Endpoints) > 0 {
		if ups.canary, err = mk(route.Canary, *s.Canary); err != nil {
			return nil, err
		}
	}
	return ups, nil
}

func upstreamTLSConfig(u *spec.UpstreamTLS) (*tls.Config, error) {
	if u == nil {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: u.ServerName, InsecureSkipVerify: u.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if u.CAFile != "" {
		pem, err := os.ReadFile(u.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read upstream CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream CA file %s holds no PEM certificate", u.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// grpcErrorsOf is the rollout's set of gRPC error codes; a spec without
// defaults applied gets the default set.
func grpcErrorsOf(tr spec.TrafficRouting) telemetry.GRPCErrors {
	if tr.GRPCErrorCodes == nil {
		return telemetry.DefaultGRPCErrors
	}
	return telemetry.NewGRPCErrors(tr.GRPCErrorCodes)
}

// upstreamsChanged reports whether the upstream set must be rebuilt.
func upstreamsChanged(a, b spec.RolloutSpec) bool {
	return !reflect.DeepEqual(a.Stable, b.Stable) || !reflect.DeepEqual(a.Canary, b.Canary) ||
		!reflect.DeepEqual(a.UpstreamTLS, b.UpstreamTLS) || a.HealthCheck != b.HealthCheck ||
		a.OutlierDetection != b.OutlierDetection || a.ConnectionPool != b.ConnectionPool ||
		a.TrafficRouting.Timeouts != b.TrafficRouting.Timeouts || a.TrafficRouting.Balancer != b.TrafficRouting.Balancer ||
		a.TrafficRouting.VersionHeader != b.TrafficRouting.VersionHeader ||
		a.TrafficRouting.MirrorMaxBodyBytes != b.TrafficRouting.MirrorMaxBodyBytes ||
		!slices.Equal(a.TrafficRouting.GRPCErrorCodes, b.TrafficRouting.GRPCErrorCodes)
}

// ListenError returns why a served rollout has no listener, or nil.
func (p *Proxy) ListenError(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if rp := p.rollouts[name]; rp != nil {
		return rp.listenErr
	}
	return nil
}

func listenerChanged(a, b spec.RolloutSpec) bool {
	return a.Listen != b.Listen || !reflect.DeepEqual(a.TLS, b.TLS) || !slices.Equal(a.Protocols, b.Protocols) ||
		a.TrafficRouting.Timeouts.Idle != b.TrafficRouting.Timeouts.Idle ||
		a.TrafficRouting.Timeouts.RequestHeaders != b.TrafficRouting.Timeouts.RequestHeaders ||
		a.TrafficRouting.ClientLimits != b.TrafficRouting.ClientLimits ||
		a.TrafficRouting.MirrorMaxBodyBytes != b.TrafficRouting.MirrorMaxBodyBytes
}

// onEjected reports a passive ejection. The endpoint is tried again when
// the ejection time is over; it is announced healthy again only when it
// then answers well (see answered), so a dead endpoint ejected again and
// again makes one event, not two every ejection time.
func (rp *rolloutProxy) onEjected(pl *pool, ep *endpoint, ejection time.Duration) {
	go rp.announce(pl, ep, false, fmt.Sprintf("ejected for %s after %d consecutive errors", ejection, pl.outlier.threshold))
}

// announce reports an endpoint's health when it changes from what was last
// announced: one transition, one event, however many requests or checks
// observed it. An endpoint's first good news is not announced (every
// endpoint of every start would be), only a recovery from bad news.
func (rp *rolloutProxy) announce(pl *pool, ep *endpoint, healthy bool, reason string) {
	if !ep.announce(healthy) {
		return
	}
	rp.onHealth(pl, ep, healthy, reason)
}

// fdReserve is the descriptors kept aside from client connections: the
// admin API, the store, logs, health checks and mirrors.
const fdReserve = 64

// connectionBudget returns the connection cap a listener gets: its
// configured maxConnections, lowered (with a warning) when the process's
// descriptor limit cannot hold it. Each client connection may need two
// descriptors, its own and one upstream, and the listeners share the
// limit. Caller holds p.mu.
func (p *Proxy) connectionBudget(name string, want int) int {
	limit := fdLimit()
	if limit <= 0 {
		return want
	}
	listeners := 1
	for n, rp := range p.rollouts {
		if n != name && rp.server != nil {
			listeners++
		}
	}
	budget := (limit - fdReserve*int64(listeners)) / int64(2*listeners)
	budget = max(budget, 8)
	if int64(want) <= budget {
		return want
	}
	// A cap still in the thousands is a footnote; a low one is a problem the
	// operator should see.
	level := slog.LevelInfo
	if budget < 1000 {
		level = slog.LevelWarn
	}
	p.log.Log(context.Background(), level, "clientLimits.maxConnections lowered to fit the process's file-descriptor limit; raise the limit (ulimit -n) to allow more",
		"rollout", name, "maxConnections", want, "effective", budget, "fdLimit", limit, "listeners", listeners)
	return int(budget)
}

// ListenerErrors returns, for each rollout whose listener cannot accept
// connections right now, why. /readyz reports them.
func (p *Proxy) ListenerErrors() map[string]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[string]error
	for name, rp := range p.rollouts {
		if rp.listenErr != nil {
			if out == nil {
				out = map[string]error{}
			}
			out[name] = fmt.Errorf("%w (retrying every %s)", rp.listenErr, rebindInterval)
			continue
		}
		if rp.guard == nil {
			continue
		}
		if err := rp.guard.acceptError(); err != nil {
			if out == nil {
				out = map[string]error{}
			}
			out[name] = fmt.Errorf("listener %s cannot accept connections: %w", rp.spec.Listen, err)
		}
	}
	return out
}
