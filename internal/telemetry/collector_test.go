package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const (
	requestsHeader = `# HELP coalmine_requests_total Requests answered, by status code; source is live or mirror (mirrored copies).
# TYPE coalmine_requests_total counter
`
	durationHeader = `# HELP coalmine_request_duration_seconds Latency of live requests, from request start to the upstream's response headers (bounds accurate within 1%).
# TYPE coalmine_request_duration_seconds histogram
`
	errorsHeader = `# HELP coalmine_proxy_errors_total Requests coalmine failed itself (connect, timeout, overflow, no-healthy-endpoint, upstream-protocol).
# TYPE coalmine_proxy_errors_total counter
`
	droppedHeader = `# HELP coalmine_mirror_dropped_total Mirrored requests not sent, by reason.
# TYPE coalmine_mirror_dropped_total counter
`
)

// shopTraffic records a small, fixed scenario on rollout "shop".
func shopTraffic(reg *Registry) {
	rs := reg.Rollout("shop")
	stable := rs.Version(spec.RoleStable, "v1")
	canary := rs.Version(spec.RoleCanary, "v2")
	for range 3 {
		stable.Observe(200, 3*time.Millisecond)
	}
	stable.Observe(500, 40*time.Millisecond)
	stable.Observe(502, 2*time.Second) // coalmine-generated
	stable.ProxyError(ErrorTimeout)
	canary.ObserveMirror(200, time.Millisecond)
	canary.ObserveMirror(200, time.Millisecond)
	canary.ObserveMirror(404, time.Millisecond)
	canary.ProxyError(ErrorConnect)
	canary.ProxyError(ErrorConnect)
	canary.ProxyError(ErrorKind("typo"))
	rs.MirrorDropped(DropPoolFull)
	rs.MirrorDropped(DropPoolFull)
	rs.MirrorDropped(DropReason("typo"))
}

const shopExposition = requestsHeader + `coalmine_requests_total{code="200",role="canary",rollout="shop",source="mirror",version="v2"} 2
coalmine_requests_total{code="404",role="canary",rollout="shop",source="mirror",version="v2"} 1
coalmine_requests_total{code="200",role="stable",rollout="shop",source="live",version="v1"} 3
coalmine_requests_total{code="500",role="stable",rollout="shop",source="live",version="v1"} 1
coalmine_requests_total{code="502",role="stable",rollout="shop",source="live",version="v1"} 1
` + durationHeader + `coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.0005"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.001"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.0025"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.005"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.01"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.025"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.05"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.1"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.25"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="0.5"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="1"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="2.5"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="5"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="10"} 0
coalmine_request_duration_seconds_bucket{role="canary",rollout="shop",version="v2",le="+Inf"} 0
coalmine_request_duration_seconds_sum{role="canary",rollout="shop",version="v2"} 0
coalmine_request_duration_seconds_count{role="canary",rollout="shop",version="v2"} 0
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.0005"} 0
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.001"} 0
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.0025"} 0
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.005"} 3
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.01"} 3
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.025"} 3
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.05"} 4
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.1"} 4
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.25"} 4
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="0.5"} 4
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="1"} 4
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="2.5"} 5
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="5"} 5
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="10"} 5
coalmine_request_duration_seconds_bucket{role="stable",rollout="shop",version="v1",le="+Inf"} 5
coalmine_request_duration_seconds_sum{role="stable",rollout="shop",version="v1"} 2.049
coalmine_request_duration_seconds_count{role="stable",rollout="shop",version="v1"} 5
` + errorsHeader + `coalmine_proxy_errors_total{kind="connect",role="canary",rollout="shop"} 2
coalmine_proxy_errors_total{kind="timeout",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="overflow",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="no-healthy-endpoint",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="upstream-protocol",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="body-interrupted",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="local-resources",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="unknown",role="canary",rollout="shop"} 1
coalmine_proxy_errors_total{kind="connect",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="timeout",role="stable",rollout="shop"} 1
coalmine_proxy_errors_total{kind="overflow",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="no-healthy-endpoint",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="upstream-protocol",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="body-interrupted",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="local-resources",role="stable",rollout="shop"} 0
` + droppedHeader + `coalmine_mirror_dropped_total{reason="body-too-large",rollout="shop"} 0
coalmine_mirror_dropped_total{reason="pool-full",rollout="shop"} 2
coalmine_mirror_dropped_total{reason="method",rollout="shop"} 0
coalmine_mirror_dropped_total{reason="error",rollout="shop"} 0
coalmine_mirror_dropped_total{reason="unknown",rollout="shop"} 1
`

func TestCollectorExposition(t *testing.T) {
	tests := []struct {
		name   string
		before func(*Registry) // after the shop traffic
		want   string
	}{
		{"cumulative counters", func(*Registry) {}, shopExposition},
		{
			"StartRevision does not reset them",
			func(r *Registry) { r.Rollout("shop").StartRevision(2) },
			shopExposition,
		},
		{
			"removed versions keep their proxy errors in the role totals",
			func(r *Registry) { r.Rollout("shop").RemoveVersion(spec.RoleCanary, "v2") },
			requestsHeader + `coalmine_requests_total{code="200",role="stable",rollout="shop",source="live",version="v1"} 3
coalmine_requests_total{code="500",role="stable",rollout="shop",source="live",version="v1"} 1
coalmine_requests_total{code="502",role="stable",rollout="shop",source="live",version="v1"} 1
` + errorsHeader + `coalmine_proxy_errors_total{kind="connect",role="canary",rollout="shop"} 2
coalmine_proxy_errors_total{kind="timeout",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="overflow",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="no-healthy-endpoint",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="upstream-protocol",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="body-interrupted",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="local-resources",role="canary",rollout="shop"} 0
coalmine_proxy_errors_total{kind="unknown",role="canary",rollout="shop"} 1
coalmine_proxy_errors_total{kind="connect",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="timeout",role="stable",rollout="shop"} 1
coalmine_proxy_errors_total{kind="overflow",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="no-healthy-endpoint",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="upstream-protocol",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="body-interrupted",role="stable",rollout="shop"} 0
coalmine_proxy_errors_total{kind="local-resources",role="stable",rollout="shop"} 0
`,
		},
		{
			"removed rollouts leave the exposition",
			func(r *Registry) { r.Remove("shop") },
			"",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := NewRegistry(Options{})
			shopTraffic(reg)
			tc.before(reg)
			names := []string{"coalmine_requests_total", "coalmine_proxy_errors_total"}
			if strings.Contains(tc.want, "coalmine_request_duration_seconds") || tc.want == "" {
				names = append(names, "coalmine_request_duration_seconds", "coalmine_mirror_dropped_total")
			}
			if err := testutil.CollectAndCompare(reg.Collector(), strings.NewReader(tc.want), names...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCollectorIsValid(t *testing.T) {
	reg := NewRegistry(Options{})
	shopTraffic(reg)
	reg.Rollout("other").Version(spec.RoleStable, "v9").Observe(200, time.Millisecond)
	pedantic := prometheus.NewPedanticRegistry()
	if err := pedantic.Register(reg.Collector()); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := pedantic.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	if problems, err := testutil.CollectAndLint(reg.Collector()); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestDurationBoundsWithinOnePercent(t *testing.T) {
	for j, le := range durationBounds {
		cut := durationCuts[j]
		if !(bucketValues[cut] <= le && le < bucketValues[cut+1]) {
			t.Errorf("le %v: grid bucket %d (value %v) is the last counted, next value %v", le, indexKey(cut), bucketValues[cut], bucketValues[cut+1])
		}
		// Everything counted is ≤ le within 1 %, everything left out is > le within 1 %.
		_, hi := BucketBounds(indexKey(cut))
		lo, _ := BucketBounds(indexKey(cut + 1))
		if hi > le/(1-RelativeAccuracy)*(1+1e-12) || lo < le/(1+RelativeAccuracy)*(1-1e-12) {
			t.Errorf("le %v: effective bound between %v and %v, beyond 1%%", le, lo, hi)
		}
	}
}
