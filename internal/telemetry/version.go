package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Status codes are counted in a dense array: slot 0 holds codes outside
// 100..599 (a caller bug, exposed as code "0"), slot c−99 holds code c, and
// the last slot counts failed attempts (see FailedAttempt). Keeping the
// attempts among the codes makes them windowed exactly like the answers.
const (
	numCodeSlots      = 502
	minCode           = 100
	maxCode           = 599
	slotFailedAttempt = numCodeSlots - 1
)

func codeSlot(code int) int {
	if code < minCode || code > maxCode {
		return 0
	}
	return code - (minCode - 1)
}

func slotCode(slot int) int {
	if slot == 0 {
		return 0
	}
	return slot + minCode - 1
}

// VersionStats holds the telemetry of one version in one role of a rollout.
//
// The hot path (Observe, ObserveMirror, ProxyError) is a handful of atomic
// adds on cumulative counters: no locks, no allocation. Windows are derived
// from those counters: Tick stores sparse snapshots of them and a window is
// the current counters minus the snapshot at or before its start.
//
// Memory per version, fixed at creation (dense atomic counters):
//
//	live status codes    501 × 8 B  =  4 008 B
//	mirror status codes  501 × 8 B  =  4 008 B
//	latency buckets     1103 × 8 B  =  8 824 B
//	sum, proxy errors      7 × 8 B  =     56 B   → ≈ 17 KiB
//
// plus the window snapshots, which grow with traffic and are bounded: one
// entry per tick whose counters changed, at most 2·Retention/Resolution + 2
// entries (1 202 at the defaults; 601 with a regular ticker), each 24 B in
// the ring plus a packed snapshot of ≈ 64 B and, per non-zero status code
// or latency bucket, a uvarint index gap and count (2–6 B in practice).
// Measured with 231 non-zero buckets and 3 codes over 600 one-second ticks,
// the whole version takes 0.34 MB at 10 req/s, 0.55 MB at 1 000 req/s and
// 0.70 MB at 100 000 req/s. A version without traffic keeps a single entry.
// The theoretical worst case (every bucket and code non-zero with 10-byte
// counts, at every tick) is ≈ 21 MB. Lengthen WindowResolution to trade
// window granularity for memory.
type VersionStats struct {
	rollout *RolloutStats
	role    spec.Role
	version string

	// Cumulative counters, written lock-free on the hot path.
	codes       [numCodeSlots]atomic.Uint64
	hist        [numBuckets]atomic.Uint64
	sumMicros   atomic.Uint64
	mirrorCodes [numCodeSlots]atomic.Uint64
	proxyErrors [numErrorKinds]atomic.Uint64
	// grpcCalls counts gRPC calls by kind (0 unary, 1 streaming) and
	// status code; cumulative only, for /metrics (the windows read codes).
	grpcCalls [2][numGRPCCodes]atomic.Uint64

	mu       sync.Mutex // guards the window state below; never taken on the hot path
	base     *packed    // the counters when the revision started (zero for versions created later)
	baseTime int64      // revision start, Unix ns
	entries  ring[entry]
	// baseErrors are the proxy errors when the revision started, and
	// imported what Import added since: ExportOwn subtracts both.
	baseErrors [numErrorKinds]uint64
	imported   *Counters // nil until the first import of the revision
}

func newVersionStats(rs *RolloutStats, role spec.Role, version string, revStart, now time.Time) *VersionStats {
	v := &VersionStats{rollout: rs, role: role, version: version}
	v.base, v.baseTime = zeroPacked, revStart.UnixNano()
	// No traffic before creation: the zero state holds from the revision
	// start until now.
	v.entries.push(entry{from: v.baseTime, until: max(v.baseTime, now.UnixNano()), p: zeroPacked})
	return v
}

// Role returns the version's role.
func (v *VersionStats) Role() spec.Role { return v.role }

// Version returns the version's name.
func (v *VersionStats) Version() string { return v.version }

// Rollout returns the name of the version's rollout.
func (v *VersionStats) Rollout() string { return v.rollout.name }

// Observe records a live request answered with code after latency,
// including the 502/503/504 answers coalmine generates itself (those also
// go through ProxyError). Lock-free, no allocation.
func (v *VersionStats) Observe(code int, latency time.Duration) {
	v.codes[codeSlot(code)].Add(1)
	v.hist[durationIndex(latency)].Add(1)
	v.sumMicros.Add(micros(latency))
}

// ObserveMirror records the answer to a mirrored request (source=mirror in
// coalmine_requests_total). Mirrored requests never enter summaries or the
// latency histogram, and their latency is not kept: nothing reads it yet.
// Lock-free, no allocation.
func (v *VersionStats) ObserveMirror(code int, latency time.Duration) {
	v.mirrorCodes[codeSlot(code)].Add(1)
}

// ProxyError counts a request the proxy failed itself, by kind. Unknown kinds
// are counted under kind "unknown". Lock-free, no allocation.
func (v *VersionStats) ProxyError(kind ErrorKind) {
	v.proxyErrors[kind.index()].Add(1)
}

// FailedAttempt counts an attempt to reach this version that failed before
// any answer (a refused connection, kind connect) and was then retried on
// another endpoint or version, which answered the client. The answer is
// observed where it came from; this version keeps the failure, in
// coalmine_proxy_errors_total and in Summary.FailedAttempts, so a canary
// that refuses connections is seen failing even though users were saved by
// the retry. Lock-free, no allocation.
func (v *VersionStats) FailedAttempt(kind ErrorKind) {
	v.codes[slotFailedAttempt].Add(1)
	v.proxyErrors[kind.index()].Add(1)
}

// CodeCount is the number of responses with one status code.
type CodeCount struct {
	Code  int   `json:"code"`
	Count int64 `json:"count"`
}

// Summary describes one version's live traffic over a window.
type Summary struct {
	// Requests is the number of live requests answered; 0 means no data,
	// and then every other number is 0 too.
	Requests int64 `json:"requests"`
	// Errors is the number of 5xx answers, upstream or coalmine-generated.
	Errors int64 `json:"errors"`
	// FailedAttempts counts attempts that never got an answer from this
	// version (refused connections) and were answered by a retry
	// elsewhere; they are in neither Requests nor Errors.
	FailedAttempts int64 `json:"failedAttempts,omitempty"`
	// ErrorRate is Errors/Requests; SuccessRate is 1 − ErrorRate.
	ErrorRate   float64 `json:"errorRate"`
	SuccessRate float64 `json:"successRate"`
	// RPS is Requests divided by Span.
	RPS float64 `json:"rps"`
	// Latency quantiles and mean in milliseconds; quantiles are within 1 %.
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
	// Span is the time the numbers cover: the requested window rounded up
	// to the snapshot before its start (at most one WindowResolution
	// longer), or shorter when the revision started less than the window
	// ago. It can be longer than the window if no snapshot reaches back that
	// far (Run not started, or window beyond WindowRetention).
	Span time.Duration `json:"span"`
	// Codes lists the non-zero status codes in increasing order.
	Codes []CodeCount `json:"codes,omitempty"`
	// Histogram is the latency distribution over the window, for
	// bucket-wise tests (Mann-Whitney) and merging across versions.
	Histogram Snapshot `json:"-"`
}

// Summary returns the live traffic over the last window; a window ≤ 0 means
// since the revision started. Sliding windows need Run (or Tick) to keep
// snapshots; see Summary.Span for what a window really covers. Safe to call
// concurrently with everything.
func (v *VersionStats) Summary(window time.Duration) Summary {
	now := v.rollout.reg.now().UnixNano()
	v.mu.Lock()
	base, start := v.lookup(window, now)
	v.mu.Unlock()
	// Read the counters after the base: every counter is monotonic, so the
	// difference is exact and never negative.
	cur := v.read()
	return summarize(cur.sub(base.unpack()), time.Duration(now-start))
}

func summarize(d *sample, span time.Duration) Summary {
	s := Summary{Span: span, Histogram: d.hist}
	codes := d.codes
	if n := len(codes); n > 0 && codes[n-1] == slotFailedAttempt {
		s.FailedAttempts = int64(d.codeN[n-1])
		codes = codes[:n-1]
	}
	s.Requests = int64(d.requests) - s.FailedAttempts
	if s.Requests == 0 {
		return s
	}
	s.Codes = make([]CodeCount, len(codes))
	for i, slot := range codes {
		c := slotCode(int(slot))
		s.Codes[i] = CodeCount{Code: c, Count: int64(d.codeN[i])}
		if c >= 500 {
			s.Errors += int64(d.codeN[i])
		}
	}
	s.ErrorRate = float64(s.Errors) / float64(s.Requests)
	s.SuccessRate = 1 - s.ErrorRate
	if span > 0 {
		s.RPS = float64(s.Requests) / span.Seconds()
	}
	s.P50 = d.hist.Quantile(0.50) * 1e3
	s.P90 = d.hist.Quantile(0.90) * 1e3
	s.P95 = d.hist.Quantile(0.95) * 1e3
	s.P99 = d.hist.Quantile(0.99) * 1e3
	s.Mean = d.hist.Mean() * 1e3
	return s
}

// read returns the current cumulative live counters as a sparse sample.
func (v *VersionStats) read() *sample {
	s := &sample{}
	for i := range v.codes {
		if n := v.codes[i].Load(); n != 0 {
			s.codes = append(s.codes, uint16(i))
			s.codeN = append(s.codeN, n)
			s.requests += n
		}
	}
	for i := range v.hist {
		if n := v.hist[i].Load(); n != 0 {
			s.hist.idx = append(s.hist.idx, uint16(i))
			s.hist.n = append(s.hist.n, n)
			s.hist.count += n
		}
	}
	s.hist.sumMicros = v.sumMicros.Load()
	return s
}
