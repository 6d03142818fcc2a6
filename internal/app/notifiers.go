package app

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/rollout"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// notifiers is the controller's Notifier across leaderships. A
// notify.Dispatcher runs once, and each time a replica leads it must start
// from the cursors in the store (another leader moved them meanwhile), as a
// process start does: so every term gets a new Dispatcher, installed before
// the takeover loads the rollouts (which sets each one's channels), and
// this switch hands every call, and the metrics, to the current one.
type notifiers struct {
	cur atomic.Pointer[notify.Dispatcher]
}

var _ rollout.Notifier = (*notifiers)(nil)

func newNotifiers(d *notify.Dispatcher) *notifiers {
	n := &notifiers{}
	n.cur.Store(d)
	return n
}

// replace installs d for the next term and returns it.
func (n *notifiers) replace(d *notify.Dispatcher) *notify.Dispatcher {
	n.cur.Store(d)
	return d
}

func (n *notifiers) current() *notify.Dispatcher { return n.cur.Load() }

func (n *notifiers) SetRollout(name string, ns []spec.Notification) {
	n.current().SetRollout(name, ns)
}
func (n *notifiers) RemoveRollout(name string) { n.current().RemoveRollout(name) }
func (n *notifiers) Wake(name string)          { n.current().Wake(name) }
func (n *notifiers) Status(name string) []model.ChannelStatus {
	return n.current().Status(name)
}

// Describe and Collect make the switch the one registered collector; every
// Dispatcher describes the same metrics.
func (n *notifiers) Describe(ch chan<- *prometheus.Desc) { n.current().Collector().Describe(ch) }
func (n *notifiers) Collect(ch chan<- prometheus.Metric) { n.current().Collector().Collect(ch) }
