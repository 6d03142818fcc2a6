package telemetry

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tests := []struct {
		name           string
		codeP, bucketP float64 // probability that a counter is non-zero
		maxCount       uint64
	}{
		{"empty", 0, 0, 1},
		{"sparse small counts", 0.01, 0.05, 10},
		{"dense huge counts", 1, 1, 1 << 62},
		{"typical", 0.01, 0.2, 1 << 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var codes [numCodeSlots]uint64
			var hist [numBuckets]uint64
			s := &sample{}
			nzCodes, nzHist := 0, 0
			for i := range codes {
				if rng.Float64() < tc.codeP {
					codes[i] = 1 + rng.Uint64N(tc.maxCount)
					s.codes, s.codeN = append(s.codes, uint16(i)), append(s.codeN, codes[i])
					s.requests += codes[i]
					nzCodes++
				}
			}
			for i := range hist {
				if rng.Float64() < tc.bucketP {
					hist[i] = 1 + rng.Uint64N(tc.maxCount)
					s.hist.idx, s.hist.n = append(s.hist.idx, uint16(i)), append(s.hist.n, hist[i])
					s.hist.count += hist[i]
					nzHist++
				}
			}
			s.hist.sumMicros = rng.Uint64()
			p := pack(s)
			// The sampler's dense encoding is byte for byte the same.
			dense := appendPairs(appendPairs(nil, codes[:], nzCodes), hist[:], nzHist)
			if !bytes.Equal(dense, p.data) {
				t.Fatalf("dense and sparse encodings differ")
			}
			got := p.unpack()
			if got.requests != s.requests || got.hist.count != s.hist.count || got.hist.sumMicros != s.hist.sumMicros ||
				!slices.Equal(got.codes, s.codes) || !slices.Equal(got.codeN, s.codeN) ||
				!slices.Equal(got.hist.idx, s.hist.idx) || !slices.Equal(got.hist.n, s.hist.n) {
				t.Fatalf("round trip changed the sample")
			}
		})
	}
	if got := zeroPacked.unpack(); got.requests != 0 || len(got.codes) != 0 || got.hist.Count() != 0 {
		t.Errorf("zero snapshot decodes to %+v", got)
	}
}
