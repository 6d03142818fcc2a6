package notify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names (SPEC §6.3 style). Every series has the labels rollout,
// channel (the index in spec.notifications) and kind.
const (
	metricTotal    = "coalmine_notifications_total"
	metricErrors   = "coalmine_notification_errors_total"
	metricPending  = "coalmine_notifications_pending"
	metricFailures = "coalmine_notification_consecutive_failures"
)

var channelLabels = []string{"rollout", "channel", "kind"}

// metrics holds the counters; the gauges are read from the workers'
// status at scrape time so they can never disagree with Status.
type metrics struct {
	total    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	pending  *prometheus.Desc
	failures *prometheus.Desc
}

func newMetrics() *metrics {
	return &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricTotal,
			Help: "Events handled per notification channel; result is delivered (2xx), skipped (not for this channel) or failed (rejected with a 4xx and given up).",
		}, append(channelLabels[:3:3], "result")),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricErrors,
			Help: "Failed delivery attempts that will be retried (network errors, timeouts, 408, 429, 5xx, unresolvable secrets).",
		}, channelLabels),
		pending: prometheus.NewDesc(metricPending,
			"Events after the channel's cursor, not yet delivered.", channelLabels, nil),
		failures: prometheus.NewDesc(metricFailures,
			"Consecutive failed attempts at the channel's oldest pending event (0 when healthy).", channelLabels, nil),
	}
}

// result counts one handled event. A removed channel's worker may still
// finish an event after RemoveRollout dropped its series; it is not
// counted, so the series stay gone.
func (m *metrics) result(w *worker, result string) {
	if w.forget.Load() {
		return
	}
	m.total.WithLabelValues(w.rollout, w.label, w.kind, result).Inc()
}

func (m *metrics) attemptFailed(w *worker) {
	if w.forget.Load() {
		return
	}
	m.errors.WithLabelValues(w.rollout, w.label, w.kind).Inc()
}

// forget drops the counters whose labels include all of l: those of a
// removed rollout, a removed channel, or a channel that changed kind.
func (m *metrics) forget(l prometheus.Labels) {
	m.total.DeletePartialMatch(l)
	m.errors.DeletePartialMatch(l)
}

// Collector exposes the notification metrics; register it once.
func (d *Dispatcher) Collector() prometheus.Collector { return collector{d} }

type collector struct{ d *Dispatcher }

var _ prometheus.Collector = collector{}

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	c.d.metrics.total.Describe(ch)
	c.d.metrics.errors.Describe(ch)
	ch <- c.d.metrics.pending
	ch <- c.d.metrics.failures
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.d.metrics
	m.total.Collect(ch)
	m.errors.Collect(ch)
	for _, ws := range c.d.current() {
		for _, w := range ws {
			s := w.status()
			ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(s.Pending), w.rollout, w.label, w.kind)
			ch <- prometheus.MustNewConstMetric(m.failures, prometheus.GaugeValue, float64(s.Failures), w.rollout, w.label, w.kind)
		}
	}
}
