package proxy

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

func TestParseGRPCTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1S": time.Second, "100m": 100 * time.Millisecond, "5u": 5 * time.Microsecond, "7n": 7,
		"2M": 2 * time.Minute, "1H": time.Hour, "99999999S": 99999999 * time.Second,
	} {
		if got, ok := parseGRPCTimeout(in); !ok || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "S", "1", "1s", "-1S", "123456789S", "1.5S", "99999999H"} {
		if d, ok := parseGRPCTimeout(bad); ok {
			t.Errorf("%q accepted as %v", bad, d)
		}
	}
}

func TestIsGRPC(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/grpc": true, "application/grpc+proto": true, "application/grpc;charset=x": true,
		"application/grpc-web": false, "application/json": false, "": false,
	} {
		if isGRPC(ct) != want {
			t.Errorf("%q: %v", ct, !want)
		}
	}
}

// Messages are counted however the bytes are cut.
func TestGRPCFramesCountsMessagesAcrossReads(t *testing.T) {
	var wire []byte
	for _, n := range []int{0, 3, 300, 1} {
		wire = append(wire, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		wire = append(wire, make([]byte, n)...)
	}
	for cut := 1; cut <= len(wire); cut++ {
		var f grpcFrames
		for p := wire; len(p) > 0; {
			n := min(cut, len(p))
			f.feed(p[:n])
			p = p[n:]
		}
		if f.messages != 4 {
			t.Fatalf("reads of %d bytes: %d messages, want 4", cut, f.messages)
		}
	}
}

func TestGRPCStatusOf(t *testing.T) {
	resp := func(status int, header, trailer http.Header) *http.Response {
		return &http.Response{StatusCode: status, Header: header, Trailer: trailer}
	}
	for _, tc := range []struct {
		name string
		resp *http.Response
		want telemetry.GRPCCode
	}{
		{"trailers", resp(200, http.Header{}, http.Header{"Grpc-Status": {"0"}}), telemetry.GRPCOK},
		{"trailers-only", resp(200, http.Header{"Grpc-Status": {"14"}}, nil), telemetry.GRPCUnavailable},
		{"no status at all", resp(200, http.Header{}, http.Header{}), telemetry.GRPCInternal},
		{"HTTP 503 without gRPC", resp(503, http.Header{}, nil), telemetry.GRPCUnavailable},
		{"HTTP 404 without gRPC", resp(404, http.Header{}, nil), telemetry.GRPCUnimplemented},
		{"garbage", resp(200, http.Header{}, http.Header{"Grpc-Status": {"x"}}), telemetry.GRPCUnknown},
	} {
		if got := grpcStatusOf(tc.resp); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestGRPCMessageIsPercentEncoded(t *testing.T) {
	if got := grpcMessage("50% off\nnow é"); got != "50%25 off%0Anow %C3%A9" {
		t.Errorf("got %q", got)
	}
}

func TestReadPrefaceTellsHTTP2FromHTTP1(t *testing.T) {
	for _, tc := range []struct {
		in string
		h2 bool
	}{
		{http2Preface + "rest", true},
		{"GET / HTTP/1.0\r\n\r\n", false},
		{"POST / HTTP/1.1\r\n", false},
	} {
		a, b := net2Pipe(t)
		go func() { _, _ = a.Write([]byte(tc.in)); _ = a.Close() }()
		pre, h2 := readPreface(b)
		if h2 != tc.h2 || len(pre) > len(tc.in) || string(pre) != tc.in[:len(pre)] {
			t.Errorf("%q: read %q, h2 %v", tc.in, pre, h2)
		}
	}
}

func net2Pipe(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestGRPCHealthMessages(t *testing.T) {
	if got := grpcHealthRequest("shop.Cart"); string(got) != "\x00\x00\x00\x00\x0b\x0a\x09shop.Cart" {
		t.Errorf("request %q", got)
	}
	if got := grpcHealthRequest(""); string(got) != "\x00\x00\x00\x00\x00" {
		t.Errorf("request for the server %q", got)
	}
	for in, want := range map[string]uint64{
		"\x00\x00\x00\x00\x02\x08\x01":          grpcServing,
		"\x00\x00\x00\x00\x00":                  0,
		"\x00\x00\x00\x00\x05\x12\x01x\x08\x02": 2, // an unknown field first
	} {
		if got, err := grpcHealthStatus([]byte(in)); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "\x01\x00\x00\x00\x00", "\x00\x00\x00\x00\x02\x08\xff", "\x00\x00\x00\x00\x03\x12\x05x"} {
		if _, err := grpcHealthStatus([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
