package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestGRPCErrorsCountInTheVersionsErrorRate(t *testing.T) {
	reg := NewRegistry(Options{Now: newFakeClock().Now})
	v := reg.Rollout("shop").Version(spec.RoleCanary, "v2")
	for range 8 {
		v.ObserveGRPC(GRPCOK, DefaultGRPCErrors, 2*time.Millisecond, false)
	}
	v.ObserveGRPC(GRPCUnavailable, DefaultGRPCErrors, time.Millisecond, false)
	v.ObserveGRPC(GRPCNotFoundForTest, DefaultGRPCErrors, time.Millisecond, false) // the caller's mistake, not an error
	v.ObserveGRPC(GRPCDataLoss, DefaultGRPCErrors, 0, true)                        // a stream: an error, but no latency
	v.ObserveGRPC(GRPCCanceled, DefaultGRPCErrors, 0, true)

	s := v.Summary(0)
	if s.Requests != 12 || s.Errors != 2 {
		t.Fatalf("requests %d errors %d, want 12 and 2 (UNAVAILABLE and DATA_LOSS)", s.Requests, s.Errors)
	}
	if s.Histogram.Count() != 10 {
		t.Fatalf("histogram holds %d calls, want the 10 unary ones", s.Histogram.Count())
	}
	want := `coalmine_grpc_calls_total{code="DATA_LOSS",kind="streaming",role="canary",rollout="shop",version="v2"} 1`
	got, err := testutil.CollectAndFormat(reg.Collector(), expfmt.TypeTextPlain, "coalmine_grpc_calls_total")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{want,
		`coalmine_grpc_calls_total{code="OK",kind="unary",role="canary",rollout="shop",version="v2"} 8`,
		`coalmine_grpc_calls_total{code="NOT_FOUND",kind="unary",role="canary",rollout="shop",version="v2"} 1`,
		`coalmine_grpc_calls_total{code="CANCELLED",kind="streaming",role="canary",rollout="shop",version="v2"} 1`,
	} {
		if !strings.Contains(string(got), line) {
			t.Errorf("/metrics lacks %s in:\n%s", line, got)
		}
	}
}

// GRPCNotFoundForTest is NOT_FOUND, which the proxy never names itself.
const GRPCNotFoundForTest GRPCCode = 5

func TestGRPCCodeNamesAndErrors(t *testing.T) {
	for code, want := range map[GRPCCode]string{0: "OK", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED", 99: "CODE(99)"} {
		if code.String() != want {
			t.Errorf("%d is %q, want %q", code, code.String(), want)
		}
	}
	var errs []string
	for c := GRPCCode(0); c < 20; c++ {
		if c.IsError() {
			errs = append(errs, c.String())
		}
	}
	if got := strings.Join(errs, " "); got != "UNKNOWN DEADLINE_EXCEEDED INTERNAL UNAVAILABLE DATA_LOSS" {
		t.Errorf("error codes %s", got)
	}
}

// A configured set replaces the default: here NOT_FOUND is an error and
// UNAVAILABLE is not.
func TestGRPCErrorsAreConfigurable(t *testing.T) {
	errs := NewGRPCErrors([]string{"NOT_FOUND", "DATA_LOSS", "no-such-code"})
	if !errs.Has(GRPCNotFoundForTest) || !errs.Has(GRPCDataLoss) || errs.Has(GRPCUnavailable) || errs.Has(GRPCOK) {
		t.Fatalf("set %b", errs)
	}
	v := NewRegistry(Options{Now: newFakeClock().Now}).Rollout("shop").Version(spec.RoleCanary, "v2")
	v.ObserveGRPC(GRPCNotFoundForTest, errs, time.Millisecond, false)
	v.ObserveGRPC(GRPCUnavailable, errs, time.Millisecond, false)
	if s := v.Summary(0); s.Requests != 2 || s.Errors != 1 {
		t.Fatalf("requests %d errors %d, want 2 and 1", s.Requests, s.Errors)
	}
}
