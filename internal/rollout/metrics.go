package rollout

import (
	"context"

	"github.com/coalmine-dev/coalmine/internal/model"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes rollout state on /metrics: weights, phases, steps and
// endpoint health (SPEC §6.3). It reads views at scrape time, so there is
// no state to keep in sync.
type Collector struct {
	m      *Controller
	weight *prometheus.Desc
	phase  *prometheus.Desc
	step   *prometheus.Desc
	health *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector over m.
func NewCollector(m *Controller) *Collector {
	return &Collector{
		m:      m,
		weight: prometheus.NewDesc("coalmine_canary_weight_percent", "Canary weight the controller applied, in percent.", []string{"rollout"}, nil),
		phase:  prometheus.NewDesc("coalmine_rollout_phase", "1 for the rollout's current phase, 0 for the others.", []string{"rollout", "phase"}, nil),
		step:   prometheus.NewDesc("coalmine_rollout_step", "Index of the rollout's current step.", []string{"rollout"}, nil),
		health: prometheus.NewDesc("coalmine_endpoint_healthy", "1 when the endpoint can take traffic (healthy and not ejected).", []string{"rollout", "role", "endpoint"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.m.measurements.Describe(ch)
	ch <- c.weight
	ch <- c.phase
	ch <- c.step
	ch <- c.health
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.m.measurements.Collect(ch)
	views, err := c.m.List(context.Background())
	if err != nil {
		return
	}
	for _, v := range views {
		name := v.Metadata.Name
		ch <- prometheus.MustNewConstMetric(c.weight, prometheus.GaugeValue, v.Status.Weight, name)
		for _, p := range []model.Phase{model.PhaseHealthy, model.PhaseProgressing, model.PhasePaused, model.PhaseDegraded} {
			val := 0.0
			if v.Status.Phase == p {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(c.phase, prometheus.GaugeValue, val, name, string(p))
		}
		ch <- prometheus.MustNewConstMetric(c.step, prometheus.GaugeValue, float64(v.Status.StepIndex), name)
		for _, ep := range v.Status.Endpoints {
			val := 0.0
			if ep.Healthy && !ep.Ejected {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(c.health, prometheus.GaugeValue, val, name, string(ep.Role), ep.URL)
		}
	}
}
