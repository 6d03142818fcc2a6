package proxy_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalmine-dev/coalmine/internal/proxy"
	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// The integration tests in this package run the real proxy on loopback in
// front of real net/http backends. Backends answer with their version in the
// X-Backend-Version header, so a test knows which process really served a
// request independently of the proxy's own X-Coalmine-Version header.

const (
	rolloutName   = "shop"
	stableVersion = "v1"
	canaryVersion = "v2"
	hdrBackend    = "X-Backend-Version"
	hdrVersion    = "X-Coalmine-Version"
	hdrError      = "X-Coalmine-Error"
	hdrMirror     = "X-Coalmine-Mirror"
	healthPath    = "/health"
)

func ptr[T any](v T) *T { return &v }

// eventually polls cond every 10ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// never polls cond every 10ms for d and fails as soon as it holds. It is
// used only to show that something does not happen in a bounded window.
func never(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			t.Fatalf("unexpected: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// backend is a real HTTP server of one version. /health always answers 200
// and is not counted; every other request is counted and handed to the
// handler, or answered with the version when there is none.
type backend struct {
	version string
	srv     *httptest.Server
	url     string
	hits    atomic.Int64
	closed  atomic.Bool
}

func newBackend(t testing.TB, version string, h http.HandlerFunc) *backend {
	t.Helper()
	return newBackendServer(t, version, h, nil)
}

// newBackendServer is newBackend with a hook to configure the http.Server
// before it starts.
func newBackendServer(t testing.TB, version string, h http.HandlerFunc, configure func(*http.Server)) *backend {
	t.Helper()
	b := &backend{version: version}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == healthPath {
			w.WriteHeader(http.StatusOK)
			return
		}
		b.hits.Add(1)
		w.Header().Set(hdrBackend, version)
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, version)
	}))
	if configure != nil {
		configure(b.srv.Config)
	}
	b.srv.Start()
	b.url = b.srv.URL
	t.Cleanup(b.close)
	return b
}

// close stops the backend: its listener is closed, so new connections are
// refused, and its idle connections are closed.
func (b *backend) close() {
	if b.closed.CompareAndSwap(false, true) {
		b.srv.CloseClientConnections()
		b.srv.Close()
	}
}

// rolloutSpec builds a defaulted, validated rollout listening on a free
// loopback port. mod runs before SetDefaults, so it sets what the test
// needs and leaves the rest to the documented defaults.
func rolloutSpec(t testing.TB, stable, canary []string, mod func(s *spec.RolloutSpec)) *spec.Rollout {
	t.Helper()
	r := &spec.Rollout{
		APIVersion: spec.APIVersion,
		Kind:       spec.KindRollout,
		Metadata:   spec.Metadata{Name: rolloutName},
		Spec: spec.RolloutSpec{
			Listen: "127.0.0.1:0",
			Stable: spec.VersionSpec{Version: stableVersion, Endpoints: stable},
			HealthCheck: &spec.HealthCheck{
				Path:     healthPath,
				Interval: spec.Duration(100 * time.Millisecond),
				Timeout:  spec.Duration(time.Second),
			},
		},
	}
	if canary != nil {
		r.Spec.Canary = &spec.VersionSpec{Version: canaryVersion, Endpoints: canary}
	}
	if mod != nil {
		mod(&r.Spec)
	}
	r.SetDefaults()
	var errs spec.FieldErrors
	for _, e := range r.Validate() {
		// Validation asks for a real port; the tests let the kernel pick one.
		if e.Path == "spec.listen" && r.Spec.Listen == "127.0.0.1:0" {
			continue
		}
		errs = append(errs, e)
	}
	if len(errs) > 0 {
		t.Fatalf("invalid test rollout:\n%v", errs)
	}
	return r
}

// tableConfig is the route.Config a controller would compile for r.
func tableConfig(r *spec.Rollout, weight spec.Weight) route.Config {
	return route.Config{
		Rollout:      r.Metadata.Name,
		Revision:     1,
		Generation:   1,
		Weight:       weight,
		Assignment:   r.Spec.TrafficRouting.Assignment,
		HeaderRoutes: r.Spec.TrafficRouting.HeaderRoutes,
	}
}

func compile(t testing.TB, cfg route.Config) *route.Table {
	t.Helper()
	tbl, err := route.Compile(cfg)
	if err != nil {
		t.Fatalf("compile table: %v", err)
	}
	return tbl
}

// rig is a running proxy serving one rollout.
type rig struct {
	p     *proxy.Proxy
	reg   *telemetry.Registry
	name  string
	addr  string // host:port of the listener
	url   string // http://addr
	table *route.Table
}

func startProxy(t testing.TB, r *spec.Rollout, cfg route.Config) *rig {
	t.Helper()
	return startProxyWith(t, r, cfg, proxy.Options{})
}

// startProxyWith is startProxy with proxy options; the telemetry registry
// is always the rig's own.
func startProxyWith(t testing.TB, r *spec.Rollout, cfg route.Config, opts proxy.Options) *rig {
	t.Helper()
	reg := telemetry.NewRegistry(telemetry.Options{})
	opts.Telemetry = reg
	p := proxy.New(opts)
	tbl := compile(t, cfg)
	if err := p.Apply(context.Background(), r, tbl); err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	a, err := p.Addr(r.Metadata.Name)
	if err != nil {
		t.Fatalf("addr: %v", err)
	}
	g := &rig{p: p, reg: reg, name: r.Metadata.Name, addr: a.String(), url: "http://" + a.String(), table: tbl}
	g.waitProven(t)
	return g
}

// waitProven waits until every endpoint that accepts connections has
// proven itself, as a controller's setWeight step would, so a test starts
// from the steady state rather than racing the first probe.
func (g *rig) waitProven(t testing.TB) {
	t.Helper()
	eventually(t, 5*time.Second, "every reachable endpoint proves itself", func() bool {
		for _, e := range g.endpoints(t) {
			if !e.Healthy && reachable(e.URL) {
				return false
			}
		}
		return true
	})
}

func reachable(url string) bool {
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://"), "h2c://"), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// setWeight swaps in the rig's table with another weight, the way a
// controller changes the weight.
func (g *rig) setWeight(t testing.TB, w spec.Weight) {
	t.Helper()
	gen := g.table.Generation + 1
	g.table = g.table.WithWeight(w, gen)
	if err := g.p.SetTable(g.name, g.table); err != nil {
		t.Fatalf("set table: %v", err)
	}
}

func (g *rig) endpoints(t testing.TB) []proxy.EndpointState {
	t.Helper()
	eps, err := g.p.Endpoints(g.name)
	if err != nil {
		t.Fatalf("endpoints: %v", err)
	}
	return eps
}

func (g *rig) endpoint(t testing.TB, url string) proxy.EndpointState {
	t.Helper()
	for _, e := range g.endpoints(t) {
		if e.URL == url {
			return e
		}
	}
	t.Fatalf("no endpoint %s", url)
	return proxy.EndpointState{}
}

// versionStats returns the telemetry of one version of the rig's rollout.
func (g *rig) versionStats(role spec.Role, version string) *telemetry.VersionStats {
	return g.reg.Rollout(g.name).Version(role, version)
}

// metric sums the samples of a counter from the telemetry collector whose
// labels include want.
func (g *rig) metric(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	pr := prometheus.NewPedanticRegistry()
	if err := pr.Register(g.reg.Collector()); err != nil {
		t.Fatalf("register collector: %v", err)
	}
	mfs, err := pr.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func (g *rig) proxyErrors(t testing.TB, role spec.Role, kind string) float64 {
	t.Helper()
	return g.metric(t, "coalmine_proxy_errors_total", map[string]string{"rollout": g.name, "role": string(role), "kind": kind})
}

// newClient returns a client that keeps up to n idle connections to the
// proxy, so bulk loops reuse connections instead of exhausting ports.
func newClient(n int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        n,
			MaxIdleConnsPerHost: n,
			IdleConnTimeout:     30 * time.Second,
			DisableCompression:  true,
		},
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func closeIdle(c *http.Client) {
	c.CloseIdleConnections()
}

// result is what a test keeps of one response.
type result struct {
	status  int
	backend string // X-Backend-Version: the process that really answered
	version string // X-Coalmine-Version: what the proxy says answered
	errHdr  string
	body    string
	header  http.Header
}

func get(t testing.TB, c *http.Client, url string, hdr map[string]string) result {
	t.Helper()
	res, err := tryGet(c, url, hdr)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func tryGet(c *http.Client, url string, hdr map[string]string) (result, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return result{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return do(c, req)
}

func do(c *http.Client, req *http.Request) (result, error) {
	resp, err := c.Do(req)
	if err != nil {
		return result{}, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, fmt.Errorf("read body of %s %s: %w", req.Method, req.URL, err)
	}
	return result{
		status:  resp.StatusCode,
		backend: resp.Header.Get(hdrBackend),
		version: resp.Header.Get(hdrVersion),
		errHdr:  resp.Header.Get(hdrError),
		body:    string(body),
		header:  resp.Header,
	}, nil
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // stop the others early
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// shaHandler answers with the sha256 and length of the request body, so the
// client can check the backend received it intact.
func shaHandler(w http.ResponseWriter, r *http.Request) {
	h := sha256.New()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%x %d", h.Sum(nil), n)
}

// rawRequest writes raw bytes to addr on a new connection and returns the
// first response, read with a deadline.
func rawRequest(t testing.TB, addr, raw string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("write raw request: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response to raw request %q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func mustContain(t testing.TB, what, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%s = %q, want it to contain %q", what, s, sub)
	}
}

// pipelined sends n GET requests to addr over conns keep-alive connections,
// writing them in pipelined batches, which is far cheaper than net/http's
// client for the bulk loops. reqHeaders(i) returns the extra header lines of
// request i ("Name: value\r\n"...); check sees each response (its body
// already read) and may return an error to stop.
func pipelined(addr string, n, conns int, reqHeaders func(i int) string, check func(i int, resp *http.Response, body []byte) error) error {
	const batch = 50
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := pipelineWorker(addr, n, batch, &next, reqHeaders, check); err != nil {
				errs <- err
				next.Store(int64(n))
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func pipelineWorker(addr string, n, batch int, next *atomic.Int64, reqHeaders func(int) string, check func(int, *http.Response, []byte) error) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("dial proxy: %w", err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	ids := make([]int, 0, batch)
	for {
		ids = ids[:0]
		for len(ids) < batch {
			i := int(next.Add(1) - 1)
			if i >= n {
				break
			}
			ids = append(ids, i)
		}
		if len(ids) == 0 {
			return nil
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		for _, i := range ids {
			fmt.Fprintf(bw, "GET /items/%d HTTP/1.1\r\nHost: shop.test\r\n%s\r\n", i, reqHeaders(i))
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("write pipelined requests: %w", err)
		}
		for _, i := range ids {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				return fmt.Errorf("read response to request %d: %w", i, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("read body of request %d: %w", i, err)
			}
			if err := check(i, resp, body); err != nil {
				return err
			}
		}
	}
}
