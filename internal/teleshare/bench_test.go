package teleshare

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store/postgres"
	"github.com/coalmine-dev/coalmine/internal/store/postgres/pgtest"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// busyRegistry is a replica that served n rollouts for a while: each
// stable version 30 000 requests and each canary 3 000, with lognormal
// latencies (median 10–40 ms, σ 0.8, about 150–200 non-zero buckets) and
// 1 % errors, all in revision 1. Every version draws its own latencies, so
// that compression figures are not flattered by repeated data.
func busyRegistry(n int, now func() time.Time) *telemetry.Registry {
	rng := rand.New(rand.NewPCG(1, 2))
	reg := telemetry.NewRegistry(telemetry.Options{Now: now})
	for r := range n {
		rs := reg.Rollout(fmt.Sprintf("rollout-%04d", r))
		rs.StartRevision(1)
		median := math.Log(0.01 + 0.03*rng.Float64())
		for _, v := range []struct {
			role    spec.Role
			version string
			n       int
		}{{spec.RoleStable, "v1", 30000}, {spec.RoleCanary, "v2", 3000}} {
			vs := rs.Version(v.role, v.version)
			for i := range v.n {
				code := 200
				if i%100 == 0 {
					code = 503
				}
				vs.Observe(code, time.Duration(math.Exp(median+0.8*rng.NormFloat64())*1e9))
			}
		}
	}
	return reg
}

var benchSizes = []int{1, 100, 1000}

// BenchmarkPublish is a publisher's round without the store: export every
// version's own counters and encode the record. bytes/record is what each
// replica writes every second.
func BenchmarkPublish(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rollouts=%d", n), func(b *testing.B) {
			clk := newClock()
			reg := busyRegistry(n, clk.Now)
			var data []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if data, err = Encode(Snapshot(reg, "b", "b-1", clk.Now())); err != nil {
					b.Fatal(err)
				}
			}
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(data)
			zw.Close()
			b.ReportMetric(float64(len(data)), "bytes/record")
			b.ReportMetric(float64(gz.Len()), "gzip-bytes/record")
			b.ReportMetric(float64(len(data))/float64(2*n), "bytes/version")
		})
	}
}

// BenchmarkMerge is a leader's round without the store, every version of
// the follower having served one more request since the last: decode the
// record, compute the deltas and import them.
func BenchmarkMerge(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("rollouts=%d", n), func(b *testing.B) {
			clk := newClock()
			follower := busyRegistry(n, clk.Now)
			leader := telemetry.NewRegistry(telemetry.Options{Now: clk.Now})
			for _, rs := range follower.Rollouts() {
				leader.Rollout(rs.Name()).StartRevision(1)
				leader.Rollout(rs.Name()).Version(spec.RoleStable, "v1")
				leader.Rollout(rs.Name()).Version(spec.RoleCanary, "v2")
			}
			m := &Merger{ID: "a", Registry: leader, Now: clk.Now}
			record := func() []byte {
				data, err := Encode(Snapshot(follower, "b", "b-1", clk.Now()))
				if err != nil {
					b.Fatal(err)
				}
				return data
			}
			r, err := Decode("b", record())
			if err != nil {
				b.Fatal(err)
			}
			m.Step([]Report{r}) // first sight: the whole revision
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for _, rs := range follower.Rollouts() {
					for _, v := range rs.Versions() {
						v.Observe(200, 20*time.Millisecond)
					}
				}
				data := record()
				b.StartTimer()
				r, err := Decode("b", data)
				if err != nil {
					b.Fatal(err)
				}
				if res := m.Step([]Report{r}); res.Imported != 2*n {
					b.Fatalf("imported %d deltas, want %d", res.Imported, 2*n)
				}
			}
		})
	}
}

// BenchmarkPostgresRound is a whole round through a real PostgreSQL
// database (pgtest) for 1000 busy rollouts: a follower's Publish (export,
// encode, compare-and-swap write) and the leader's Merge of that record
// (list, decode, import).
func BenchmarkPostgresRound(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	clk := newClock()
	follower := busyRegistry(n, clk.Now)
	leader := telemetry.NewRegistry(telemetry.Options{Now: clk.Now})
	for _, rs := range follower.Rollouts() {
		leader.Rollout(rs.Name()).StartRevision(1)
		leader.Rollout(rs.Name()).Version(spec.RoleStable, "v1")
		leader.Rollout(rs.Name()).Version(spec.RoleCanary, "v2")
	}
	p := &Publisher{Store: st, ID: "b", Registry: follower, Now: clk.Now}
	m := &Merger{Store: st, ID: "a", Registry: leader, Now: clk.Now}
	b.Run("publish", func(b *testing.B) {
		for b.Loop() {
			if err := p.Publish(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("merge", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Merge(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
