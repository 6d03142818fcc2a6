package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	grpcstatus "google.golang.org/grpc/status"
)

// gRPC canaries through the binary, judged by gRPC status: every answer
// is HTTP 200, only grpc-status tells a failing canary apart.

type grpcService struct {
	testpb.UnimplementedTestServiceServer
	version   string
	errorRate float64
}

func (s *grpcService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	time.Sleep(time.Duration(float64(2*time.Millisecond) * (0.5 + rand.Float64())))
	if rand.Float64() < s.errorRate {
		return nil, grpcstatus.Error(codes.Unavailable, "failing on purpose")
	}
	return &testpb.SimpleResponse{ServerId: s.version}, nil
}

// startGRPCBackend serves the test service and the health service over
// h2c and returns its h2c:// endpoint.
func startGRPCBackend(t *testing.T, version string, errorRate float64) string {
	t.Helper()
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, &grpcService{version: version, errorRate: errorRate})
	healthpb.RegisterHealthServer(srv, health.NewServer()) // SERVING for the server as a whole
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return "h2c://" + ln.Addr().String()
}

// grpcLoad makes rps unary calls per second from 10,000 users (a user key
// in metadata) until ctx ends, and counts the answers by status.
func grpcLoad(t *testing.T, ctx context.Context, addr string, rps int) *grpcCounts {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	cl := testpb.NewTestServiceClient(cc)
	counts := &grpcCounts{}
	jobs := make(chan struct{}, 128)
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				md := metadata.Pairs("x-user-id", "u"+strconv.Itoa(rand.IntN(10000)))
				cctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, md), 5*time.Second)
				_, err := cl.UnaryCall(cctx, &testpb.SimpleRequest{})
				cancel()
				if ctx.Err() != nil {
					return
				}
				counts.add(grpcstatus.Code(err))
			}
		}()
	}
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(rps))
		defer tick.Stop()
		defer func() { close(jobs); wg.Wait() }()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				select {
				case jobs <- struct{}{}:
				default:
				}
			}
		}
	}()
	return counts
}

type grpcCounts struct {
	mu    sync.Mutex
	codes map[codes.Code]int
	total atomic.Int64
}

func (c *grpcCounts) add(code codes.Code) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.codes == nil {
		c.codes = map[codes.Code]int{}
	}
	c.codes[code]++
	c.total.Add(1)
}

func (c *grpcCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.codes)
}

const grpcAnalysisTemplate = `apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: shop}
spec:
  listen: %s
  protocols: [h1, h2c]
  stable: {version: v1, endpoints: [%s]}
  canary: {version: v2, endpoints: [%s]}
  healthCheck: {interval: 200ms, grpc: {}}
  outlierDetection: {consecutiveErrors: 1000}
  trafficRouting:
    assignment: {userHeader: x-user-id}
  strategy:
    canary:
      steps:
        - setWeight: 5
        - analysis: {templates: [{templateName: judge}]}
        - setWeight: 100
---
apiVersion: coalmine.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: judge}
spec:
  metrics:
%s`

func newGRPCAnalysisServer(t *testing.T, stableURL, canaryURL, metrics string) *server {
	t.Helper()
	stub := &backend{URL: "http://127.0.0.1:1"}
	s := newServer(t, stub, stub)
	s.writeConfig(fmt.Sprintf(grpcAnalysisTemplate, s.Listen, stableURL, canaryURL, metrics))
	return s
}

// A gRPC canary answering UNAVAILABLE to 10% of calls (stable 0.1%), at
// 5% weight and 400 calls/s, is rolled back by the error-rate judge as an
// HTTP canary answering 500 is.
func TestGRPCCanaryFailingUnavailableIsRolledBack(t *testing.T) {
	s := newGRPCAnalysisServer(t, startGRPCBackend(t, "v1", 0.001), startGRPCBackend(t, "v2", 0.10), errorRateJudge)
	s.start()
	s.waitFor("the analysis step", 10*time.Second, func(st status) bool { return st.StepIndex == 1 })
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	began := time.Now()
	counts := grpcLoad(t, ctx, s.Listen, 400)
	st := s.waitFor("rollback", 15*time.Second, func(st status) bool { return st.Phase == "Degraded" })
	t.Logf("rolled back %.1fs after traffic started (%d calls: %s): %s", time.Since(began).Seconds(), counts.total.Load(), counts, st.Message)
	if st.Weight != 0 {
		t.Errorf("after rollback the canary still has weight %v", st.Weight)
	}
}

// An identical gRPC canary completes.
func TestGRPCIdenticalCanaryCompletes(t *testing.T) {
	s := newGRPCAnalysisServer(t, startGRPCBackend(t, "v1", 0.005), startGRPCBackend(t, "v2", 0.005), aaJudge)
	s.start()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	counts := grpcLoad(t, ctx, s.Listen, 400)
	st := s.waitFor("completion", 40*time.Second, func(st status) bool { return st.Phase == "Healthy" || st.Phase == "Degraded" })
	if st.Phase != "Healthy" || st.StableVersion != "v2" {
		t.Fatalf("A/A gRPC canary: %+v (calls: %s)", st, counts)
	}
	t.Logf("A/A gRPC canary completed after %d calls: %s", counts.total.Load(), counts)
}
