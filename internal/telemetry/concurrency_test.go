package telemetry

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// series flattens a gather into "name{labels}" → value; histograms give
// one entry per bucket plus _count.
func series(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Errorf("gather: %v", err)
		return nil
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var l []string
			for _, p := range m.GetLabel() {
				l = append(l, p.GetName()+"="+p.GetValue())
			}
			sort.Strings(l)
			key := mf.GetName() + "{" + strings.Join(l, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				out[key+"_count"] = float64(h.GetSampleCount())
				for _, b := range h.GetBucket() {
					out[fmt.Sprintf("%s_bucket_%g", key, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

// TestConcurrentUse hammers the hot path from several goroutines while
// another one ticks, summarises, scrapes, starts a revision and creates
// versions. Run it with -race. Counters must be monotonic throughout and
// exact at the end.
func TestConcurrentUse(t *testing.T) {
	const (
		workers   = 4
		perWorker = 20000
		minRounds = 50
	)
	clk := newFakeClock()
	reg := NewRegistry(Options{Now: clk.Now, WindowRetention: 10 * time.Second})
	rs := reg.Rollout("shop")
	stable := rs.Version(spec.RoleStable, "v1")
	canary := rs.Version(spec.RoleCanary, "v2")
	steady := reg.Rollout("steady").Version(spec.RoleStable, "v1") // never restarted
	gatherer := prometheus.NewPedanticRegistry()
	gatherer.MustRegister(reg.Collector())

	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				v := stable
				if (i+w)%2 == 0 {
					v = canary
				}
				code := 200
				if i%10 == 0 {
					code = 500
				}
				d := time.Duration(1+i%5000) * 10 * time.Microsecond
				v.Observe(code, d)
				steady.Observe(code, d)
				if i%100 == 0 {
					v.ObserveMirror(200, d)
					v.ProxyError(ErrorTimeout)
					rs.MirrorDropped(DropPoolFull)
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	prev := map[string]float64{}
	for round := 1; ; round++ {
		clk.Set(at(time.Duration(round) * time.Second))
		reg.Tick(clk.Now())
		if round == minRounds/2 {
			rs.StartRevision(2)
		}
		reg.Rollout(fmt.Sprintf("churn-%d", round%3)).Version(spec.RoleCanary, "v1").Observe(200, time.Millisecond)
		for _, s := range []Summary{stable.Summary(0), canary.Summary(5 * time.Second), steady.Summary(time.Second)} {
			if s.Requests < 0 || s.Errors > s.Requests || s.ErrorRate < 0 || s.ErrorRate > 1 {
				t.Fatalf("inconsistent summary: %+v", s)
			}
		}
		cur := series(t, gatherer)
		for k, v := range prev {
			if cur[k] < v {
				t.Fatalf("%s went down from %v to %v", k, v, cur[k])
			}
		}
		prev = cur
		select {
		case <-done:
		default:
			continue
		}
		if round >= minRounds {
			break
		}
	}

	final := series(t, gatherer)
	total := float64(workers * perWorker)
	live := func(role, version, code string) float64 {
		return final[fmt.Sprintf("coalmine_requests_total{code=%s,role=%s,rollout=shop,source=live,version=%s}", code, role, version)]
	}
	if got := live("stable", "v1", "200") + live("stable", "v1", "500") + live("canary", "v2", "200") + live("canary", "v2", "500"); got != total {
		t.Errorf("live requests of shop = %v, want %v", got, total)
	}
	if got := final["coalmine_proxy_errors_total{kind=timeout,role=stable,rollout=shop}"] + final["coalmine_proxy_errors_total{kind=timeout,role=canary,rollout=shop}"]; got != total/100 {
		t.Errorf("proxy errors = %v, want %v", got, total/100)
	}
	if got := final["coalmine_mirror_dropped_total{reason=pool-full,rollout=shop}"]; got != total/100 {
		t.Errorf("mirror drops = %v, want %v", got, total/100)
	}
	if got := final["coalmine_request_duration_seconds{role=stable,rollout=steady,version=v1}_count"]; got != total {
		t.Errorf("steady histogram count = %v, want %v", got, total)
	}
	s := steady.Summary(0)
	if s.Requests != int64(total) || s.Errors != int64(total)/10 || s.Histogram.Count() != uint64(total) {
		t.Errorf("steady summary: %d requests, %d errors, %d latencies; want %v, %v, %v", s.Requests, s.Errors, s.Histogram.Count(), total, total/10, total)
	}
	if a, b := stable.Summary(0).Requests, canary.Summary(0).Requests; a+b > int64(total) {
		t.Errorf("since-revision requests %d+%d exceed the total %v", a, b, total)
	}
}
