package telemetry

import (
	"strconv"
	"time"
)

// GRPCCode is a gRPC status code (0 OK … 16 UNAUTHENTICATED).
type GRPCCode uint32

// The gRPC status codes coalmine names itself.
const (
	GRPCOK                GRPCCode = 0
	GRPCCanceled          GRPCCode = 1
	GRPCUnknown           GRPCCode = 2
	GRPCDeadlineExceeded  GRPCCode = 4
	GRPCPermissionDenied  GRPCCode = 7
	GRPCResourceExhausted GRPCCode = 8
	GRPCUnimplemented     GRPCCode = 12
	GRPCInternal          GRPCCode = 13
	GRPCUnavailable       GRPCCode = 14
	GRPCDataLoss          GRPCCode = 15
	GRPCUnauthenticated   GRPCCode = 16
)

// numGRPCCodes is the 17 defined codes plus one slot for codes beyond
// them (a broken server), exposed as "unknown".
const numGRPCCodes = 18

var grpcCodeNames = [numGRPCCodes - 1]string{
	"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
	"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
	"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
	"UNAUTHENTICATED",
}

// String is the code's canonical name, as in grpc-go and the gRPC docs.
func (c GRPCCode) String() string {
	if int(c) < len(grpcCodeNames) {
		return grpcCodeNames[c]
	}
	return "CODE(" + strconv.FormatUint(uint64(c), 10) + ")"
}

func (c GRPCCode) slot() int {
	if int(c) < numGRPCCodes-1 {
		return int(c)
	}
	return numGRPCCodes - 1
}

// IsError reports whether a call ending with c is the server's failure:
// UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE and DATA_LOSS, the
// codes Istio and Linkerd also treat as server errors. The others are the
// caller's doing (INVALID_ARGUMENT, NOT_FOUND, CANCELLED…) or a normal end.
func (c GRPCCode) IsError() bool {
	switch c {
	case GRPCUnknown, GRPCDeadlineExceeded, GRPCInternal, GRPCUnavailable, GRPCDataLoss:
		return true
	}
	return false
}

// HTTPEquivalent is the status code a gRPC outcome is counted under in
// the version's status codes, which is all the judges and
// result.errorRate read: a gRPC error as a 5xx (so it is an error there
// too), anything else as the 200 the call was answered with (or 499 for
// a call the client cancelled, a 4xx like HTTP's client closes).
func (c GRPCCode) HTTPEquivalent() int {
	switch c {
	case GRPCDeadlineExceeded:
		return 504
	case GRPCUnavailable:
		return 503
	case GRPCCanceled:
		return 499
	}
	if c.IsError() {
		return 500
	}
	return 200
}

// ObserveGRPC records a finished gRPC call: its status code by name (for
// coalmine_grpc_calls_total) and, in the version's status codes, as the
// HTTP equivalent, so an errored call is an error in Summary and every
// judge. A unary call's latency (to its end) enters the histogram; a
// streaming call's does not (its duration is the stream's life, not a
// response time) and it is counted apart. Lock-free, no allocation.
func (v *VersionStats) ObserveGRPC(code GRPCCode, latency time.Duration, streaming bool) {
	v.codes[codeSlot(code.HTTPEquivalent())].Add(1)
	kind := 0
	if streaming {
		kind = 1
	} else {
		v.hist[durationIndex(latency)].Add(1)
		v.sumMicros.Add(micros(latency))
	}
	v.grpcCalls[kind][code.slot()].Add(1)
}

// GRPCCallCount is the number of calls with one status code and kind.
type GRPCCallCount struct {
	Code      string
	Streaming bool
	Count     uint64
}

// GRPCCalls returns the non-zero cumulative call counts of the version.
func (v *VersionStats) GRPCCalls() []GRPCCallCount {
	var out []GRPCCallCount
	for kind := range v.grpcCalls {
		for slot := range v.grpcCalls[kind] {
			n := v.grpcCalls[kind][slot].Load()
			if n == 0 {
				continue
			}
			name := unknownLabel
			if slot < numGRPCCodes-1 {
				name = GRPCCode(slot).String()
			}
			out = append(out, GRPCCallCount{Code: name, Streaming: kind == 1, Count: n})
		}
	}
	return out
}
