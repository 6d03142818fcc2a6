package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests of this file attack the data plane through the real binary and
// real sockets, the way a hostile client or an ordinary mistake would, and
// check that the service behind coalmine stays up and that no version is
// blamed for what a client did.

// hardenedTemplate is a rollout at 50% with the limits the tests exercise;
// %[4]s is inserted under spec (indented two spaces).
const hardenedTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %[1]s
  stable: {version: v1, endpoints: [%[2]s]}
  canary: {version: v2, endpoints: [%[3]s]}
  progressDeadline: 1m
%[4]s
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {}
`

// newHardenedServer is a server with the rollout above, started and with
// its canary at 50%.
func newHardenedServer(t *testing.T, stableURL, canaryURL, extra string) *server {
	t.Helper()
	stub := &backend{URL: stableURL}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(hardenedTemplate, s.Listen, stableURL, canaryURL, extra))
	s.start()
	s.waitFor("the canary at 50%", 15*time.Second, func(st status) bool { return st.StepIndex == 1 && st.ObservedWeight == 50 })
	return s
}

// exchange writes raw bytes to addr and returns everything the server
// sends until it closes the connection or wait passes.
func exchange(t *testing.T, addr, raw string, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	b, _ := io.ReadAll(c)
	return string(b)
}

// metricValue returns the value of the sample line that starts with the
// given series (name{labels}), or -1 when there is none.
func metricValue(m, series string) float64 {
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, series+" ") {
			v, err := strconv.ParseFloat(line[len(series)+1:], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// versionCounters returns every coalmine_requests_total and
// coalmine_proxy_errors_total sample that is not 0, each as one line.
func versionCounters(m string) []string {
	var out []string
	for _, line := range strings.Split(m, "\n") {
		if (strings.HasPrefix(line, "coalmine_requests_total{") || strings.HasPrefix(line, "coalmine_proxy_errors_total{")) && !strings.HasSuffix(line, " 0") {
			out = append(out, line)
		}
	}
	return out
}

// eventsOf returns the rollout's events of one type.
func eventsOf(s *server, typ string) []event {
	var out []event
	for _, e := range s.events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Issue 9, items 1 and 9: malformed, truncated, oversized and slow requests
// are answered 4xx by coalmine and counted for the rollout, never for a
// version, never toward outlier ejection, and never echoed.
func TestClientFaultsNeverCountAgainstAVersion(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newHardenedServer(t, stable.URL, canary.URL, `  outlierDetection: {consecutiveErrors: 3}
  trafficRouting:
    timeouts: {requestHeaders: 1s}
    clientLimits: {maxHeaderBytes: 2048}`)

	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string][]string{}
	for i := 0; i < n; i++ {
		for name, c := range map[string]struct {
			raw  string
			wait time.Duration
		}{
			"http/1.0 without host": {"GET / HTTP/1.0\r\n\r\n", 5 * time.Second},
			"bad chunk size":        {"POST / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 5 * time.Second},
			"uri too long":          {"GET /" + strings.Repeat("a", 3000) + " HTTP/1.1\r\nHost: shop\r\n\r\n", 5 * time.Second},
			"header too large":      {"GET / HTTP/1.1\r\nHost: shop\r\nCookie: session=" + strings.Repeat("s", 3000) + "\r\n\r\n", 5 * time.Second},
			"headers never end":     {"GET / HTTP/1.1\r\nHost: shop\r\n", 5 * time.Second},
		} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got := exchange(t, s.Listen, c.raw, c.wait)
				mu.Lock()
				answers[name] = append(answers[name], got)
				mu.Unlock()
			}()
		}
		// A body shorter than its Content-Length, the client then silent.
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", s.Listen)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: shop\r\nContent-Length: 100\r\n\r\nonly-this") //nolint:errcheck
			c.(*net.TCPConn).CloseWrite()                                                                    //nolint:errcheck
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(c)
			mu.Lock()
			answers["truncated body"] = append(answers["truncated body"], string(b))
			mu.Unlock()
		}()
	}
	wg.Wait()

	for name, want := range map[string]string{
		"http/1.0 without host": "HTTP/1.1 200 ",
		"bad chunk size":        "HTTP/1.1 400 ",
		"uri too long":          "HTTP/1.1 414 ",
		"header too large":      "HTTP/1.1 431 ",
		"headers never end":     "HTTP/1.1 408 ",
		"truncated body":        "HTTP/1.1 499 ",
	} {
		if len(answers[name]) != n {
			t.Fatalf("%s: %d answers, want %d", name, len(answers[name]), n)
		}
		for _, got := range answers[name] {
			if !strings.HasPrefix(got, want) {
				t.Errorf("%s: answered %.120q, want %q", name, got, want)
			}
			if strings.Contains(got, "sssss") || strings.Contains(got, "aaaaa") {
				t.Errorf("%s: the answer echoes the request: %.300q", name, got)
			}
		}
	}

	m := metrics(t, s)
	for _, line := range versionCounters(m) {
		if !strings.Contains(line, `code="200"`) {
			t.Errorf("a client's fault was counted against a version: %s", line)
		}
	}
	for reason, want := range map[string]float64{"bad-request": n, "uri-too-long": n, "header-too-large": n, "header-timeout": n, "body-aborted": n} {
		if got := metricValue(m, `coalmine_client_rejected_total{reason="`+reason+`",rollout="shop"}`); got != want {
			t.Errorf("coalmine_client_rejected_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if evs := eventsOf(s, "endpoint-unhealthy"); len(evs) != 0 {
		t.Errorf("client faults made endpoints unhealthy: %+v", evs)
	}
	// Both versions still serve everyone.
	for _, hdr := range [][]string{nil, {"X-Canary", "true"}} {
		_ = versionFor(t, s.Listen, "someone", hdr...)
	}
}

// Issue 9, item 2: running out of file descriptors never stops a listener.
// Under ulimit -n 256 the listener caps its connections below the limit and
// answers the rest 503 at once; and when the descriptors are exhausted by
// something else (here, connections to the admin API), accepts back off and
// retry, /readyz says the listener is not accepting, and it serves again as
// soon as descriptors come back.
func TestDescriptorExhaustionNeverStopsTheListener(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(hardenedTemplate, s.Listen, stable.URL, canary.URL, `  trafficRouting:
    timeouts: {requestHeaders: 30s}`))
	s.wrap = []string{"sh", "-c", `ulimit -n 256 && exec "$0" "$@"`}
	s.start()
	s.waitFor("the canary at 50%", 15*time.Second, func(st status) bool { return st.ObservedWeight == 50 })
	if !strings.Contains(s.logs.String(), "maxConnections lowered") {
		t.Errorf("no warning that maxConnections was lowered to fit ulimit -n:\n%s", s.logs.String())
	}

	// 300 idle connections: those over the cap are refused at once.
	conns, refused := openIdle(t, s.Listen, 300, 300*time.Millisecond)
	if refused < 150 {
		t.Errorf("%d of 300 idle connections were refused over the cap, want the cap well below 256 descriptors", refused)
	}
	if code, body := s.readyz(); code != 200 {
		t.Fatalf("/readyz with the listener full: %d %s", code, body)
	}
	for _, c := range conns {
		c.Close()
	}
	eventually(t, 5*time.Second, "a request after the idle connections close", func() bool {
		r, err := tryVersion(s.Listen)
		return err == nil && r != ""
	})

	// Exhaust the descriptors with admin connections, keeping one admin
	// connection open beforehand to ask /readyz on.
	dials := atomic.Int32{}
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) > 1 {
				return nil, errors.New("test: only the first admin connection may be used")
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}}
	readyz := func() (int, string) {
		resp, err := probe.Get(s.Admin + "/readyz")
		if err != nil {
			t.Fatalf("/readyz on the kept connection: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := readyz(); code != 200 {
		t.Fatalf("/readyz = %d before exhaustion", code)
	}
	adminAddr := strings.TrimPrefix(s.Admin, "http://")
	var hogs []net.Conn
	for range 400 {
		c, err := net.Dial("tcp", adminAddr)
		if err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, c)
	}
	defer func() {
		for _, c := range hogs {
			c.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond)

	// A user connects while no descriptor is left: the kernel queues the
	// connection, the listener cannot accept it yet.
	user, err := net.Dial("tcp", s.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer user.Close()
	io.WriteString(user, "GET / HTTP/1.1\r\nHost: shop\r\nX-User-ID: patient\r\n\r\n") //nolint:errcheck
	var body string
	eventually(t, 10*time.Second, "/readyz to report the listener that cannot accept", func() bool {
		code, b := readyz()
		body = b
		return code == 503 && strings.Contains(b, "cannot accept connections")
	})
	t.Logf("/readyz while exhausted: %s", body)

	for _, c := range hogs {
		c.Close()
	}
	hogs = nil
	_ = user.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(user).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("the queued user got %q, %v once descriptors came back", line, err)
	}
	eventually(t, 10*time.Second, "/readyz ok again", func() bool {
		code, _ := s.readyz()
		return code == 200
	})
	if v := metricValue(metrics(t, s), `coalmine_listener_accept_errors_total{rollout="shop"}`); v <= 0 {
		t.Errorf("coalmine_listener_accept_errors_total = %v, want the failed accepts counted", v)
	}
	if !strings.Contains(s.logs.String(), "accepts connections again") {
		t.Errorf("the recovery is not logged")
	}
}

// openIdle opens n silent connections to addr and counts those the
// listener refused at once (503 too-many-connections), waiting up to wait
// on each for that answer.
func openIdle(t *testing.T, addr string, n int, wait time.Duration) ([]net.Conn, int) {
	t.Helper()
	var conns []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	refused := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		b := make([]byte, 256)
		n, _ := c.Read(b)
		if strings.HasPrefix(string(b[:n]), "HTTP/1.1 503") && strings.Contains(string(b[:n]), "too-many-connections") {
			refused++
		}
	}
	return conns, refused
}

// tryVersion sends one plain request and returns the version that answered.
func tryVersion(addr string) (string, error) {
	resp, err := client.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), nil
}

// Issue 9, item 3: a connection that sends its headers too slowly, says
// nothing, or idles between requests is closed; connections over the cap
// are answered 503 at once.
func TestSlowAndIdleClientsAreCut(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newHardenedServer(t, stable.URL, canary.URL, `  trafficRouting:
    timeouts: {requestHeaders: 1s, idle: 2s}
    clientLimits: {maxConnections: 100}`)

	// closedWithin dials n connections, runs feed on each, and returns how
	// long the server took to close each one (its answer read and dropped).
	closedWithin := func(n int, feed func(c net.Conn)) []time.Duration {
		out := make([]time.Duration, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", s.Listen)
				if err != nil {
					t.Error(err)
					return
				}
				defer c.Close()
				start := time.Now()
				done := make(chan struct{})
				go func() {
					defer close(done)
					_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
					_, _ = io.Copy(io.Discard, c)
				}()
				feed(c)
				<-done
				out[i] = time.Since(start)
			}()
		}
		wg.Wait()
		return out
	}
	slowloris := func(c net.Conn) {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop\r\n") //nolint:errcheck
		for range 40 {
			if _, err := io.WriteString(c, "X"); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	for name, d := range map[string][]time.Duration{
		"slowloris": closedWithin(40, slowloris),
		"silent":    closedWithin(40, func(net.Conn) {}),
	} {
		for _, got := range d {
			if got > 4*time.Second {
				t.Errorf("%s connection closed after %v, want about 1s (requestHeaders)", name, got)
			}
		}
	}

	// Keep-alive: one request, then silence until the idle timeout.
	d := closedWithin(1, func(c net.Conn) {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: shop\r\n\r\n") //nolint:errcheck
	})
	if d[0] < 1500*time.Millisecond || d[0] > 5*time.Second {
		t.Errorf("an idle keep-alive connection was closed after %v, want about 2s (idle)", d[0])
	}

	// Over the cap: 130 silent connections, the cap is 100.
	conns, refused := openIdle(t, s.Listen, 130, 200*time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
	if refused < 25 || refused > 35 {
		t.Errorf("%d of 130 connections were refused at a cap of 100", refused)
	}
	m := metrics(t, s)
	if v := metricValue(m, `coalmine_client_rejected_total{reason="too-many-connections",rollout="shop"}`); v != float64(refused) {
		t.Errorf("too-many-connections rejections = %v, want %d", v, refused)
	}
	for _, line := range versionCounters(m) {
		if !strings.Contains(line, `code="200"`) {
			t.Errorf("slow clients were counted against a version: %s", line)
		}
	}
}

// Issue 9, item 4: the response timeout ends at the response's first byte.
// A stream that keeps flowing outlives it; one that stalls is cut after the
// idle timeout.
func TestStreamsOutliveTheResponseTimeout(t *testing.T) {
	url := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		w.Header().Set("Content-Type", "text/event-stream")
		switch r.URL.Path {
		case "/stream": // 35 events 100 ms apart: 3.5 s, over the 1 s response timeout
			for i := range 35 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				f.Flush()
				time.Sleep(100 * time.Millisecond)
			}
		case "/stall": // one event, then silence longer than the 2 s idle timeout
			io.WriteString(w, "data: first\n\n") //nolint:errcheck
			f.Flush()
			select {
			case <-time.After(20 * time.Second):
			case <-r.Context().Done():
			}
		default:
			io.WriteString(w, "v1") //nolint:errcheck
		}
	})
	s := newHardenedServer(t, url, url, `  trafficRouting:
    timeouts: {response: 1s, idle: 2s}`)

	c := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	resp, err := c.Get("http://" + s.Listen + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || strings.Count(string(b), "data: ") != 35 {
		t.Fatalf("after %v the stream ended with %v holding %d events, want all 35 and its terminating chunk",
			time.Since(start), err, strings.Count(string(b), "data: "))
	}

	start = time.Now()
	resp, err = c.Get("http://" + s.Listen + "/stall")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err == nil || !strings.Contains(string(b), "data: first") || took < 1500*time.Millisecond || took > 6*time.Second {
		t.Fatalf("a stalled stream ended after %v with %v and %q, want cut (an error) after about 2s (idle)", took, err, b)
	}
}

// backendWithoutHealth answers every path but /health, which is 404, like
// most services.
func backendWithoutHealth(t *testing.T, version string) string {
	t.Helper()
	return serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, version) //nolint:errcheck
	})
}

// Issue 9, item 5: health checks are opt-in. A service without /health
// serves on; with a check configured that fails, the event names the URL
// and the answer, and traffic still flows (a health check alone never
// refuses everyone).
func TestHealthChecksAreOptInAndNeverRefuseEveryone(t *testing.T) {
	stableURL, canaryURL := backendWithoutHealth(t, "v1"), backendWithoutHealth(t, "v2")

	s := newHardenedServer(t, stableURL, canaryURL, "")
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if v, err := tryVersion(s.Listen); err != nil || (v != "v1" && v != "v2") {
			t.Fatalf("without a health check: %q, %v", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if evs := eventsOf(s, "endpoint-unhealthy"); len(evs) != 0 {
		t.Fatalf("endpoints of a service without /health were marked unhealthy: %+v", evs)
	}
	s.signal(15)
	s.waitExit(10 * time.Second)

	stub := &backend{URL: stableURL}
	s2 := newServer(t, stub, stub)
	s2.writeConfig(fmt.Sprintf(hardenedTemplate, s2.Listen, stableURL, canaryURL, `  healthCheck: {path: /health, interval: 200ms}`))
	s2.start()
	var evs []event
	eventually(t, 10*time.Second, "an endpoint-unhealthy event for each endpoint", func() bool {
		evs = eventsOf(s2, "endpoint-unhealthy")
		return len(evs) >= 2
	})
	for _, e := range evs {
		if !strings.Contains(e.Message, "GET http://127.0.0.1:") || !strings.Contains(e.Message, "/health answered 404 Not Found") {
			t.Errorf("the event does not say which URL answered what: %q", e.Message)
		}
	}
	// Every endpoint of stable is marked down, and users are still served.
	for range 20 {
		if v, err := tryVersion(s2.Listen); err != nil || v != "v1" {
			t.Fatalf("with every endpoint marked unhealthy: %q, %v, want stable to be tried anyway", v, err)
		}
	}
	time.Sleep(time.Second) // five more failing checks per endpoint
	if n := len(eventsOf(s2, "endpoint-unhealthy")); n != 2 {
		t.Errorf("%d endpoint-unhealthy events for two endpoints, want one each", n)
	}
}

// Issue 9, item 6: a canary endpoint that refuses connections is the
// canary's failure even though users are saved by the retry: the analysis
// sees it and rolls the canary back.
func TestRefusedConnectionsRollTheCanaryBack(t *testing.T) {
	stable, canaryA, canaryB := startBackend(t, "v1"), startBackend(t, "v2"), startBackend(t, "v2")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s, %s]}
  outlierDetection: {consecutiveErrors: 100000}
  trafficRouting:
    assignment: {userHeader: X-User-ID}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {}
        - analysis: {templates: [{templateName: judge}]}
---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: judge}
spec:
  metrics:
%s`, s.Listen, stable.URL, canaryA.URL, canaryB.URL, errorRateJudge))
	s.start()
	s.waitFor("the pause after 50%", 15*time.Second, func(st status) bool { return st.StepIndex == 1 })

	canaryA.srv.Close() // half of the canary's endpoints now refuse connections
	s.mustCLI("promote", "shop")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var failed atomic.Int64
	go func() {
		c := &http.Client{Timeout: 5 * time.Second}
		for i := 0; ctx.Err() == nil; i++ {
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Listen+"/", nil)
			req.Header.Set("X-User-ID", "u"+strconv.Itoa(i%5000))
			resp, err := c.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					failed.Add(1)
				}
				continue
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	}()
	st := s.waitFor("the canary rolled back", 30*time.Second, func(st status) bool { return st.Phase == "Degraded" })
	stop()
	t.Logf("rolled back: %s", st.Message)
	if !strings.Contains(st.Message, "error-rate") {
		t.Errorf("message %q does not name the metric", st.Message)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d user requests failed; the retry on another endpoint should have saved every one", n)
	}
	m := metrics(t, s)
	if v := metricValue(m, `coalmine_proxy_errors_total{kind="connect",role="canary",rollout="shop"}`); v <= 0 {
		t.Errorf("coalmine_proxy_errors_total{kind=connect,role=canary} = %v, want the refused connections", v)
	}
}

// Issue 9, item 7: a canary must prove itself before a setWeight step
// completes: with nothing listening, the step waits and says why.
func TestCanaryWithNothingListeningNeverCompletesAStep(t *testing.T) {
	stable := startBackend(t, "v1")
	stub := &backend{URL: stable.URL}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
  progressDeadline: 1m
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {}
`, s.Listen, stable.URL))
	s.start()
	port := freeAddr(t)
	s.mustCLI("set", "canary", "shop", "v99", "--endpoint", "http://"+port)
	time.Sleep(3 * time.Second)
	st := s.status()
	if st.StepIndex != 0 || st.Phase != "Progressing" || !strings.Contains(st.Message, "waiting for canary v99 to have a healthy endpoint") {
		t.Fatalf("3s after set canary with nothing listening: %+v", st)
	}
	evs := eventsOf(s, "endpoint-unhealthy")
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "connection refused") || !strings.Contains(evs[0].Message, port) {
		t.Fatalf("endpoint-unhealthy events %+v, want one saying the connection to %s is refused", evs, port)
	}
	for range 20 {
		if v, err := tryVersion(s.Listen); err != nil || v != "v1" {
			t.Fatalf("a request while the canary is down: %q %v", v, err)
		}
	}

	ln, err := net.Listen("tcp", port)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "v99") })} //nolint:errcheck
	go srv.Serve(ln)                                                                                                          //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	s.waitFor("the step to complete once the canary listens", 10*time.Second, func(st status) bool {
		return st.StepIndex == 1 && st.ObservedWeight == 10
	})
	if evs := eventsOf(s, "endpoint-healthy"); len(evs) != 1 {
		t.Errorf("endpoint-healthy events %+v, want one for the recovery", evs)
	}
}

// Issue 9, item 8: killing a canary endpoint under load is one transition
// and one event, however many requests were in flight.
func TestKilledEndpointMakesOneEvent(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newHardenedServer(t, stable.URL, canary.URL, "")
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.Listen+"/", nil)
				req.Header.Set("X-User-ID", fmt.Sprintf("u%d-%d", g, i))
				if resp, err := c.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body) //nolint:errcheck
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(time.Second)
	canary.srv.Close()
	time.Sleep(2 * time.Second)
	stop()
	wg.Wait()
	if evs := eventsOf(s, "endpoint-unhealthy"); len(evs) != 1 {
		t.Fatalf("%d endpoint-unhealthy events for one killed endpoint, want 1: %+v", len(evs), evs)
	}
}

// Issue 9, item 9: an HTTP/1.0 upstream's status line is not passed on:
// an HTTP/1.1 client keeps its keep-alive connection.
func TestHTTP10UpstreamKeepsClientKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nv1") //nolint:errcheck
			}()
		}
	}()
	url := "http://" + ln.Addr().String()
	s := newHardenedServer(t, url, url, "")
	reused := 0
	c := &http.Client{Timeout: 5 * time.Second}
	for i := range 3 {
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			if info.Reused {
				reused++
			}
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "http://"+s.Listen+"/", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		if resp.Proto != "HTTP/1.1" || resp.Close {
			t.Fatalf("request %d: %s, close %v, want HTTP/1.1 keep-alive", i, resp.Proto, resp.Close)
		}
	}
	if reused != 2 {
		t.Errorf("the client reused its connection %d times in 3 requests, want 2", reused)
	}
}

// Issue 9, item 9: lint refuses intervals and timeouts that would flood.
func TestLintRefusesFloodingIntervals(t *testing.T) {
	dir := t.TempDir()
	f := dir + "/r.yaml"
	writeFile(t, f, `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: 127.0.0.1:8080
  stable: {version: v1, endpoints: [http://127.0.0.1:9001]}
  healthCheck: {interval: 1ns}
  trafficRouting:
    timeouts: {requestHeaders: 1ms}
`)
	out, code := run(t, "lint", "-f", f)
	if code != 2 || !strings.Contains(out, "healthCheck.interval: 1ns is too short: it must be at least 100ms") ||
		!strings.Contains(out, "requestHeaders: 1ms is too short") {
		t.Fatalf("lint: exit %d:\n%s", code, out)
	}
}

// Issue 9, item 9: a flood of unauthenticated admin requests does not flood
// the log.
func TestRejectedAdminRequestsAreLoggedSparingly(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newServer(t, stable, canary)
	s.env = []string{"COALMINE_TOKEN=s3cret-token"}
	s.start()
	for range 2000 {
		resp, err := client.Get(s.Admin + "/api/v1/rollouts")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	if n := strings.Count(s.logs.String(), "admin API request rejected"); n < 1 || n > 3 {
		t.Fatalf("%d log lines for 2000 rejected requests, want 1 to 3", n)
	}
}

// Issue 9, "what must be true": an attacker repeating items 1–3 for a
// minute against a rollout under wrk load causes no 5xx to the wrk clients
// and no change in the versions' counters beyond the wrk traffic.
func TestAttackerUnderLoadChangesNothing(t *testing.T) {
	wrk := requireTool(t, "wrk")
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	s := newHardenedServer(t, stable.URL, canary.URL, `  trafficRouting:
    timeouts: {requestHeaders: 2s}`)
	duration := 60 * time.Second
	if testing.Short() {
		duration = 10 * time.Second
	}
	cmd := exec.Command(wrk, "-t1", "-c32", fmt.Sprintf("-d%ds", int(duration.Seconds())), "--latency", "http://"+s.Listen+"/")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	attacks := map[string]string{
		"bad chunk":        "POST / HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"uri too long":     "GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: shop\r\n\r\n",
		"header too large": "GET / HTTP/1.1\r\nHost: shop\r\nCookie: " + strings.Repeat("c", 9000) + "\r\n\r\n",
		"both lengths":     "POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"truncated body":   "POST / HTTP/1.1\r\nHost: shop\r\nContent-Length: 1000\r\n\r\nshort",
	}
	var sent atomic.Int64
	ctx, stop := context.WithTimeout(context.Background(), duration-2*time.Second)
	defer stop()
	var wg sync.WaitGroup
	// Malformed requests, as fast as one connection at a time goes.
	for _, raw := range attacks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if c, err := net.Dial("tcp", s.Listen); err == nil {
					io.WriteString(c, raw)                                 //nolint:errcheck
					c.(*net.TCPConn).CloseWrite()                          //nolint:errcheck
					_ = c.SetReadDeadline(time.Now().Add(3 * time.Second)) //nolint:errcheck
					io.Copy(io.Discard, c)                                 //nolint:errcheck
					c.Close()
					sent.Add(1)
				}
			}
		}()
	}
	// Slowloris and silent connections, renewed as the server cuts them.
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				c, err := net.Dial("tcp", s.Listen)
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				io.WriteString(c, "GET / HTTP/1.1\r\n") //nolint:errcheck
				for ctx.Err() == nil {
					if _, err := io.WriteString(c, "X"); err != nil {
						break
					}
					time.Sleep(500 * time.Millisecond)
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("wrk: %v\n%s", err, out.String())
	}
	report := out.String()
	t.Logf("%d malformed requests sent; wrk:\n%s", sent.Load(), report)
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report); m == nil || m[1] == "0" {
		t.Fatalf("wrk sent no requests:\n%s", report)
	}
	if strings.Contains(report, "Non-2xx") || strings.Contains(report, "Socket errors") {
		t.Fatalf("the attack reached wrk's clients:\n%s", report)
	}
	m := metrics(t, s)
	for _, line := range versionCounters(m) {
		if !strings.Contains(line, `code="200"`) {
			t.Errorf("the attack changed a version's counters: %s", line)
		}
	}
	if evs := eventsOf(s, "endpoint-unhealthy"); len(evs) != 0 {
		t.Errorf("the attack made endpoints unhealthy: %+v", evs)
	}
	if sent.Load() < 100 {
		t.Errorf("only %d malformed requests were sent", sent.Load())
	}
}
