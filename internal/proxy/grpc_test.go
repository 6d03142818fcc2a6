package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/coalmine-dev/coalmine/internal/proxy"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// gRPC through the proxy, with real grpc-go clients and servers: the
// interop TestService (no protoc needed) answers with its version in the
// "x-backend-version" header metadata.

const mdBackend = "x-backend-version"

type grpcBackend struct {
	testpb.UnimplementedTestServiceServer
	version string
	srv     *grpc.Server
	health  *health.Server
	addr    string
	// failWith, when set, is the status of every unary call.
	failWith codes.Code
	// unary counts unary calls, and mirrored those marked as mirrors.
	unary, mirrored atomic.Int64

	mu    sync.Mutex
	conns []net.Conn
	// started receives a call that waits for its end ("wait" payloads);
	// ended receives how its context ended and whether it had a deadline.
	started chan struct{}
	ended   chan callEnd
}

type callEnd struct {
	err         error
	hadDeadline bool
}

// newGRPCBackend serves the test service over cleartext HTTP/2, or TLS
// with a self-signed certificate when tlsOn.
func newGRPCBackend(t testing.TB, version string, tlsOn bool) *grpcBackend {
	t.Helper()
	b := &grpcBackend{version: version, started: make(chan struct{}, 16), ended: make(chan callEnd, 16)}
	var opts []grpc.ServerOption
	if tlsOn {
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "up.crt"), filepath.Join(dir, "up.key")
		writeSelfSigned(t, "upstream", certFile, keyFile)
		creds, err := credentials.NewServerTLSFromFile(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	b.srv = grpc.NewServer(opts...)
	testpb.RegisterTestServiceServer(b.srv, b)
	b.health = health.NewServer()
	healthpb.RegisterHealthServer(b.srv, b.health)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	go func() { _ = b.srv.Serve(&trackingListener{Listener: ln, b: b}) }()
	t.Cleanup(b.srv.Stop)
	return b
}

func (b *grpcBackend) url(scheme string) string { return scheme + "://" + b.addr }

func (b *grpcBackend) tag(ctx context.Context) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(mdBackend, b.version))
}

func (b *grpcBackend) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	b.tag(ctx)
	b.unary.Add(1)
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get("x-coalmine-mirror")) > 0 {
		b.mirrored.Add(1)
	}
	if string(req.GetPayload().GetBody()) == "wait" {
		_, hadDeadline := ctx.Deadline()
		b.started <- struct{}{}
		<-ctx.Done()
		b.ended <- callEnd{err: ctx.Err(), hadDeadline: hadDeadline}
		return nil, ctx.Err()
	}
	if b.failWith != codes.OK {
		return nil, status.Error(b.failWith, "failing on purpose")
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload(), ServerId: b.version}, nil
}

func (b *grpcBackend) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testpb.StreamingOutputCallResponse]) error {
	b.tag(stream.Context())
	for i, p := range req.GetResponseParameters() {
		body := make([]byte, p.GetSize())
		body = append(body[:0], fmt.Sprintf("%d", i)...)
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: body}}); err != nil {
			return err
		}
	}
	return nil
}

func (b *grpcBackend) StreamingInputCall(stream grpc.ClientStreamingServer[testpb.StreamingInputCallRequest, testpb.StreamingInputCallResponse]) error {
	b.tag(stream.Context())
	total := 0
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(m.GetPayload().GetBody())
	}
}

// FullDuplexCall echoes every message as it arrives; a "die" message
// stops the whole server, connections and all, mid-stream.
func (b *grpcBackend) FullDuplexCall(stream grpc.BidiStreamingServer[testpb.StreamingOutputCallRequest, testpb.StreamingOutputCallResponse]) error {
	b.tag(stream.Context())
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if string(m.GetPayload().GetBody()) == "die" {
			b.cutConnections()
			<-stream.Context().Done()
			return stream.Context().Err()
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: m.GetPayload()}); err != nil {
			return err
		}
	}
}

// trackingListener keeps the backend's connections, so a test can cut
// them as a crashing process would.
type trackingListener struct {
	net.Listener
	b *grpcBackend
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.b.mu.Lock()
		l.b.conns = append(l.b.conns, c)
		l.b.mu.Unlock()
	}
	return c, err
}

// cutConnections closes every connection of the backend at once, without
// a GOAWAY: the process died.
func (b *grpcBackend) cutConnections() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		_ = c.Close()
	}
}

// grpcClient dials the proxy's listener: TLS (ALPN h2) or h2c.
func grpcClient(t *testing.T, addr string, tlsOn bool) testpb.TestServiceClient {
	t.Helper()
	creds := insecure.NewCredentials()
	if tlsOn {
		creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // a test certificate
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return testpb.NewTestServiceClient(cc)
}

// grpcRollout is a rollout whose listener speaks h1, h2 and h2c (TLS when
// tlsOn) in front of gRPC endpoints; no HTTP health check (a gRPC server
// has no GET path), so endpoints prove themselves by connection probes.
func grpcRollout(t *testing.T, stable, canary []string, tlsOn bool, mod func(s *spec.RolloutSpec)) *spec.Rollout {
	t.Helper()
	return rolloutSpec(t, stable, canary, func(s *spec.RolloutSpec) {
		s.HealthCheck = nil
		s.Protocols = []string{spec.ProtocolH1, spec.ProtocolH2, spec.ProtocolH2C}
		s.UpstreamTLS = &spec.UpstreamTLS{InsecureSkipVerify: true}
		if tlsOn {
			dir := t.TempDir()
			certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
			writeSelfSigned(t, "proxy", certFile, keyFile)
			s.TLS = &spec.TLSConfig{CertFile: certFile, KeyFile: keyFile}
		}
		if mod != nil {
			mod(s)
		}
	})
}

// waitUp waits until every endpoint of the rig has proven reachable.
func (g *rig) waitUp(t *testing.T) {
	t.Helper()
	eventually(t, 5*time.Second, "every endpoint proves reachable", func() bool {
		for _, e := range g.endpoints(t) {
			if !e.Healthy {
				return false
			}
		}
		return true
	})
}

func grpcCalls(v *telemetry.VersionStats) map[string]uint64 {
	out := map[string]uint64{}
	for _, c := range v.GRPCCalls() {
		kind := "unary"
		if c.Streaming {
			kind = "streaming"
		}
		out[c.Code+"/"+kind] += c.Count
	}
	return out
}

// Unary and the three streaming kinds pass through over TLS (ALPN h2) and
// h2c listeners, to h2c and TLS (HTTP/2 by ALPN) upstreams, and are
// counted by status and kind.
func TestGRPCAllCallKindsThroughTheProxy(t *testing.T) {
	for _, tc := range []struct {
		name                string
		listenerTLS, upsTLS bool
	}{
		{"h2c listener, h2c upstream", false, false},
		{"TLS listener, h2c upstream", true, false},
		{"TLS listener, https upstream", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newGRPCBackend(t, stableVersion, tc.upsTLS)
			scheme := "h2c"
			if tc.upsTLS {
				scheme = "https"
			}
			r := grpcRollout(t, []string{be.url(scheme)}, nil, tc.listenerTLS, nil)
			g := startProxy(t, r, tableConfig(r, 0))
			g.waitUp(t)
			cl := grpcClient(t, g.addr, tc.listenerTLS)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			var hdr metadata.MD
			resp, err := cl.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}}, grpc.Header(&hdr))
			if err != nil {
				t.Fatalf("unary: %v", err)
			}
			if string(resp.GetPayload().GetBody()) != "hello" || resp.GetServerId() != stableVersion {
				t.Fatalf("unary answer %v", resp)
			}
			if got := hdr.Get("x-coalmine-version"); len(got) != 1 || got[0] != stableVersion {
				t.Errorf("x-coalmine-version metadata %v", got)
			}

			// Server streaming: five messages, each a separate read.
			params := make([]*testpb.ResponseParameters, 5)
			for i := range params {
				params[i] = &testpb.ResponseParameters{Size: 10}
			}
			ss, err := cl.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: params})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				_, err := ss.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("server stream: %v", err)
				}
				n++
			}
			if n != 5 {
				t.Fatalf("server stream gave %d messages, want 5", n)
			}

			// Client streaming.
			cs, err := cl.StreamingInputCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				if err := cs.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: []byte("abc")}}); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := cs.CloseAndRecv()
			if err != nil || sum.GetAggregatedPayloadSize() != 15 {
				t.Fatalf("client stream: %v %v", sum, err)
			}

			// Bidirectional, in lock step: each answer must arrive before
			// the next message is sent, so nothing may be buffered.
			bs, err := cl.FullDuplexCall(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				msg := fmt.Sprintf("m%d", i)
				if err := bs.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(msg)}}); err != nil {
					t.Fatal(err)
				}
				got, err := bs.Recv()
				if err != nil || string(got.GetPayload().GetBody()) != msg {
					t.Fatalf("bidi message %d: %v %v", i, got, err)
				}
			}
			if err := bs.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := bs.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("bidi end: %v", err)
			}

			v := g.versionStats(spec.RoleStable, stableVersion)
			eventually(t, 2*time.Second, "four calls recorded", func() bool {
				c := grpcCalls(v)
				return c["OK/unary"] == 1 && c["OK/streaming"] == 3
			})
			s := v.Summary(0)
			if s.Requests != 4 || s.Errors != 0 || s.Histogram.Count() != 1 {
				t.Errorf("summary: %d requests, %d errors, %d latencies; want 4, 0 and 1 (the unary call)", s.Requests, s.Errors, s.Histogram.Count())
			}
		})
	}
}

// A canary answering UNAVAILABLE is counted as failing: the HTTP status is
// 200 throughout, only the gRPC status says so.
func TestGRPCCanaryUnavailableCountsAsErrors(t *testing.T) {
	stable := newGRPCBackend(t, stableVersion, false)
	canary := newGRPCBackend(t, canaryVersion, false)
	canary.failWith = codes.Unavailable
	r := grpcRollout(t, []string{stable.url("h2c")}, []string{canary.url("h2c")}, false, func(s *spec.RolloutSpec) {
		s.OutlierDetection.ConsecutiveErrors = 1000 // keep the canary in, to count every call
		s.TrafficRouting.Assignment.UserHeader = "x-user"
	})
	g := startProxy(t, r, tableConfig(r, 5000))
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	ctx := context.Background()
	canaryCalls := 0
	for i := range 40 {
		md := metadata.Pairs("x-user", fmt.Sprintf("user-%d", i))
		_, err := cl.UnaryCall(metadata.NewOutgoingContext(ctx, md), &testpb.SimpleRequest{})
		switch status.Code(err) {
		case codes.OK:
		case codes.Unavailable:
			canaryCalls++
		default:
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if canaryCalls == 0 || canaryCalls == 40 {
		t.Fatalf("%d of 40 calls reached the canary at 50%%", canaryCalls)
	}
	cs := g.versionStats(spec.RoleCanary, canaryVersion).Summary(0)
	ss := g.versionStats(spec.RoleStable, stableVersion).Summary(0)
	if cs.Requests != int64(canaryCalls) || cs.Errors != int64(canaryCalls) || cs.ErrorRate != 1 {
		t.Errorf("canary: %d requests %d errors rate %v; want %d, %d, 1", cs.Requests, cs.Errors, cs.ErrorRate, canaryCalls, canaryCalls)
	}
	if ss.Errors != 0 || ss.Requests != int64(40-canaryCalls) {
		t.Errorf("stable: %d requests %d errors", ss.Requests, ss.Errors)
	}
	if got := g.metric(t, "coalmine_grpc_calls_total", map[string]string{"role": "canary", "code": "UNAVAILABLE", "kind": "unary"}); got != float64(canaryCalls) {
		t.Errorf("coalmine_grpc_calls_total UNAVAILABLE = %v, want %d", got, canaryCalls)
	}
}

// A user key in gRPC metadata keeps each user on its version, and as the
// weight rises users only move from stable to canary.
func TestGRPCUsersStayOnTheirVersionByMetadata(t *testing.T) {
	stable := newGRPCBackend(t, stableVersion, false)
	canary := newGRPCBackend(t, canaryVersion, false)
	r := grpcRollout(t, []string{stable.url("h2c")}, []string{canary.url("h2c")}, false, func(s *spec.RolloutSpec) {
		s.TrafficRouting.Assignment.UserHeader = "x-user"
	})
	g := startProxy(t, r, tableConfig(r, 2000))
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	versionOf := func(user string) string {
		ctx := metadata.NewOutgoingContext(context.Background(), metadata.Pairs("x-user", user))
		resp, err := cl.UnaryCall(ctx, &testpb.SimpleRequest{})
		if err != nil {
			t.Fatalf("call for %s: %v", user, err)
		}
		return resp.GetServerId()
	}
	at20 := map[string]string{}
	for i := range 50 {
		u := fmt.Sprintf("user-%d", i)
		at20[u] = versionOf(u)
		for range 3 {
			if v := versionOf(u); v != at20[u] {
				t.Fatalf("%s moved from %s to %s at a fixed weight", u, at20[u], v)
			}
		}
	}
	g.setWeight(t, 6000)
	moved := 0
	for u, was := range at20 {
		now := versionOf(u)
		if was == canaryVersion && now != canaryVersion {
			t.Fatalf("%s left the canary when the weight rose", u)
		}
		if was != now {
			moved++
		}
	}
	if moved == 0 {
		t.Errorf("no user moved to the canary from 20%% to 60%%")
	}
}

// The call's grpc-timeout reaches the upstream as its deadline, and its
// expiry ends the call DEADLINE_EXCEEDED.
func TestGRPCTimeoutIsTheUpstreamDeadline(t *testing.T) {
	be := newGRPCBackend(t, stableVersion, false)
	r := grpcRollout(t, []string{be.url("h2c")}, nil, false, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := cl.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("wait")}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DEADLINE_EXCEEDED", err)
	}
	select {
	case end := <-be.ended:
		if !end.hadDeadline {
			t.Errorf("the upstream call had no deadline: grpc-timeout was not passed on")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream call never ended")
	}
	// Calls that run out their deadline are the version's errors, whether
	// the caller (its clock started first) or the proxy gives up first.
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, _ = cl.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("wait")}})
		cancel()
	}
	eventually(t, 5*time.Second, "six DEADLINE_EXCEEDED calls recorded", func() bool {
		return g.metric(t, "coalmine_grpc_calls_total", map[string]string{"role": "stable", "code": "DEADLINE_EXCEEDED", "kind": "unary"}) == 6
	})
	if got := g.metric(t, "coalmine_grpc_calls_total", map[string]string{"role": "stable", "code": "CANCELLED", "kind": "unary"}); got != 0 {
		t.Errorf("%v calls that ran out their deadline were counted as CANCELLED", got)
	}
}

// A client that cancels its call cancels the upstream call.
func TestGRPCClientCancelReachesTheUpstream(t *testing.T) {
	be := newGRPCBackend(t, stableVersion, false)
	r := grpcRollout(t, []string{be.url("h2c")}, nil, false, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cl.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("wait")}})
		done <- err
	}()
	select {
	case <-be.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the call never reached the upstream")
	}
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("client got %v, want CANCELLED", err)
	}
	select {
	case end := <-be.ended:
		if !errors.Is(end.err, context.Canceled) {
			t.Errorf("upstream call ended with %v, want context.Canceled", end.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancel never reached the upstream")
	}
	v := g.versionStats(spec.RoleStable, stableVersion)
	eventually(t, 2*time.Second, "the cancelled call is recorded", func() bool { return grpcCalls(v)["CANCELLED/unary"] == 1 })
	if s := v.Summary(0); s.Errors != 0 {
		t.Errorf("a cancelled call counted as the version's error")
	}
}

// An upstream that dies mid-stream ends the client's call UNAVAILABLE,
// counted against the version.
func TestGRPCUpstreamDyingMidStreamIsUnavailable(t *testing.T) {
	be := newGRPCBackend(t, stableVersion, false)
	r := grpcRollout(t, []string{be.url("h2c")}, nil, false, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bs, err := cl.FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(s string) {
		if err := bs.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte(s)}}); err != nil {
			t.Fatal(err)
		}
	}
	send("first")
	if _, err := bs.Recv(); err != nil {
		t.Fatal(err)
	}
	send("die")
	_, err = bs.Recv()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("client got %v, want UNAVAILABLE", err)
	}
	v := g.versionStats(spec.RoleStable, stableVersion)
	eventually(t, 2*time.Second, "the broken call is recorded", func() bool { return grpcCalls(v)["UNAVAILABLE/streaming"] == 1 })
	if s := v.Summary(0); s.Errors != 1 {
		t.Errorf("errors %d, want 1", s.Errors)
	}
}

// With no endpoint that accepts connections, the client gets UNAVAILABLE
// from coalmine, marked as coalmine's, with the reason in grpc-message.
func TestGRPCCoalmineErrorsAreGRPCStatuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "h2c://" + ln.Addr().String()
	ln.Close()
	r := grpcRollout(t, []string{dead}, nil, false, nil)
	g := startProxy(t, r, tableConfig(r, 0))
	cl := grpcClient(t, g.addr, false)
	var hdr, trailer metadata.MD
	_, err = cl.UnaryCall(context.Background(), &testpb.SimpleRequest{}, grpc.Header(&hdr), grpc.Trailer(&trailer))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("got %v, want UNAVAILABLE", err)
	}
	// A trailers-only answer: grpc-go gives its fields as trailers.
	if got := metadata.Join(hdr, trailer).Get("x-coalmine-error"); len(got) != 1 || got[0] != "connect" {
		t.Errorf("x-coalmine-error %v, want connect (message %q)", got, st.Message())
	}
}

// Endpoints are checked with the gRPC health protocol, for one service:
// NOT_SERVING takes an endpoint out, SERVING brings it back.
func TestGRPCHealthChecks(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		scheme := "h2c"
		if tlsOn {
			scheme = "https"
		}
		t.Run(scheme, func(t *testing.T) {
			be := newGRPCBackend(t, stableVersion, tlsOn)
			be.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
			r := grpcRollout(t, []string{be.url(scheme)}, nil, false, func(s *spec.RolloutSpec) {
				s.HealthCheck = &spec.HealthCheck{Interval: spec.Duration(100 * time.Millisecond), Timeout: spec.Duration(time.Second),
					HealthyThreshold: 1, UnhealthyThreshold: 1, GRPC: &spec.GRPCHealthCheck{Service: "shop.Cart"}}
			})
			var mu sync.Mutex
			var reasons []string
			g := startProxyWith(t, r, tableConfig(r, 0), proxy.Options{OnEndpointHealth: func(_ string, _ spec.Role, _, _ string, healthy bool, reason string) {
				mu.Lock()
				defer mu.Unlock()
				reasons = append(reasons, fmt.Sprint(healthy, ": ", reason))
			}})
			healthy := func() bool { return g.endpoint(t, be.url(scheme)).Healthy }
			eventually(t, 5*time.Second, "SERVING makes the endpoint healthy", healthy)
			be.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_NOT_SERVING)
			eventually(t, 5*time.Second, "NOT_SERVING takes it out", func() bool { return !healthy() })
			be.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
			eventually(t, 5*time.Second, "SERVING brings it back", healthy)
			mu.Lock()
			defer mu.Unlock()
			want := "false: active health check failed: gRPC health check of " + strings.Replace(be.url(scheme), "h2c://", "http://", 1) + " for shop.Cart answered NOT_SERVING"
			if !slices.Contains(reasons, want) {
				t.Errorf("events %q lack %q", reasons, want)
			}
		})
	}
}

// A mirror route that names the gRPC method (its path, and POST, which a
// route must name to mirror a non-idempotent request) copies unary calls
// to the canary; the canary's answers are recorded as mirrors by their
// gRPC status.
func TestGRPCUnaryCallsAreMirroredByMethod(t *testing.T) {
	stable := newGRPCBackend(t, stableVersion, false)
	canary := newGRPCBackend(t, canaryVersion, false)
	canary.failWith = codes.Internal
	r := grpcRollout(t, []string{stable.url("h2c")}, []string{canary.url("h2c")}, false, nil)
	cfg := tableConfig(r, 0)
	cfg.MirrorRoutes = []spec.MirrorRoute{{Name: "unary", Match: []spec.RequestMatch{{
		Method: &spec.StringMatch{Exact: ptr("POST")},
		Path:   &spec.StringMatch{Exact: ptr("/grpc.testing.TestService/UnaryCall")},
	}}}}
	g := startProxy(t, r, cfg)
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	ctx := context.Background()
	for range 5 {
		if _, err := cl.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("copy me")}}); err != nil {
			t.Fatalf("the primary call failed: %v", err)
		}
	}
	// Another method is not mirrored.
	ss, err := cl.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ss.Recv(); err != nil {
			break
		}
	}
	eventually(t, 5*time.Second, "five mirrors reach the canary", func() bool { return canary.mirrored.Load() == 5 })
	eventually(t, 2*time.Second, "the mirrors are recorded", func() bool {
		return g.metric(t, "coalmine_requests_total", map[string]string{"role": "canary", "source": "mirror", "code": "500"}) == 5
	})
	if canary.unary.Load() != 5 || stable.unary.Load() != 5 || stable.mirrored.Load() != 0 {
		t.Errorf("canary %d calls, stable %d (%d mirrored)", canary.unary.Load(), stable.unary.Load(), stable.mirrored.Load())
	}
	if s := g.versionStats(spec.RoleCanary, canaryVersion).Summary(0); s.Requests != 0 {
		t.Errorf("mirrors entered the canary's live summary: %d", s.Requests)
	}
}

// BenchmarkGRPCUnaryThroughTheProxy measures unary calls through an h2c
// listener to an h2c upstream, 64 concurrent callers on one connection.
func BenchmarkGRPCUnaryThroughTheProxy(b *testing.B) {
	be := newGRPCBackend(b, stableVersion, false)
	r := rolloutSpec(b, []string{be.url("h2c")}, nil, func(s *spec.RolloutSpec) {
		s.HealthCheck = nil
		s.Protocols = []string{spec.ProtocolH1, spec.ProtocolH2C}
	})
	g := startProxy(b, r, tableConfig(r, 0))
	eventually(b, 5*time.Second, "the endpoint proves reachable", func() bool { return g.endpoints(b)[0].Healthy })
	cc, err := grpc.NewClient("passthrough:///"+g.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer cc.Close()
	cl := testpb.NewTestServiceClient(cc)
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, 64)}}
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.UnaryCall(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// trafficRouting.grpcErrorCodes replaces the default set: with only
// INTERNAL counted, a canary's UNAVAILABLE answers are not its errors.
func TestGRPCErrorCodesAreConfigurable(t *testing.T) {
	be := newGRPCBackend(t, stableVersion, false)
	be.failWith = codes.Unavailable
	r := grpcRollout(t, []string{be.url("h2c")}, nil, false, func(s *spec.RolloutSpec) {
		s.TrafficRouting.GRPCErrorCodes = []string{"INTERNAL"}
	})
	g := startProxy(t, r, tableConfig(r, 0))
	g.waitUp(t)
	cl := grpcClient(t, g.addr, false)
	for range 3 {
		if _, err := cl.UnaryCall(context.Background(), &testpb.SimpleRequest{}); status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v", err)
		}
	}
	v := g.versionStats(spec.RoleStable, stableVersion)
	eventually(t, 2*time.Second, "three calls recorded", func() bool { return grpcCalls(v)["UNAVAILABLE/unary"] == 3 })
	if s := v.Summary(0); s.Errors != 0 {
		t.Errorf("%d errors, want 0: UNAVAILABLE is not in grpcErrorCodes", s.Errors)
	}
}
