package telemetry

import (
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"testing"
	"time"
)

// vectorsPath is the reference vectors (testdata/README.md), relative to
// this package.
const vectorsPath = "../../testdata/stats-vectors.json"

type vector struct {
	Method  string          `json:"method"`
	Case    string          `json:"case"`
	Inputs  json.RawMessage `json:"inputs"`
	Params  json.RawMessage `json:"params"`
	Outputs json.RawMessage `json:"outputs"`
}

// loadVectors returns the vectors of one method; a missing file is a
// failure (it is part of the repository).
func loadVectors(t *testing.T, method string) []vector {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("read %s: %v", vectorsPath, err)
	}
	var doc struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decode %s: %v", vectorsPath, err)
	}
	var out []vector
	for _, v := range doc.Vectors {
		if v.Method == method {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %q vectors in %s", method, vectorsPath)
	}
	return out
}

func relClose(got, want, tol float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= tol*math.Abs(want)
}

func TestDDSketchLogMappingVectors(t *testing.T) {
	for _, vec := range loadVectors(t, "ddsketch_log_mapping") {
		t.Run(vec.Case, func(t *testing.T) {
			var in struct {
				Values []float64 `json:"values"`
			}
			var params struct {
				RelativeAccuracy float64 `json:"relative_accuracy"`
			}
			var out struct {
				Gamma     float64   `json:"gamma"`
				IndexCeil []int     `json:"index_ceil"`
				ValueCeil []float64 `json:"value_ceil"`
			}
			for _, u := range []struct {
				raw json.RawMessage
				dst any
			}{{vec.Inputs, &in}, {vec.Params, &params}, {vec.Outputs, &out}} {
				if err := json.Unmarshal(u.raw, u.dst); err != nil {
					t.Fatalf("decode vector: %v", err)
				}
			}
			if params.RelativeAccuracy != RelativeAccuracy {
				t.Fatalf("vector relative accuracy %v, grid uses %v", params.RelativeAccuracy, RelativeAccuracy)
			}
			if !relClose(gamma, out.Gamma, 1e-9) {
				t.Errorf("gamma = %.12g, want %.12g", gamma, out.Gamma)
			}
			if len(out.IndexCeil) != len(in.Values) || len(out.ValueCeil) != len(in.Values) {
				t.Fatalf("vector lengths differ: %d values, %d keys, %d representatives", len(in.Values), len(out.IndexCeil), len(out.ValueCeil))
			}
			for i, x := range in.Values {
				if got := BucketKey(x); got != out.IndexCeil[i] {
					t.Errorf("BucketKey(%v) = %d, want %d", x, got, out.IndexCeil[i])
				}
				d := time.Duration(math.Round(x * 1e9))
				if got := indexKey(durationIndex(d)); got != out.IndexCeil[i] {
					t.Errorf("key of observed %v = %d, want %d", d, got, out.IndexCeil[i])
				}
				if got := BucketValue(out.IndexCeil[i]); !relClose(got, out.ValueCeil[i], 1e-9) {
					t.Errorf("BucketValue(%d) = %.12g, want %.12g", out.IndexCeil[i], got, out.ValueCeil[i])
				}
			}
		})
	}
}

func TestUpperNanosMatchExactBounds(t *testing.T) {
	for idx := 0; idx < overflowIdx; idx++ {
		k := indexKey(idx)
		p := bigPow(gamma, k, 1024)
		p.Mul(p, new(big.Float).SetInt64(1e9))
		if want, _ := p.Uint64(); upperNanos[idx] != want {
			t.Errorf("upper bound of key %d = %d ns, want %d ns", k, upperNanos[idx], want)
		}
	}
	if b := upperNanos[underflowIdx]; b >= 1000 || b < 950 {
		t.Errorf("underflow bound %d ns, want just under 1µs", b)
	}
	if top := time.Duration(upperNanos[overflowIdx-1]); top < time.Hour {
		t.Errorf("grid ends at %v, want beyond 1h", top)
	}
}

// onBoundary reports whether x (seconds) is so close to a bucket boundary
// that the float64 ceil formula cannot place it reliably.
func onBoundary(x float64) bool {
	r := math.Log(x) / lnGamma
	return math.Abs(r-math.Round(r)) < 1e-9
}

// checkIndex compares the fast index with the exact search and with the
// ceil formula of statistics.md §5.1.
func checkIndex(t *testing.T, v uint64) {
	t.Helper()
	got := durationIndex(time.Duration(v))
	if want := searchIndex(v); got != want {
		t.Fatalf("durationIndex(%d ns) = %d, exact search gives %d", v, got, want)
	}
	x := float64(v) / 1e9
	if want := keyIndex(BucketKey(x)); got != want && !onBoundary(x) {
		t.Fatalf("durationIndex(%d ns) = key %d, ceil formula gives key %d", v, indexKey(got), indexKey(want))
	}
}

func TestDurationIndexMatchesCeilFormula(t *testing.T) {
	t.Run("every nanosecond up to 2ms", func(t *testing.T) {
		for v := uint64(0); v <= 2_000_000; v++ {
			checkIndex(t, v)
		}
	})
	t.Run("around every bucket boundary", func(t *testing.T) {
		for idx := 0; idx < overflowIdx; idx++ {
			b := upperNanos[idx]
			for v := b - min(b, 3); v <= b+3; v++ {
				checkIndex(t, v)
			}
		}
	})
	t.Run("log-uniform random", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 1_000_000 {
			checkIndex(t, uint64(math.Exp(rng.Float64()*math.Log(1e13))))
		}
	})
	t.Run("out of range", func(t *testing.T) {
		for _, tc := range []struct {
			d    time.Duration
			want int
		}{
			{-time.Second, underflowIdx},
			{0, underflowIdx},
			{980, underflowIdx},
			{1000, keyIndex(MinKey)},
			{time.Hour, keyIndex(MaxKey)},
			{2 * time.Hour, overflowIdx},
			{math.MaxInt64, overflowIdx},
		} {
			if got := durationIndex(tc.d); got != tc.want {
				t.Errorf("durationIndex(%v) = %d, want %d", tc.d, got, tc.want)
			}
		}
	})
}

func TestBucketKeyEdges(t *testing.T) {
	tests := []struct {
		name string
		x    float64
		want int
	}{
		{"zero", 0, UnderflowKey},
		{"negative", -1, UnderflowKey},
		{"NaN", math.NaN(), UnderflowKey},
		{"below grid", 1e-7, UnderflowKey},
		{"one microsecond", 1e-6, MinKey},
		{"one second is a boundary", 1, 0},
		{"just above one second", 1.000001, 1},
		{"one hour", 3600, MaxKey},
		{"above grid", 1e4, OverflowKey},
		{"infinity", math.Inf(1), OverflowKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := BucketKey(tc.x); got != tc.want {
				t.Errorf("BucketKey(%v) = %d, want %d", tc.x, got, tc.want)
			}
		})
	}
}

func TestBucketBoundsAndValues(t *testing.T) {
	for k := UnderflowKey; k <= OverflowKey; k++ {
		lo, hi := BucketBounds(k)
		v := BucketValue(k)
		if !(lo < hi) || v < lo || v > hi {
			t.Fatalf("key %d: bounds (%g, %g], value %g", k, lo, hi, v)
		}
		if k == UnderflowKey || k == OverflowKey {
			continue
		}
		// The representative is within α of both ends of the bucket.
		if e := (v - lo) / lo; e > RelativeAccuracy*(1+1e-9) {
			t.Fatalf("key %d: value %g is %g above the lower bound %g", k, v, e, lo)
		}
		if e := (hi - v) / hi; e > RelativeAccuracy*(1+1e-9) {
			t.Fatalf("key %d: value %g is %g below the upper bound %g", k, v, e, hi)
		}
		if plo, _ := BucketBounds(k + 1); !relClose(plo, hi, 1e-12) {
			t.Fatalf("key %d: upper %g, next lower %g", k, hi, plo)
		}
	}
}

// snapshotOf returns the histogram of latencies.
func snapshotOf(latencies []time.Duration) Snapshot {
	var dense [numBuckets]uint64
	var s Snapshot
	for _, d := range latencies {
		dense[durationIndex(d)]++
		s.sumMicros += micros(d)
	}
	for i, n := range dense {
		if n != 0 {
			s.idx = append(s.idx, uint16(i))
			s.n = append(s.n, n)
			s.count += n
		}
	}
	return s
}

func TestQuantileAccuracy(t *testing.T) {
	tests := []struct {
		name string
		gen  func(*rand.Rand) float64 // seconds
	}{
		{"lognormal median 50ms", func(r *rand.Rand) float64 { return math.Exp(math.Log(0.05) + r.NormFloat64()) }},
		{"lognormal wide", func(r *rand.Rand) float64 { return math.Exp(math.Log(0.01) + 2.5*r.NormFloat64()) }},
		{"exponential mean 20ms", func(r *rand.Rand) float64 { return 0.02 * r.ExpFloat64() }},
		{"uniform 1ms..2s", func(r *rand.Rand) float64 { return 0.001 + r.Float64()*1.999 }},
		{"pareto tail", func(r *rand.Rand) float64 { return 0.005 / math.Pow(1-r.Float64(), 1/1.5) }},
		{"bimodal cache hit/miss", func(r *rand.Rand) float64 {
			if r.IntN(10) < 7 {
				return math.Exp(math.Log(0.0008) + 0.2*r.NormFloat64())
			}
			return math.Exp(math.Log(0.12) + 0.4*r.NormFloat64())
		}},
		{"few samples", nil},
	}
	qs := []float64{0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			n := 20000
			gen := tc.gen
			if gen == nil {
				n, gen = 7, func(r *rand.Rand) float64 { return 0.001 * (1 + 100*r.Float64()) }
			}
			ds := make([]time.Duration, n)
			for j := range ds {
				x := min(max(gen(rng), 2e-6), 3000) // inside the grid
				ds[j] = time.Duration(math.Round(x * 1e9))
			}
			s := snapshotOf(ds)
			slices.Sort(ds)
			if s.Count() != uint64(n) {
				t.Fatalf("Count = %d, want %d", s.Count(), n)
			}
			for _, q := range qs {
				want := ds[int(q*float64(n-1))].Seconds()
				got := s.Quantile(q)
				if e := math.Abs(got-want) / want; e > RelativeAccuracy+1e-12 {
					t.Errorf("Quantile(%v) = %.9g, exact %.9g: relative error %.4f > %v", q, got, want, e, RelativeAccuracy)
				}
			}
			var sum time.Duration
			for _, d := range ds {
				sum += d.Round(time.Microsecond)
			}
			if got, want := s.Mean(), sum.Seconds()/float64(n); !relClose(got, want, 1e-9) {
				t.Errorf("Mean = %.9g, want %.9g", got, want)
			}
		})
	}
}

func TestQuantileEdges(t *testing.T) {
	var empty Snapshot
	if got := empty.Quantile(0.5); got != 0 {
		t.Errorf("empty Quantile = %v, want 0", got)
	}
	if got := empty.Mean(); got != 0 {
		t.Errorf("empty Mean = %v, want 0", got)
	}
	s := snapshotOf([]time.Duration{0, time.Millisecond, 3 * time.Hour})
	tests := []struct {
		q    float64
		want float64
	}{
		{-1, 0},
		{math.NaN(), 0},
		{0, 0},
		{0.5, BucketValue(BucketKey(0.001))},
		{1, BucketValue(OverflowKey)},
		{2, BucketValue(OverflowKey)},
	}
	for _, tc := range tests {
		if got := s.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

type bucketRow struct {
	key   int
	count uint64
}

func rows(s Snapshot) []bucketRow {
	var out []bucketRow
	for b := range s.Buckets() {
		out = append(out, bucketRow{b.Key, b.Count})
	}
	return out
}

func TestSnapshotMergeSub(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	gen := func(n int, median float64) []time.Duration {
		ds := make([]time.Duration, n)
		for i := range ds {
			ds[i] = time.Duration(math.Exp(math.Log(median)+rng.NormFloat64()) * 1e9)
		}
		return ds
	}
	a, b, c := gen(500, 0.01), gen(300, 0.05), gen(10, 2)
	sa, sb, sc := snapshotOf(a), snapshotOf(b), snapshotOf(c)
	all := snapshotOf(slices.Concat(a, b, c))

	tests := []struct {
		name      string
		got, want Snapshot
	}{
		{"merge equals observing everything", sa.Merge(sb).Merge(sc), all},
		{"merge is associative", sa.Merge(sb.Merge(sc)), all},
		{"merge is commutative", sc.Merge(sb).Merge(sa), all},
		{"sub undoes merge", all.Sub(sa).Sub(sc), sb},
		{"merge with empty", sb.Merge(Snapshot{}), sb},
		{"sub of itself is empty", sb.Sub(sb), Snapshot{}},
		{"sub saturates at zero", sa.Sub(all), Snapshot{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !slices.Equal(rows(tc.got), rows(tc.want)) {
				t.Errorf("buckets differ:\n got %v\nwant %v", rows(tc.got), rows(tc.want))
			}
			if tc.got.Count() != tc.want.Count() || tc.got.Sum() != tc.want.Sum() {
				t.Errorf("count/sum = %d/%v, want %d/%v", tc.got.Count(), tc.got.Sum(), tc.want.Count(), tc.want.Sum())
			}
		})
	}
}

func TestSnapshotBuckets(t *testing.T) {
	ds := []time.Duration{0, 500 * time.Microsecond, 500 * time.Microsecond, 20 * time.Millisecond, 3 * time.Hour}
	s := snapshotOf(ds)
	want := []bucketRow{
		{UnderflowKey, 1},
		{BucketKey(0.0005), 2},
		{BucketKey(0.02), 1},
		{OverflowKey, 1},
	}
	if got := rows(s); !slices.Equal(got, want) {
		t.Fatalf("buckets = %v, want %v", got, want)
	}
	if s.Len() != len(want) {
		t.Errorf("Len = %d, want %d", s.Len(), len(want))
	}
	var prev float64 = -1
	var total uint64
	for b := range s.Buckets() {
		if !(b.Lower < b.Upper) || b.Value < b.Lower || b.Value > b.Upper || b.Value <= prev {
			t.Errorf("bucket %+v out of order or inconsistent", b)
		}
		prev = b.Value
		total += b.Count
	}
	if total != s.Count() {
		t.Errorf("bucket counts sum to %d, Count = %d", total, s.Count())
	}
	n := 0
	for range s.Buckets() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("iteration did not stop on break")
	}
	if !sort.SliceIsSorted(s.idx, func(i, j int) bool { return s.idx[i] < s.idx[j] }) {
		t.Errorf("indices not sorted: %v", s.idx)
	}
}
