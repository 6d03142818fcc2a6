package telemetry

import (
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/prometheus/client_golang/prometheus"
)

// benchLatencies is a lognormal latency sample (median 20 ms).
var benchLatencies = func() (ds [1024]time.Duration) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range ds {
		ds[i] = time.Duration(math.Exp(math.Log(0.02)+rng.NormFloat64()) * 1e9)
	}
	return ds
}()

func BenchmarkObserve(b *testing.B) {
	v := NewRegistry(Options{}).Rollout("shop").Version(spec.RoleCanary, "v2")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v.Observe(200, benchLatencies[i&1023])
		i++
	}
}

// BenchmarkObserveParallel is the worst case: every goroutine hits the same
// version, so the code and sum counters bounce between cores.
func BenchmarkObserveParallel(b *testing.B) {
	v := NewRegistry(Options{}).Rollout("shop").Version(spec.RoleCanary, "v2")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(1024)
		for pb.Next() {
			v.Observe(200, benchLatencies[i&1023])
			i++
		}
	})
}

// BenchmarkObserveParallelVersions spreads goroutines over versions, as
// concurrent requests to different rollouts are.
func BenchmarkObserveParallelVersions(b *testing.B) {
	rs := NewRegistry(Options{}).Rollout("shop")
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := rs.Version(spec.RoleCanary, string(rune('a'+next.Add(1))))
		i := 0
		for pb.Next() {
			v.Observe(200, benchLatencies[i&1023])
			i++
		}
	})
}

func BenchmarkBucketIndex(b *testing.B) {
	b.Run("table", func(b *testing.B) {
		i, s := 0, 0
		for b.Loop() {
			s += durationIndex(benchLatencies[i&1023])
			i++
		}
		_ = s
	})
	b.Run("ceil formula", func(b *testing.B) {
		i, s := 0, 0
		for b.Loop() {
			s += BucketKey(benchLatencies[i&1023].Seconds())
			i++
		}
		_ = s
	})
}

// busyVersion returns a version with a full retention of busy snapshots.
func busyVersion(b *testing.B) (*VersionStats, *fakeClock) {
	clk := newFakeClock()
	reg := NewRegistry(Options{Now: clk.Now})
	v := reg.Rollout("shop").Version(spec.RoleCanary, "v2")
	for s := 1; s <= 600; s++ {
		for i := range 100 {
			v.Observe(200, benchLatencies[(s*100+i)&1023])
		}
		clk.Set(at(time.Duration(s) * time.Second))
		reg.Tick(clk.Now())
	}
	return v, clk
}

func BenchmarkSummary(b *testing.B) {
	v, _ := busyVersion(b)
	for _, w := range []time.Duration{0, time.Minute} {
		b.Run(w.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = v.Summary(w)
			}
		})
	}
}

func BenchmarkTick(b *testing.B) {
	for _, busy := range []bool{false, true} {
		name := "idle"
		if busy {
			name = "busy"
		}
		b.Run(name, func(b *testing.B) {
			reg := NewRegistry(Options{Now: newFakeClock().Now})
			v := reg.Rollout("shop").Version(spec.RoleCanary, "v2")
			for i := range 1024 {
				v.Observe(200, benchLatencies[i])
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if busy {
					v.Observe(200, benchLatencies[i&1023])
				}
				i++
				reg.Tick(at(time.Duration(i) * time.Second))
			}
		})
	}
}

func BenchmarkCollect(b *testing.B) {
	reg := NewRegistry(Options{})
	shopTraffic(reg)
	g := prometheus.NewRegistry()
	g.MustRegister(reg.Collector())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
