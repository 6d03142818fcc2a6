package proxy_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

func TestWeightChangesUnderLoad(t *testing.T) {
	stable := newBackend(t, stableVersion, nil)
	canary := newBackend(t, canaryVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, []string{canary.url}, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Assignment.UserHeader = "X-User-ID"
	})
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(64)
	defer closeIdle(c)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var flips atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		weights := []spec.Weight{0, 1000, 5000, spec.MaxWeight}
		tick := time.NewTicker(3 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			gen := g.table.Generation + 1
			g.table = g.table.WithWeight(weights[i%len(weights)], gen)
			if err := g.p.SetTable(g.name, g.table); err != nil {
				t.Errorf("set table: %v", err)
				return
			}
			flips.Add(1)
		}
	}()

	var total, failed atomic.Int64
	var served [2]atomic.Int64
	var firstErr atomic.Value
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				hdr := map[string]string{"X-User-ID": fmt.Sprintf("w%d-u%d", w, i%50)}
				if i%3 == 0 {
					hdr = nil // a new subject: weighted random choice
				}
				res, err := tryGet(c, g.url+"/load", hdr)
				total.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case res.status != http.StatusOK || res.backend == "" || res.version != res.backend:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("status %d from %q (header %q, error %q): %q", res.status, res.backend, res.version, res.errHdr, res.body))
				case res.backend == canaryVersion:
					served[1].Add(1)
				default:
					served[0].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d requests, %d weight changes, stable %d, canary %d", total.Load(), flips.Load(), served[0].Load(), served[1].Load())
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed while the weight changed; first: %v", n, total.Load(), firstErr.Load())
	}
	if total.Load() < 200 || flips.Load() < 50 {
		t.Fatalf("the test did too little to mean anything: %d requests, %d weight changes", total.Load(), flips.Load())
	}
	if served[0].Load() == 0 || served[1].Load() == 0 {
		t.Fatalf("stable served %d and canary %d: the weight changes did not take effect", served[0].Load(), served[1].Load())
	}
}

func TestCanaryEndpointDies(t *testing.T) {
	for _, clients := range []int{8, 32} {
		t.Run(fmt.Sprintf("%d-clients", clients), func(t *testing.T) {
			canaryEndpointDies(t, clients)
		})
	}
}

// canaryEndpointDies kills the canary endpoints one by one under load from
// the given number of concurrent clients, which is also about how many
// pooled upstream connections each endpoint has when it dies.
func canaryEndpointDies(t *testing.T, clients int) {
	stable := newBackend(t, stableVersion, nil)
	canaryA := newBackend(t, canaryVersion, nil)
	canaryB := newBackend(t, canaryVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, []string{canaryA.url, canaryB.url}, nil)
	g := startProxy(t, r, tableConfig(r, spec.MaxWeight))
	c := newClient(64)
	defer closeIdle(c)

	// send runs n requests and checks that each is a 200 from a real
	// backend of the wanted version.
	send := func(phase string, n int, want string) {
		t.Helper()
		err := parallel(n, clients, func(i int) error {
			res, err := tryGet(c, g.url+"/canary", nil)
			if err != nil {
				return err
			}
			if res.status != http.StatusOK || res.backend != want || res.version != want {
				return fmt.Errorf("%s, request %d: status %d from %q (header %q, error %q), want 200 from %s: %q",
					phase, i, res.status, res.backend, res.version, res.errHdr, want, res.body)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	send("both canary endpoints up", 200, canaryVersion)
	if canaryA.hits.Load() == 0 || canaryB.hits.Load() == 0 {
		t.Fatalf("canary endpoints got %d and %d requests, want both used", canaryA.hits.Load(), canaryB.hits.Load())
	}

	canaryA.close()
	bBefore := canaryB.hits.Load()
	send("one canary endpoint down", 200, canaryVersion)
	if got := canaryB.hits.Load() - bBefore; got != 200 {
		t.Fatalf("the healthy canary endpoint served %d of 200 requests", got)
	}
	eventually(t, 5*time.Second, "the dead canary endpoint is reported ejected or unhealthy", func() bool {
		e := g.endpoint(t, canaryA.url)
		return e.Ejected || !e.Healthy
	})
	if e := g.endpoint(t, canaryB.url); !e.Healthy || e.Ejected {
		t.Fatalf("the live canary endpoint is reported %+v", e)
	}
	if _, _, avail, _ := g.p.Observed(g.name); !avail {
		t.Fatal("Observed reports the canary unavailable while one endpoint is up")
	}

	canaryB.close()
	send("every canary endpoint down", 200, stableVersion)
	eventually(t, 5*time.Second, "Observed reports the canary unavailable", func() bool {
		_, _, avail, err := g.p.Observed(g.name)
		return err == nil && !avail
	})
	send("canary known down", 50, stableVersion)
}

func TestStableDown(t *testing.T) {
	stable := newBackend(t, stableVersion, nil)
	canary := newBackend(t, canaryVersion, nil)
	r := rolloutSpec(t, []string{stable.url}, []string{canary.url}, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(4)
	defer closeIdle(c)
	if res := get(t, c, g.url+"/", nil); res.status != http.StatusOK || res.backend != stableVersion {
		t.Fatalf("before: status %d from %q", res.status, res.backend)
	}

	stable.close()
	check := func(res result, kinds ...string) {
		t.Helper()
		ok := false
		for _, k := range kinds {
			ok = ok || res.errHdr == k
		}
		if res.status != http.StatusServiceUnavailable && res.status != http.StatusBadGateway || !ok {
			t.Fatalf("status %d with %s %q, want 503 (or 502) with one of %q", res.status, hdrError, res.errHdr, kinds)
		}
		if res.backend != "" {
			t.Fatalf("answered by backend %q", res.backend)
		}
		mustContain(t, "body", res.body, "coalmine: ")
	}
	// Right after the crash the proxy may still try to connect.
	check(get(t, c, g.url+"/", nil), "connect", "no-healthy-endpoint")

	eventually(t, 5*time.Second, "the stable endpoint is reported unhealthy", func() bool {
		e := g.endpoint(t, stable.url)
		return e.Ejected || !e.Healthy
	})
	// Every stable endpoint is marked down, and still the proxy tries them
	// (the panic threshold): the answer is the real failure, not a refusal.
	res := get(t, c, g.url+"/", nil)
	check(res, "connect")
	if res.status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 when every stable endpoint is down and refuses connections", res.status)
	}
	mustContain(t, "body", res.body, "cannot connect to version "+stableVersion)
	if ct := res.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	errs := g.proxyErrors(t, spec.RoleStable, "no-healthy-endpoint") + g.proxyErrors(t, spec.RoleStable, "connect")
	if errs < 2 {
		t.Fatalf("proxy errors of stable (no-healthy-endpoint + connect) = %v, want at least 2", errs)
	}
	if n := canary.hits.Load(); n != 0 {
		t.Fatalf("the canary at weight 0 got %d requests", n)
	}
}

// blocker is a backend handler that holds each request until released.
type blocker struct {
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

func newBlocker() *blocker {
	return &blocker{arrived: make(chan struct{}, 64), release: make(chan struct{})}
}

func (b *blocker) handle(w http.ResponseWriter, r *http.Request) {
	b.arrived <- struct{}{}
	select {
	case <-b.release:
		_, _ = io.WriteString(w, "released")
	case <-r.Context().Done():
	}
}

func (b *blocker) free() { b.once.Do(func() { close(b.release) }) }

func (b *blocker) wait(t testing.TB, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-b.arrived:
		case <-timeout:
			t.Fatalf("only %d of %d requests reached the backend", i, n)
		}
	}
}

func TestUpstreamTimeout(t *testing.T) {
	blk := newBlocker()
	defer blk.free()
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			blk.handle(w, r)
		case "/fail":
			w.Header().Set("X-Upstream", "yes")
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `{"title":"boom"}`)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Timeouts.Response = spec.Duration(200 * time.Millisecond)
	})
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(4)
	defer closeIdle(c)

	start := time.Now()
	res := get(t, c, g.url+"/slow", nil)
	took := time.Since(start)
	if res.status != http.StatusGatewayTimeout || res.errHdr != "timeout" {
		t.Fatalf("slow upstream: status %d with %s %q, want 504 with timeout: %q", res.status, hdrError, res.errHdr, res.body)
	}
	if took < 150*time.Millisecond || took > 3*time.Second {
		t.Errorf("the 504 came after %v, want about the 200ms response timeout", took)
	}
	mustContain(t, "body", res.body, "did not answer in time")
	if n := g.proxyErrors(t, spec.RoleStable, "timeout"); n != 1 {
		t.Errorf("timeout proxy errors = %v, want 1", n)
	}

	res = get(t, c, g.url+"/fail", nil)
	if res.status != http.StatusInternalServerError || res.body != `{"title":"boom"}` {
		t.Fatalf("upstream 500: client got %d %q, want the upstream's 500 unchanged", res.status, res.body)
	}
	if res.errHdr != "" {
		t.Errorf("an upstream 500 carries %s %q; only coalmine's own errors may", hdrError, res.errHdr)
	}
	if res.header.Get("X-Upstream") != "yes" || res.header.Get("Content-Type") != "application/problem+json" || res.backend != stableVersion {
		t.Errorf("upstream 500 headers not passed through: %v", res.header)
	}
	if n := g.proxyErrors(t, spec.RoleStable, "timeout") + g.proxyErrors(t, spec.RoleStable, "upstream-protocol") + g.proxyErrors(t, spec.RoleStable, "connect"); n != 1 {
		t.Errorf("proxy errors after an upstream 500 = %v, want still only the timeout", n)
	}
	if res := get(t, c, g.url+"/", nil); res.status != http.StatusOK || res.body != "ok" {
		t.Fatalf("after: status %d %q", res.status, res.body)
	}
}

func TestConnectionLimit(t *testing.T) {
	blk := newBlocker()
	defer blk.free()
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			blk.handle(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.ConnectionPool.MaxConnections = 2
	})
	// SetDefaults turns a zero into the default, so "no queue" is set after
	// it (Validate accepts 0).
	r.Spec.ConnectionPool.MaxPendingRequests = 0
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(8)
	defer closeIdle(c)

	results := make(chan result, 2)
	for i := 0; i < 2; i++ {
		go func() {
			res, err := tryGet(c, g.url+"/slow", nil)
			if err != nil {
				res.body = err.Error()
			}
			results <- res
		}()
	}
	blk.wait(t, 2)

	res := get(t, c, g.url+"/", nil)
	if res.status != http.StatusServiceUnavailable || res.errHdr != "overflow" {
		t.Fatalf("third request: status %d with %s %q, want 503 overflow: %q", res.status, hdrError, res.errHdr, res.body)
	}
	mustContain(t, "body", res.body, "connectionPool")
	if n := g.proxyErrors(t, spec.RoleStable, "overflow"); n != 1 {
		t.Errorf("overflow proxy errors = %v, want 1", n)
	}

	blk.free()
	for i := 0; i < 2; i++ {
		if res := <-results; res.status != http.StatusOK || res.body != "released" {
			t.Fatalf("in-flight request %d: status %d %q, want 200 released", i, res.status, res.body)
		}
	}
	err := parallel(40, 2, func(i int) error {
		res, err := tryGet(c, g.url+"/", nil)
		if err != nil {
			return err
		}
		if res.status != http.StatusOK {
			return fmt.Errorf("after release, request %d: status %d %q", i, res.status, res.body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestConnectionLimitCountsStreamingResponses: a response whose body is
// still streaming holds its upstream connection, so it must count against
// connectionPool.maxConnections. A request over the limit is an overflow
// (503, counted), never a 502 blamed on the upstream.
func TestConnectionLimitCountsStreamingResponses(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	stable := newBackend(t, stableVersion, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/download" {
			_, _ = io.WriteString(w, "ok")
			return
		}
		_, _ = io.WriteString(w, "first part\n")
		http.NewResponseController(w).Flush()
		select {
		case <-release:
			_, _ = io.WriteString(w, "second part\n")
		case <-r.Context().Done():
		}
	})
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.ConnectionPool.MaxConnections = 2
	})
	r.Spec.ConnectionPool.MaxPendingRequests = 0
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(8)
	defer closeIdle(c)

	// Two downloads whose headers and first bytes arrived: both upstream
	// connections are busy until the backend is released.
	bodies := make([]io.ReadCloser, 2)
	for i := range bodies {
		resp, err := c.Get(g.url + "/download")
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(io.LimitReader(resp.Body, 11)).ReadString('\n')
		if resp.StatusCode != http.StatusOK || line != "first part\n" {
			t.Fatalf("download %d: status %d, first bytes %q, %v", i, resp.StatusCode, line, err)
		}
		bodies[i] = resp.Body
	}

	res := get(t, c, g.url+"/", nil)
	if res.status != http.StatusServiceUnavailable || res.errHdr != "overflow" {
		t.Errorf("a third request while two responses stream: status %d with %s %q: %q; want 503 overflow",
			res.status, hdrError, res.errHdr, res.body)
	}
	if n := g.proxyErrors(t, spec.RoleStable, "upstream-protocol"); n != 0 {
		t.Errorf("upstream-protocol proxy errors = %v: a full connection pool is not the upstream's fault", n)
	}

	free()
	for i, b := range bodies {
		rest, err := io.ReadAll(b)
		b.Close()
		if err != nil || string(rest) != "second part\n" {
			t.Fatalf("download %d: rest %q, %v", i, rest, err)
		}
	}
	if res := get(t, c, g.url+"/", nil); res.status != http.StatusOK {
		t.Fatalf("after the downloads: status %d %q", res.status, res.body)
	}
	if e := g.endpoint(t, stable.url); e.Ejected || !e.Healthy {
		t.Fatalf("the stable endpoint is reported %+v after an overload", e)
	}
}

// TestUpstreamClosesIdleConnection: upstreams close idle keep-alive
// connections on their own schedule (Node.js after 5s, nginx after 75s,
// here 100ms), usually long before the proxy's 90s. The next request must
// not fail because the proxy reused a connection the upstream had closed,
// however many of them there are after a burst.
func TestUpstreamClosesIdleConnection(t *testing.T) {
	for _, burst := range []int{1, 8, 32} {
		t.Run(fmt.Sprintf("after-%d-idle-connections", burst), func(t *testing.T) {
			upstreamClosesIdle(t, burst)
		})
	}
}

func upstreamClosesIdle(t *testing.T, burst int) {
	var opened, closed atomic.Int64
	stable := newBackendServer(t, stableVersion, nil, func(s *http.Server) {
		s.IdleTimeout = 100 * time.Millisecond
		s.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				opened.Add(1)
			case http.StateClosed:
				closed.Add(1)
			}
		}
	})
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.HealthCheck.Disabled = true // only the proxied requests use connections
	})
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(64)
	defer closeIdle(c)

	send := func(n int) {
		t.Helper()
		err := parallel(n, n, func(i int) error {
			res, err := tryGet(c, g.url+"/", nil)
			if err != nil {
				return err
			}
			if res.status != http.StatusOK {
				return fmt.Errorf("request %d of %d: status %d with %s %q: %q", i, n, res.status, hdrError, res.errHdr, res.body)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 2; round++ {
		// A burst of concurrent requests leaves up to that many idle
		// upstream connections, which the upstream then closes.
		send(burst)
		eventually(t, 5*time.Second, "the upstream closes every idle connection", func() bool {
			return closed.Load() == opened.Load()
		})
		send(1)
		eventually(t, 5*time.Second, "the upstream closes every idle connection", func() bool {
			return closed.Load() == opened.Load()
		})
	}
	if n := g.proxyErrors(t, spec.RoleStable, "upstream-protocol"); n != 0 {
		t.Errorf("upstream-protocol proxy errors = %v", n)
	}
}

// TestClientAbortDoesNotEjectUpstream: clients that give up in the middle
// of an upload are the client's failure, not the upstream's. Counting them
// as upstream errors lets any client eject every endpoint of a version (and
// take stable down for the ejection time) with a handful of requests.
func TestClientAbortDoesNotEjectUpstream(t *testing.T) {
	stable := newBackend(t, stableVersion, shaHandler)
	r := rolloutSpec(t, []string{stable.url}, nil, func(s *spec.RolloutSpec) {
		s.OutlierDetection.ConsecutiveErrors = 3
	})
	g := startProxy(t, r, tableConfig(r, 0))
	c := newClient(2)
	defer closeIdle(c)

	const aborted = 5
	for i := 0; i < aborted; i++ {
		conn, err := net.Dial("tcp", g.addr)
		if err != nil {
			t.Fatal(err)
		}
		// Announce 10 MiB (over the mirror cap, so the body streams through),
		// send 2 MiB, then hang up.
		fmt.Fprintf(conn, "POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: %d\r\n\r\n", 10<<20)
		_, _ = conn.Write(make([]byte, 2<<20))
		conn.Close()
	}
	eventually(t, 5*time.Second, "the proxy finishes the aborted uploads", func() bool {
		return g.reg.Rollout(g.name).Rejected(telemetry.RejectBodyAborted) == aborted
	})
	if n := g.versionStats(spec.RoleStable, stableVersion).Summary(0).Requests; n != 0 {
		t.Errorf("the aborted uploads count %d requests against stable, want none", n)
	}
	if e := g.endpoint(t, stable.url); e.Ejected || !e.Healthy {
		t.Errorf("after %d aborted client uploads the stable endpoint is reported %+v", aborted, e)
	}
	if res := get(t, c, g.url+"/", nil); res.status != http.StatusOK {
		t.Fatalf("a normal request after %d aborted client uploads: status %d with %s %q: %q",
			aborted, res.status, hdrError, res.errHdr, res.body)
	}
}
