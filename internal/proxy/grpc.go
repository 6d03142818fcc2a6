package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// The pure parts of speaking gRPC as a proxy: recognising a call, its
// deadline, its status, and counting its messages.

// isGRPC reports a gRPC call by its content type (application/grpc,
// application/grpc+proto, application/grpc-web is not gRPC over HTTP/2).
func isGRPC(contentType string) bool {
	const ct = "application/grpc"
	if !strings.HasPrefix(contentType, ct) {
		return false
	}
	rest := contentType[len(ct):]
	return rest == "" || rest[0] == '+' || rest[0] == ';'
}

// parseGRPCTimeout reads a grpc-timeout header: at most 8 digits and a
// unit (H, M, S, m, u, n). ok is false for anything else, which is then
// ignored, as grpc-go does with a malformed value it cannot honour.
func parseGRPCTimeout(v string) (d time.Duration, ok bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	// 8 digits of hours overflow a Duration; such a deadline is no deadline.
	if n > int64((1<<63-1)/unit) {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// grpcStatusOf is the status a call ended with: grpc-status from the
// trailers, else from the headers (a trailers-only answer), else the
// mapping of the HTTP status the gRPC spec gives clients
// (doc/http-grpc-status-mapping.md); a 200 without any status means the
// server broke off (INTERNAL, as grpc-go reports it).
func grpcStatusOf(resp *http.Response) telemetry.GRPCCode {
	for _, h := range []http.Header{resp.Trailer, resp.Header} {
		if v := h.Get("Grpc-Status"); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n > 16 {
				// Codes end at 16 (UNAUTHENTICATED); grpc-go reads any
				// other as UNKNOWN, an error, and so do we.
				return telemetry.GRPCUnknown
			}
			return telemetry.GRPCCode(n)
		}
	}
	return grpcCodeForHTTP(resp.StatusCode)
}

// grpcCodeForHTTP maps an HTTP status without grpc-status to a gRPC code.
func grpcCodeForHTTP(status int) telemetry.GRPCCode {
	switch status {
	case http.StatusOK:
		return telemetry.GRPCInternal
	case http.StatusBadRequest:
		return telemetry.GRPCInternal
	case http.StatusUnauthorized:
		return telemetry.GRPCUnauthenticated
	case http.StatusForbidden:
		return telemetry.GRPCPermissionDenied
	case http.StatusNotFound:
		return telemetry.GRPCUnimplemented
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return telemetry.GRPCUnavailable
	}
	return telemetry.GRPCUnknown
}

// grpcMessage percent-encodes a grpc-message value (the gRPC spec: bytes
// outside printable ASCII, and '%', are escaped).
func grpcMessage(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
	}
	return b.String()
}

// grpcFrames counts the messages of one direction of a call from the
// bytes that pass: each message is a 5-byte prefix (compressed flag and
// a big-endian length) and its payload. It only counts; the bytes pass
// unchanged.
type grpcFrames struct {
	messages int
	// header holds the prefix bytes seen so far; skip is the payload
	// bytes of the current message still to pass.
	header  [5]byte
	headerN int
	skip    uint64
}

func (f *grpcFrames) feed(p []byte) {
	for len(p) > 0 {
		if f.skip > 0 {
			n := min(uint64(len(p)), f.skip)
			f.skip -= n
			p = p[n:]
			continue
		}
		n := copy(f.header[f.headerN:], p)
		f.headerN += n
		p = p[n:]
		if f.headerN == len(f.header) {
			f.messages++
			f.headerN = 0
			f.skip = uint64(f.header[1])<<24 | uint64(f.header[2])<<16 | uint64(f.header[3])<<8 | uint64(f.header[4])
		}
	}
}
