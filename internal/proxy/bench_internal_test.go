package proxy

import (
	"bufio"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"net"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// BenchmarkDecideAndRecord measures the per-request work coalmine adds on
// top of proxying: the routing decision on a real fasthttp request and the
// telemetry record. Budget: < 300 ns, 0 allocs.
func BenchmarkDecideAndRecord(b *testing.B) {
	for _, bc := range []struct {
		name    string
		headers map[string]string
	}{
		{"user-key", map[string]string{"X-User-ID": "user-123456"}},
		{"cookie", map[string]string{"Cookie": "coalmine_subject=0123456789abcdef0123456789abcdef"}},
		{"new-subject", nil},
		{"header-route", map[string]string{"X-Canary": "true"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tbl, err := route.Compile(route.Config{
				Rollout: "bench", Revision: 1, Weight: 500,
				Assignment:   spec.Assignment{UserHeader: "X-User-ID", Cookie: spec.SubjectCookie{Name: "coalmine_subject"}},
				HeaderRoutes: []spec.HeaderRoute{{Name: "t", Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: benchPtr("true")}}}}},
			})
			if err != nil {
				b.Fatal(err)
			}
			reg := telemetry.NewRegistry(telemetry.Options{})
			rs := reg.Rollout("bench")
			stable, canary := rs.Version(spec.RoleStable, "v1"), rs.Version(spec.RoleCanary, "v2")
			var req fasthttp.Request
			req.SetRequestURI("/api/items?id=1")
			req.Header.SetHost("example.com")
			for k, v := range bc.headers {
				req.Header.Set(k, v)
			}
			var set [192]byte
			// The handler takes the request's start time from fasthttp (read
			// when the request arrived), so only time.Since is its own cost.
			start := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d := tbl.Decide(reqView{&req}, route.Entropy{A: rand.Uint64(), B: rand.Uint64()})
				if d.NewSubject {
					_ = tbl.AppendSetCookie(set[:0], &d, false)
				}
				vs := stable
				if d.Target == route.Canary {
					vs = canary
				}
				vs.Observe(200, time.Since(start))
			}
		})
	}
}

func benchPtr[T any](v T) *T { return &v }

// BenchmarkHandle runs the whole request path (decision, forwarding headers,
// upstream round trip over an in-memory connection, response headers,
// telemetry) to find allocations the proxy adds.
func BenchmarkHandle(b *testing.B) {
	ln := fasthttputil.NewInmemoryListener()
	defer ln.Close()
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello from v1\n") }}
	go up.Serve(ln) //nolint:errcheck
	defer up.Shutdown()

	r := &spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: "bench"},
		Spec: spec.RolloutSpec{Listen: "127.0.0.1:0",
			Stable: spec.VersionSpec{Version: "v1", Endpoints: []string{"http://127.0.0.1:1"}},
			Canary: &spec.VersionSpec{Version: "v2", Endpoints: []string{"http://127.0.0.1:2"}}}}
	r.SetDefaults()
	reg := telemetry.NewRegistry(telemetry.Options{})
	ups, err := buildUpstreams(r, reg.Rollout("bench"))
	if err != nil {
		b.Fatal(err)
	}
	for _, pl := range ups.pools() {
		for _, ep := range pl.endpoints {
			// The steady state: endpoints proven, connections through the
			// same upstream wrapper the real dialer uses.
			ep.up.Store(true)
			idle := r.Spec.TrafficRouting.Timeouts.Idle.D()
			ep.hc.Dial = func(string) (net.Conn, error) {
				c, err := ln.Dial()
				if err != nil {
					return nil, err
				}
				return newUpstreamConn(c, idle), nil
			}
			ep.hc.StreamResponseBody = os.Getenv("BENCH_STREAM") != "0"
		}
	}
	tbl, _ := route.Compile(route.Config{Rollout: "bench", Revision: 1, Weight: 500, Assignment: r.Spec.TrafficRouting.Assignment})
	rp := &rolloutProxy{name: "bench", stats: reg.Rollout("bench")}
	rp.table.Store(tbl)
	rp.upstreams.Store(ups)
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5555}
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	discard := bufio.NewWriter(io.Discard)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req.Reset()
		req.SetRequestURI("/")
		req.Header.SetHost("example.com")
		req.Header.Set("X-User-ID", "user-1")
		ctx.Init(&req, remote, nil)
		rp.handle(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		// Writing the response, as the server does, closes a streamed body
		// and returns the upstream connection to its pool.
		if err := ctx.Response.Write(discard); err != nil {
			b.Fatal(err)
		}
		ctx.Response.Reset()
	}
}
