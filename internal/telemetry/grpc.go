package telemetry

import (
	"strconv"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
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

// String is the code's canonical name, as in grpc-go and the gRPC docs.
func (c GRPCCode) String() string {
	if int(c) < len(spec.GRPCCodeNames) {
		return spec.GRPCCodeNames[c]
	}
	return "CODE(" + strconv.FormatUint(uint64(c), 10) + ")"
}

func (c GRPCCode) slot() int {
	if int(c) < numGRPCCodes-1 {
		return int(c)
	}
	return numGRPCCodes - 1
}

// GRPCErrors is a set of gRPC status codes that count as a version's
// errors (trafficRouting.grpcErrorCodes).
type GRPCErrors uint32

// NewGRPCErrors makes the set of the named codes; names that are not
// codes are ignored (validation refuses them first).
func NewGRPCErrors(names []string) GRPCErrors {
	var s GRPCErrors
	for _, n := range names {
		for code, known := range spec.GRPCCodeNames {
			if n == known {
				s |= 1 << code
			}
		}
	}
	return s
}

// DefaultGRPCErrors is UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE
// and DATA_LOSS, the codes Istio and Linkerd also treat as server errors.
// The others are the caller's doing (INVALID_ARGUMENT, NOT_FOUND,
// CANCELLED…) or a normal end.
var DefaultGRPCErrors = NewGRPCErrors(spec.DefaultGRPCErrorCodes())

// Has reports whether c is in the set.
func (s GRPCErrors) Has(c GRPCCode) bool { return c < 32 && s&(1<<c) != 0 }

// IsError reports whether c is an error by default (DefaultGRPCErrors).
func (c GRPCCode) IsError() bool { return DefaultGRPCErrors.Has(c) }

// HTTPEquivalent is the status code a gRPC outcome is counted under in
// the version's status codes, which is all the judges and
// result.errorRate read: a gRPC error (a code in errs) as a 5xx (so it is
// an error there too: 504 for DEADLINE_EXCEEDED, 503 for UNAVAILABLE, else
// 500), anything else as the 200 the call was answered with (or 499 for a
// call the client cancelled, a 4xx like HTTP's client closes).
func (c GRPCCode) HTTPEquivalent(errs GRPCErrors) int {
	if errs.Has(c) {
		switch c {
		case GRPCDeadlineExceeded:
			return 504
		case GRPCUnavailable:
			return 503
		}
		return 500
	}
	if c == GRPCCanceled {
		return 499
	}
	return 200
}

// ObserveGRPC records a finished gRPC call: its status code by name (for
// coalmine_grpc_calls_total) and, in the version's status codes, as the
// HTTP equivalent, so a call ending with a code in errs is an error in
// Summary and every judge. A unary call's latency (to its end) enters the
// histogram; a streaming call's does not (its duration is the stream's
// life, not a response time) and it is counted apart. Lock-free, no
// allocation.
func (v *VersionStats) ObserveGRPC(code GRPCCode, errs GRPCErrors, latency time.Duration, streaming bool) {
	v.codes[codeSlot(code.HTTPEquivalent(errs))].Add(1)
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
