package rollout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Providers are the measurement sources, one per kind (SPEC §5.3). A nil
// one makes its metrics end in Error with a message saying so.
type Providers struct {
	Builtin, Prometheus, Web, Command, CloudWatch provider.Provider
}

func (p Providers) of(sp spec.Provider) (provider.Provider, string) {
	switch {
	case sp.Builtin != nil:
		return p.Builtin, "builtin"
	case sp.Prometheus != nil:
		return p.Prometheus, "prometheus"
	case sp.Web != nil:
		return p.Web, "web"
	case sp.Command != nil:
		return p.Command, "command"
	case sp.CloudWatch != nil:
		return p.CloudWatch, "cloudWatch"
	}
	return nil, "unknown"
}

// defaultQueryTimeout bounds a query whose provider sets no timeout.
const defaultQueryTimeout = 30 * time.Second

// measureKey names one metric of one run, for the in-flight set.
type measureKey struct {
	run    string
	metric int
}

// scheduleMeasurements starts the measurements that are due and asks the
// queue to come back when the next one is. Measurements run on their own
// goroutines (a slow provider never holds the rollout's lock) and report
// back through recordMeasurement. Callers hold e.mu.
func (c *Controller) scheduleMeasurements(e *entry, now time.Time) {
	name := e.rec.Rollout.Metadata.Name
	var next time.Time
	for _, r := range e.st.Runs {
		due, at := analysis.Due(r.Run, r.Metrics, now)
		next = earliestNonZero(next, at)
		for _, i := range due {
			k := measureKey{r.Run.ID, i}
			if e.inflight[k] {
				continue
			}
			if e.inflight == nil {
				e.inflight = map[measureKey]bool{}
			}
			e.inflight[k] = true
			q := analysis.NewQuery(name, r.Run, r.Metrics[i])
			q.Secrets = r.Secrets
			c.startMeasurement(name, r.Run.ID, i, q)
		}
	}
	if !next.IsZero() {
		c.queue.Add(name, next)
	}
}

// startMeasurement runs one provider query in the background, owned by the
// controller's Run (or synchronously when Run has not started, which is
// how tests drive the controller step by step).
func (c *Controller) startMeasurement(name, runID string, metric int, q provider.Query) {
	c.runMu.Lock()
	ctx := c.runCtx
	if ctx != nil {
		c.measuring.Add(1)
	}
	c.runMu.Unlock()
	if ctx == nil {
		c.runMu.Lock()
		c.pending = append(c.pending, pendingMeasurement{name, runID, metric, q})
		c.runMu.Unlock()
		return
	}
	go func() {
		defer c.measuring.Done()
		out := c.query(ctx, q)
		if ctx.Err() != nil {
			// Run stopped (shutdown, or this replica stopped leading):
			// the measurement is not taken, and must not stay marked as
			// running, or it would never be taken when Run starts again.
			if e, err := c.lock(name); err == nil {
				delete(e.inflight, measureKey{runID, metric})
				e.mu.Unlock()
			}
			return
		}
		c.recordMeasurement(ctx, name, runID, metric, out)
	}()
}

type pendingMeasurement struct {
	name, run string
	metric    int
	q         provider.Query
}

// MeasureNow runs every measurement that scheduling queued while Run was
// not running, synchronously, and records them. Tests use it to drive
// analysis step by step with a fake clock and fake providers.
func (c *Controller) MeasureNow(ctx context.Context) {
	for {
		c.runMu.Lock()
		if len(c.pending) == 0 {
			c.runMu.Unlock()
			return
		}
		p := c.pending[0]
		c.pending = c.pending[1:]
		c.runMu.Unlock()
		c.recordMeasurement(ctx, p.name, p.run, p.metric, c.query(ctx, p.q))
	}
}

// query asks the metric's provider, with a timeout.
func (c *Controller) query(ctx context.Context, q provider.Query) analysis.Outcome {
	out := analysis.Outcome{StartedAt: c.cfg.Now()}
	p, kind := c.cfg.Providers.of(q.Spec)
	if p == nil {
		out.Err = fmt.Errorf("provider %s is not available in this server", kind)
		out.FinishedAt = c.cfg.Now()
		return out
	}
	var red analysis.Redactor
	if len(q.Secrets) > 0 {
		var err error
		if q.Spec, red, err = analysis.RevealSecrets(q.Spec, q.Secrets, c.resolveArgSecret); err != nil {
			out.Err = err
			out.FinishedAt = c.cfg.Now()
			return out
		}
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout(q.Spec))
	defer cancel()
	out.Result, out.Err = p.Query(qctx, q)
	out = red.Outcome(out)
	out.FinishedAt = c.cfg.Now()
	return out
}

// queryTimeout is the controller's bound on one query: the metric's own
// timeout plus a second, so the provider's error (which names the timeout)
// wins the race, or defaultQueryTimeout.
func queryTimeout(sp spec.Provider) time.Duration {
	switch {
	case sp.Prometheus != nil && sp.Prometheus.Timeout != nil && sp.Prometheus.Timeout.D() > 0:
		return sp.Prometheus.Timeout.D() + time.Second
	case sp.Web != nil && sp.Web.Timeout != nil && sp.Web.Timeout.D() > 0:
		return sp.Web.Timeout.D() + time.Second
	case sp.Web != nil && sp.Web.TimeoutSeconds != nil && *sp.Web.TimeoutSeconds > 0:
		return time.Duration(*sp.Web.TimeoutSeconds)*time.Second + time.Second
	case sp.Command != nil:
		// The provider kills the command at its own timeout; the margin
		// lets it do so and report why.
		return sp.Command.RunTimeout() + 10*time.Second
	}
	return defaultQueryTimeout
}

// recordMeasurement books a measurement into its run, persists the state
// with the run's events, and wakes the rollout so Next sees the verdict.
func (c *Controller) recordMeasurement(ctx context.Context, name, runID string, metric int, out analysis.Outcome) {
	e, err := c.lock(name)
	if err != nil {
		return
	}
	defer e.mu.Unlock()
	delete(e.inflight, measureKey{runID, metric})
	idx := -1
	for i := range e.st.Runs {
		if e.st.Runs[i].Run.ID == runID {
			idx = i
		}
	}
	if idx < 0 {
		return // the run ended while the query was in flight
	}
	now := c.cfg.Now()
	r := e.st.Runs[idx]
	updated, err := analysis.Record(r.Run, r.Metrics, metric, out, c.cfg.Judges, now)
	if errors.Is(err, analysis.ErrNotRunning) {
		return
	}
	if err != nil {
		c.log.Error("record measurement", "rollout", name, "run", runID, "err", err)
		return
	}
	next := e.st.clone()
	next.Runs[idx].Run = updated
	next.UpdatedAt = now
	var drafts []EventDraft
	m := updated.Metrics[metric]
	if typ := analysis.Event(r.Run.Phase, updated.Phase); typ != "" {
		details := map[string]any{"run": runID, "phase": string(updated.Phase), "kind": updated.Kind, "step": updated.Step, "metric": m.Name}
		// The numbers behind the verdict travel with the event, so a
		// webhook, Slack or PagerDuty receiver sees them too.
		if n := len(m.Measurements); n > 0 && m.Measurements[n-1].Evidence != nil {
			details["evidence"] = m.Measurements[n-1].Evidence
		}
		drafts = append(drafts, EventDraft{Type: typ, Message: updated.Message, Details: details})
	}
	if n := len(m.Measurements); n > 0 {
		c.measurements.WithLabelValues(name, m.Name, string(m.Measurements[n-1].Phase)).Inc()
	}
	if len(drafts) == 0 && !material(r.Run.Metrics[metric], m) && now.Sub(e.runSaved) < lazyRunSave {
		// An undecided judge evaluation, or another second without data,
		// changes no verdict and no counter that matters: keep it in memory
		// and save it with the next change (or after lazyRunSave). A crash
		// loses at most that much of a judge's progress, which it then takes
		// in as one batch, and a few NoData counts. One fsync per judge per
		// second per rollout would otherwise be the controller's main cost.
		e.st = next
		v := c.view(e)
		c.hub.publish(name, model.WatchUpdate{View: &v})
		c.queue.Add(name, now)
		return
	}
	if err := c.commit(ctx, e, next, drafts, nil); err != nil {
		c.log.Error("save measurement", "rollout", name, "run", runID, "err", err)
		return
	}
	e.runSaved = now
	c.queue.Add(name, now)
}

// lazyRunSave bounds how long an immaterial measurement stays unsaved.
const lazyRunSave = 10 * time.Second

// material reports whether recording a measurement changed a metric in a
// way a restart must not lose: its phase or a counter other than NoData.
func material(before, after analysis.MetricRun) bool {
	return before.Phase != after.Phase || before.Count != after.Count || before.Successful != after.Successful ||
		before.Failed != after.Failed || before.Inconclusive != after.Inconclusive || before.Error != after.Error ||
		before.ConsecutiveErrors != after.ConsecutiveErrors || !before.NoDataSince.Equal(after.NoDataSince)
}

// resolveArgSecret reads a secret argument through the configured
// resolver.
func (c *Controller) resolveArgSecret(from spec.ArgValueFrom) (string, error) {
	if c.cfg.ResolveArgSecret == nil {
		return "", errors.New("this server cannot read secret arguments")
	}
	return c.cfg.ResolveArgSecret(from)
}
