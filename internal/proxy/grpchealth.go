package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// The gRPC health protocol (grpc.health.v1.Health/Check), spoken by hand:
// one unary call whose request and response are tiny protobuf messages,
// so the binary needs no gRPC library.

const grpcHealthPath = "/grpc.health.v1.Health/Check"

// grpcServing is HealthCheckResponse.ServingStatus SERVING.
const grpcServing = 1

// grpcHealthRequest is a length-prefixed HealthCheckRequest{service}.
func grpcHealthRequest(service string) []byte {
	var msg []byte
	if service != "" {
		// Field 1, wire type 2 (length-delimited): tag 0x0a, then a
		// varint length.
		msg = append(msg, 0x0a)
		msg = appendVarint(msg, uint64(len(service)))
		msg = append(msg, service...)
	}
	out := []byte{0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}
	return append(out, msg...)
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// grpcHealthStatus reads HealthCheckResponse.status (field 1, a varint)
// from a length-prefixed response; 0 (UNKNOWN) when it is absent.
func grpcHealthStatus(body []byte) (uint64, error) {
	if len(body) < 5 {
		return 0, fmt.Errorf("no response message")
	}
	if body[0] != 0 {
		return 0, fmt.Errorf("compressed response message")
	}
	msg := body[5:]
	for len(msg) > 0 {
		tag, n := readVarint(msg)
		if n == 0 {
			return 0, fmt.Errorf("malformed response message")
		}
		msg = msg[n:]
		switch tag & 7 {
		case 0:
			v, n := readVarint(msg)
			if n == 0 {
				return 0, fmt.Errorf("malformed response message")
			}
			if tag>>3 == 1 {
				return v, nil
			}
			msg = msg[n:]
		case 2:
			l, n := readVarint(msg)
			if n == 0 || uint64(len(msg)-n) < l {
				return 0, fmt.Errorf("malformed response message")
			}
			msg = msg[n+int(l):]
		default:
			return 0, fmt.Errorf("unexpected field in the response message")
		}
	}
	return 0, nil
}

func readVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// grpcHealthNames are HealthCheckResponse.ServingStatus's values.
var grpcHealthNames = []string{"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

// probeGRPC makes one Health/Check call to base (http:// for h2c, or
// https://) and reports whether it answered SERVING, and what happened.
func (hc *healthChecker) probeGRPC(ctx context.Context, client *http.Client, base string) (bool, string) {
	url := strings.TrimSuffix(base, "/") + grpcHealthPath
	what := "gRPC health check of " + base
	if s := hc.cfg.GRPC.Service; s != "" {
		what += " for " + s
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(grpcHealthRequest(hc.cfg.GRPC.Service)))
	if err != nil {
		return false, fmt.Sprintf("%s: %v", what, err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "coalmine-health-check")
	resp, err := client.Do(req)
	if err != nil {
		var te interface{ Timeout() bool }
		if errors.As(err, &te) && te.Timeout() {
			return false, fmt.Sprintf("%s did not answer within %s", what, hc.cfg.Timeout)
		}
		return false, fmt.Sprintf("%s: %s", what, opCause(err))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return false, fmt.Sprintf("%s: reading the answer: %v", what, err)
	}
	if code := grpcStatusOf(resp); code != 0 {
		msg := resp.Trailer.Get("Grpc-Message")
		if msg == "" {
			msg = resp.Header.Get("Grpc-Message")
		}
		return false, fmt.Sprintf("%s answered %s %s", what, code, msg)
	}
	st, err := grpcHealthStatus(body)
	if err != nil {
		return false, fmt.Sprintf("%s: %v", what, err)
	}
	name := fmt.Sprint(st)
	if st < uint64(len(grpcHealthNames)) {
		name = grpcHealthNames[st]
	}
	return st == grpcServing, fmt.Sprintf("%s answered %s", what, name)
}
