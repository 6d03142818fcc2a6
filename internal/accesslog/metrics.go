package accesslog

import "github.com/prometheus/client_golang/prometheus"

// result is what became of one line, the result label of
// coalmine_access_log_lines_total.
type result uint8

const (
	resultRecorded result = iota
	resultUnknownBackend
	resultIgnored
	resultMalformed
	numResults
)

var resultNames = [numResults]string{"recorded", "unknown_backend", "ignored", "malformed"}

// Counts is what a receiver did with the lines it read.
type Counts struct {
	// Recorded lines were observed into a version.
	Recorded uint64
	// UnknownBackend lines name a backend the Resolver does not know
	// (another application's, or NGINX answering without an upstream).
	UnknownBackend uint64
	// Ignored lines are well-formed but carry no HTTP request: HAProxy's
	// tcplog lines, connection errors and events, and any message at
	// severity notice or above that is not an access line.
	Ignored uint64
	// Malformed lines could not be read: garbage, a truncated line, or a
	// log format other than the documented ones.
	Malformed uint64
	// ReadErrors counts failed reads of the socket.
	ReadErrors uint64
}

// Counts returns the receiver's counters so far.
func (r *Receiver) Counts() Counts {
	return Counts{
		Recorded:       r.counts[resultRecorded].Load(),
		UnknownBackend: r.counts[resultUnknownBackend].Load(),
		Ignored:        r.counts[resultIgnored].Load(),
		Malformed:      r.counts[resultMalformed].Load(),
		ReadErrors:     r.readErrors.Load(),
	}
}

// Collector returns a Prometheus collector for the receiver's counters:
//
//   - coalmine_access_log_lines_total{listener,result}: lines read, result
//     recorded, unknown_backend, ignored or malformed;
//   - coalmine_access_log_read_errors_total{listener}: failed socket reads.
//
// listener is the receiver's address (Addr), so several receivers can be
// registered together.
func (r *Receiver) Collector() prometheus.Collector {
	labels := prometheus.Labels{"listener": r.addr}
	return &collector{
		r: r,
		lines: prometheus.NewDesc("coalmine_access_log_lines_total",
			"Access-log lines received from HAProxy or NGINX, by what became of them (recorded, unknown_backend, ignored, malformed).",
			[]string{"result"}, labels),
		readErrors: prometheus.NewDesc("coalmine_access_log_read_errors_total",
			"Failed reads of the access-log socket.",
			nil, labels),
	}
}

type collector struct {
	r          *Receiver
	lines      *prometheus.Desc
	readErrors *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lines
	ch <- c.readErrors
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for i := range numResults {
		ch <- prometheus.MustNewConstMetric(c.lines, prometheus.CounterValue,
			float64(c.r.counts[i].Load()), resultNames[i])
	}
	ch <- prometheus.MustNewConstMetric(c.readErrors, prometheus.CounterValue,
		float64(c.r.readErrors.Load()))
}
