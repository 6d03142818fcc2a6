package telemetry

import (
	"cmp"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus"
)

// durationBounds are the le bounds (seconds) of the classic
// coalmine_request_duration_seconds histogram.
var durationBounds = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// durationCuts[j] is the last dense grid index counted under
// durationBounds[j]: a grid bucket counts as ≤ le when its representative
// value is ≤ le. Every value in a grid bucket is within 1 % of its
// representative, so the exposed bounds are accurate within 1 %: an
// observation counted under le is at most 1 % above it, one left out is at
// most 1 % below it.
var durationCuts = func() (cuts [len(durationBounds)]int) {
	for j, le := range durationBounds {
		i := 0
		for i+1 < numBuckets && bucketValues[i+1] <= le {
			i++
		}
		cuts[j] = i
	}
	return cuts
}()

// codeLabels caches the code label of every code slot.
var codeLabels = func() (l [numCodeSlots]string) {
	for i := range l {
		l[i] = strconv.Itoa(slotCode(i))
	}
	return l
}()

// collector exposes a Registry's cumulative counters.
type collector struct {
	r        *Registry
	requests *prometheus.Desc
	duration *prometheus.Desc
	errors   *prometheus.Desc
	dropped  *prometheus.Desc
	rejected *prometheus.Desc
	conns    *prometheus.Desc
	acceptEr *prometheus.Desc
	grpc     *prometheus.Desc
}

var _ prometheus.Collector = (*collector)(nil)

// Collector returns a Prometheus collector for the registry (SPEC §6.3):
//
//   - coalmine_requests_total{rollout,role,version,code,source}: answered
//     requests, source live or mirror, only codes seen at least once (codes
//     outside 100..599 appear as "0");
//   - coalmine_request_duration_seconds{rollout,role,version}: live latency
//     as a classic histogram with le bounds .0005 .001 .0025 .005 .01 .025
//     .05 .1 .25 .5 1 2.5 5 10, derived from the 1 % grid and so accurate
//     within 1 %; _sum is exact to the microsecond;
//   - coalmine_proxy_errors_total{rollout,role,kind}: requests coalmine
//     failed itself, every known kind of every role present (removed
//     versions included, so the counter never goes down);
//   - coalmine_mirror_dropped_total{rollout,reason}: every known reason;
//   - coalmine_client_rejected_total{rollout,reason}: requests and
//     connections coalmine answered itself because of the client (never a
//     version's error), every known reason;
//   - coalmine_client_connections{rollout}: open client connections;
//   - coalmine_listener_accept_errors_total{rollout}: failed accepts;
//   - coalmine_grpc_calls_total{rollout,role,version,code,kind}: gRPC calls
//     by status name (OK, UNAVAILABLE…), kind unary or streaming, only
//     those seen at least once.
//
// Unknown kinds and reasons appear as "unknown" once counted. All values are
// cumulative since the version was created and never reset, including by
// StartRevision. Reads are lock-free and may interleave with observations.
func (r *Registry) Collector() prometheus.Collector {
	return &collector{
		r: r,
		requests: prometheus.NewDesc("coalmine_requests_total",
			"Requests answered, by status code; source is live or mirror (mirrored copies).",
			[]string{"rollout", "role", "version", "code", "source"}, nil),
		duration: prometheus.NewDesc("coalmine_request_duration_seconds",
			"Latency of live requests, from request start to the upstream's response headers (bounds accurate within 1%).",
			[]string{"rollout", "role", "version"}, nil),
		errors: prometheus.NewDesc("coalmine_proxy_errors_total",
			"Requests coalmine failed itself (connect, timeout, overflow, no-healthy-endpoint, upstream-protocol).",
			[]string{"rollout", "role", "kind"}, nil),
		dropped: prometheus.NewDesc("coalmine_mirror_dropped_total",
			"Mirrored requests not sent, by reason.",
			[]string{"rollout", "reason"}, nil),
		rejected: prometheus.NewDesc("coalmine_client_rejected_total",
			"Requests and connections coalmine answered itself because of the client (400, 408, 414, 431, 499) or a full listener (503); never counted against a version.",
			[]string{"rollout", "reason"}, nil),
		conns: prometheus.NewDesc("coalmine_client_connections",
			"Open client connections of the rollout's listener.",
			[]string{"rollout"}, nil),
		acceptEr: prometheus.NewDesc("coalmine_listener_accept_errors_total",
			"Failed accepts on the rollout's listener (for example descriptors exhausted); the listener backs off and retries.",
			[]string{"rollout"}, nil),
		grpc: prometheus.NewDesc("coalmine_grpc_calls_total",
			"gRPC calls by status code; kind is unary or streaming (more than one message either way).",
			[]string{"rollout", "role", "version", "code", "kind"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.duration
	ch <- c.errors
	ch <- c.dropped
	ch <- c.rejected
	ch <- c.conns
	ch <- c.acceptEr
	ch <- c.grpc
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	rollouts := c.r.Rollouts()
	slices.SortFunc(rollouts, func(a, b *RolloutStats) int { return cmp.Compare(a.name, b.name) })
	for _, rs := range rollouts {
		for _, v := range rs.Versions() {
			c.collectVersion(ch, rs.name, v)
		}
		totals := rs.proxyErrorTotals()
		roles := make([]spec.Role, 0, len(totals))
		for role := range totals {
			roles = append(roles, role)
		}
		slices.Sort(roles)
		for _, role := range roles {
			counts := totals[role]
			for _, k := range ErrorKinds() {
				ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(counts[k.index()]), rs.name, string(role), string(k))
			}
			if n := counts[numErrorKinds-1]; n != 0 {
				ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(n), rs.name, string(role), unknownLabel)
			}
		}
		for _, reason := range DropReasons() {
			ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(rs.mirrorDropped[reason.index()].Load()), rs.name, string(reason))
		}
		if n := rs.mirrorDropped[numDropReasons-1].Load(); n != 0 {
			ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(n), rs.name, unknownLabel)
		}
		for _, reason := range RejectReasons() {
			ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(rs.rejected[reason.index()].Load()), rs.name, string(reason))
		}
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(rs.connections.Load()), rs.name)
		ch <- prometheus.MustNewConstMetric(c.acceptEr, prometheus.CounterValue, float64(rs.acceptErrors.Load()), rs.name)
	}
}

func (c *collector) collectVersion(ch chan<- prometheus.Metric, rollout string, v *VersionStats) {
	role := string(v.role)
	for _, src := range []struct {
		label string
		codes *[numCodeSlots]atomic.Uint64
	}{{"live", &v.codes}, {"mirror", &v.mirrorCodes}} {
		for i := range src.codes {
			if i == slotFailedAttempt {
				continue // in coalmine_proxy_errors_total: nothing answered
			}
			if n := src.codes[i].Load(); n != 0 {
				ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, float64(n), rollout, role, v.version, codeLabels[i], src.label)
			}
		}
	}
	for _, g := range v.GRPCCalls() {
		kind := "unary"
		if g.Streaming {
			kind = "streaming"
		}
		ch <- prometheus.MustNewConstMetric(c.grpc, prometheus.CounterValue, float64(g.Count), rollout, role, v.version, g.Code, kind)
	}
	var count uint64
	buckets := make(map[float64]uint64, len(durationBounds))
	j := 0
	for i := range v.hist {
		for j < len(durationBounds) && i > durationCuts[j] {
			buckets[durationBounds[j]] = count
			j++
		}
		count += v.hist[i].Load()
	}
	for ; j < len(durationBounds); j++ {
		buckets[durationBounds[j]] = count
	}
	sum := float64(v.sumMicros.Load()) / 1e6
	ch <- prometheus.MustNewConstHistogram(c.duration, count, sum, buckets, rollout, role, v.version)
}
