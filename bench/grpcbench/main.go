// Command grpcbench is the gRPC side of coalmine's benchmarks: a gRPC
// upstream (the interop TestService over h2c, answering UnaryCall at once)
// and a closed-loop load generator that reports unary calls/s and latency
// quantiles.
//
//	go run ./bench/grpcbench backend -addr 127.0.0.1:9101 -version v1
//	go run ./bench/grpcbench load -addr 127.0.0.1:8080 -c 64 -conns 4 -d 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grpcbench backend|load [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "backend":
		backend(os.Args[2:])
	case "load":
		load(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "grpcbench: unknown command", os.Args[1], "(backend or load)")
		os.Exit(2)
	}
}

type service struct {
	testpb.UnimplementedTestServiceServer
	version string
}

func (s *service) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{ServerId: s.version, Payload: req.GetPayload()}, nil
}

func backend(args []string) {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:9101", "address to listen on (h2c)")
	version := fs.String("version", "v1", "version to answer with (server_id)")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "grpcbench backend:", err)
		os.Exit(1)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, &service{version: *version})
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "grpcbench backend:", err)
		os.Exit(1)
	}
}

// load runs c callers over conns HTTP/2 connections, each making unary
// calls back to back for d, with a user key per caller, and prints one
// line: calls/s, p50 and p99 in ms, errors.
func load(args []string) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address of the proxy (h2c)")
	callers := fs.Int("c", 64, "concurrent callers")
	conns := fs.Int("conns", 4, "HTTP/2 connections the callers share")
	d := fs.Duration("d", 10*time.Second, "duration")
	payload := fs.Int("payload", 64, "request payload bytes")
	_ = fs.Parse(args)
	clients := make([]testpb.TestServiceClient, *conns)
	for i := range clients {
		cc, err := grpc.NewClient("passthrough:///"+*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			fmt.Fprintln(os.Stderr, "grpcbench load:", err)
			os.Exit(1)
		}
		defer cc.Close()
		clients[i] = testpb.NewTestServiceClient(cc)
	}
	req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: make([]byte, *payload)}}
	ctx, cancel := context.WithTimeout(context.Background(), *d)
	defer cancel()
	deadline, _ := ctx.Deadline()
	var errs atomic.Int64
	lat := make([][]time.Duration, *callers)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range *callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := clients[i%len(clients)]
			mctx := metadata.NewOutgoingContext(ctx, metadata.Pairs("x-user", "u"+strconv.Itoa(i)))
			for ctx.Err() == nil {
				t0 := time.Now()
				_, err := cl.UnaryCall(mctx, req)
				// A call cut by the end of the run is not an error (grpc-go's
				// own timer may fire a moment before the context's).
				if ctx.Err() != nil || !time.Now().Before(deadline) {
					return
				}
				if err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "grpcbench load: first error:", err)
					}
					continue
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))]) / 1e6
	}
	fmt.Printf("%.0f %.3f %.3f %d\n", float64(len(all))/elapsed.Seconds(), q(0.50), q(0.99), errs.Load())
}
