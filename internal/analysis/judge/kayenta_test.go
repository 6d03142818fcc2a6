package judge

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// kayentaSpec is a kayenta judge spec with the given changes applied. It
// is critical, so that a High or Low fails at once and the tests of the
// classification see its verdict; notCritical undoes that.
func kayentaSpec(compare string, mutate ...func(*spec.Judge)) spec.Judge {
	j := spec.Judge{Compare: compare, Method: spec.JudgeMethodKayenta, Critical: true}
	for _, m := range mutate {
		m(&j)
	}
	return j
}

func withMax(n int64) func(*spec.Judge) { return func(j *spec.Judge) { j.MaxSamples = &n } }

func kayentaMustJudge(t *testing.T, j spec.Judge) Judge {
	t.Helper()
	jj, err := New(j)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, ok := jj.(*kayentaJudge); !ok {
		t.Fatalf("New(method kayenta) built %T", jj)
	}
	return jj
}

// kayentaInterval advances the simulation by one minute of traffic
// (total requests per second, half to the canary): one point per version.
func kayentaInterval(s *seqSim, total int, c, st seqArm) Input {
	var in Input
	for range 60 {
		in = s.step(total, 0.5, c, st)
	}
	return in
}

// kayentaRun assesses one interval per look until the judge decides.
func kayentaRun(t *testing.T, j Judge, looks int, s *seqSim, total int, c, st seqArm) (Decision, int, []byte) {
	t.Helper()
	return seqRun(t, j, looks, func(int) Input { return kayentaInterval(s, total, c, st) })
}

func decodeKayentaState(t *testing.T, state []byte) kayentaState {
	t.Helper()
	var s kayentaState
	if err := json.Unmarshal(state, &s); err != nil {
		t.Fatalf("state: %v", err)
	}
	return s
}

func TestKayentaErrorRateRegressionFails(t *testing.T) {
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withTol(0.5), withMax(20)))
	d, looks, _ := kayentaRun(t, j, 20, newSeqSim(1), 40, seqArm{errRate: 0.05}, seqArm{errRate: 0.005})
	if d.Verdict != Failed {
		t.Fatalf("verdict %s after %d looks, want Failed: %s", d.Verdict, looks, d.Message)
	}
	// 5 points per version is the fewest with which the 98% interval can
	// exclude zero; a ten-fold error rate is plain at once.
	if looks != 5 {
		t.Errorf("decided at look %d, want 5 (the default minSamples)", looks)
	}
	if d.Evidence.Label != "High" || len(d.Evidence.Interval) != 2 || !(d.Evidence.Interval[0] > 0) {
		t.Errorf("evidence %+v: want label High and an interval above 0", d.Evidence)
	}
	if r := valueOr(d.Evidence.Statistic, 0); !(r > 5) {
		t.Errorf("mean ratio %v, want about 10", r)
	}
	for _, want := range []string{"canary error rate per interval", "(mean of 5/5 points)", "label High", "tolerated mean ratio ≤ 1.5"} {
		if !strings.Contains(d.Message, want) {
			t.Errorf("message %q lacks %q", d.Message, want)
		}
	}
}

func notCritical(j *spec.Judge) { j.Critical = false }

// A judge that is not critical does not fail on a High: it goes on with
// the label, which lowers the run's score, and ends Failed only at its
// limit. The critical one fails on the same data at the fifth look.
func TestKayentaNotCriticalGoesOnToItsLimit(t *testing.T) {
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withTol(0.5), withMax(20), notCritical))
	s := newSeqSim(1)
	var state []byte
	for look := 1; look <= 20; look++ {
		d, next, err := j.Assess(state, kayentaInterval(s, 40, seqArm{errRate: 0.05}, seqArm{errRate: 0.005}))
		if err != nil {
			t.Fatal(err)
		}
		state = next
		switch {
		case look < 20 && d.Verdict != Continue && d.Verdict != NoData:
			t.Fatalf("look %d: %s, want Continue before the limit: %s", look, d.Verdict, d.Message)
		case look >= 5 && look < 20 && (d.Evidence.Label != "High" || !strings.Contains(d.Message, "not critical: the run's Kayenta score decides")):
			t.Errorf("look %d: label %q, message %q", look, d.Evidence.Label, d.Message)
		case look == 20 && (d.Verdict != Failed || d.Evidence.Label != "High" || !strings.Contains(d.Message, "maxSamples 20 points reached")):
			t.Errorf("at the limit: %s (label %s), want Failed High: %s", d.Verdict, d.Evidence.Label, d.Message)
		}
	}
	d, looks, _ := kayentaRun(t, kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withTol(0.5), withMax(20))), 20, newSeqSim(1), 40, seqArm{errRate: 0.05}, seqArm{errRate: 0.005})
	if d.Verdict != Failed || looks != 5 || !strings.Contains(d.Message, "critical: fails the run on its own") {
		t.Errorf("critical: %s at look %d, want Failed at 5: %s", d.Verdict, looks, d.Message)
	}
}

func TestKayentaIdenticalCanaryPassesAtTheLimit(t *testing.T) {
	for _, compare := range []string{spec.JudgeCompareErrorRate, spec.JudgeCompareLatency} {
		t.Run(compare, func(t *testing.T) {
			j := kayentaMustJudge(t, kayentaSpec(compare, withTol(0.25), withMax(10)))
			arm := seqArm{errRate: 0.01, median: 0.1}
			d, looks, _ := kayentaRun(t, j, 30, newSeqSim(2), 40, arm, arm)
			if d.Verdict != Successful || looks != 10 {
				t.Fatalf("verdict %s after %d looks, want Successful at 10: %s", d.Verdict, looks, d.Message)
			}
			if d.Evidence.Label != "Pass" || !strings.Contains(d.Message, "maxSamples 10 points reached") {
				t.Errorf("label %q, message %q", d.Evidence.Label, d.Message)
			}
		})
	}
}

func TestKayentaLatencyRegressionFails(t *testing.T) {
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareLatency, withTol(0.25), withMax(20)))
	d, looks, _ := kayentaRun(t, j, 20, newSeqSim(3), 40, seqArm{median: 0.2}, seqArm{median: 0.1})
	if d.Verdict != Failed || d.Evidence.Label != "High" {
		t.Fatalf("verdict %s (label %s) after %d looks, want Failed High: %s", d.Verdict, d.Evidence.Label, looks, d.Message)
	}
	for _, want := range []string{"canary p99 per interval", " ms vs stable ", "label High"} {
		if !strings.Contains(d.Message, want) {
			t.Errorf("message %q lacks %q", d.Message, want)
		}
	}
	if !strings.Contains(d.Evidence.IntervalOf, "p99 per interval ms") || d.Evidence.Canary.Quantiles["p99"] <= d.Evidence.Stable.Quantiles["p99"] {
		t.Errorf("evidence %+v", d.Evidence)
	}
}

// The tolerance is the meanRatio effect size: a canary 20% worse on every
// interval is significant but within a 50% tolerance, so it passes; with
// no tolerance it fails.
func TestKayentaToleranceIsTheMeanRatio(t *testing.T) {
	c, st := seqArm{errRate: 0.06}, seqArm{errRate: 0.05}
	d, _, _ := kayentaRun(t, kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withTol(0.5), withMax(30))), 30, newSeqSim(4), 400, c, st)
	if d.Verdict != Successful {
		t.Errorf("tolerance 0.5: %s: %s", d.Verdict, d.Message)
	}
	d, _, _ = kayentaRun(t, kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withTol(0), withMax(30))), 30, newSeqSim(4), 400, c, st)
	if d.Verdict != Failed {
		t.Errorf("tolerance 0: %s: %s", d.Verdict, d.Message)
	}
}

func TestKayentaDirections(t *testing.T) {
	better, st := seqArm{errRate: 0.001}, seqArm{errRate: 0.05}
	for _, tc := range []struct {
		dir   string
		want  Verdict
		label string
	}{
		{spec.DirectionIncrease, Successful, "Pass"},
		{spec.DirectionDecrease, Failed, "Low"},
		{spec.DirectionEither, Failed, "Low"},
	} {
		j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withDir(tc.dir), withMax(8)))
		d, _, _ := kayentaRun(t, j, 8, newSeqSim(5), 100, better, st)
		if d.Verdict != tc.want || d.Evidence.Label != tc.label {
			t.Errorf("direction %s: %s (label %s), want %s (%s): %s", tc.dir, d.Verdict, d.Evidence.Label, tc.want, tc.label, d.Message)
		}
	}
}

// A batch without requests is NaN for that version and dropped (Kayenta's
// NaN strategy remove): it neither counts towards minSamples nor moves the
// classification.
func TestKayentaEmptyBatchesAreDropped(t *testing.T) {
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, withMax(20)))
	s := newSeqSim(6)
	arm := seqArm{errRate: 0.01, median: 0.1} // histograms too, which an error-rate judge must not keep
	var state []byte
	assess := func(in Input) Decision {
		t.Helper()
		d, next, err := j.Assess(state, in)
		if err != nil {
			t.Fatal(err)
		}
		state = next
		return d
	}
	for range 4 {
		assess(kayentaInterval(s, 40, arm, arm))
	}
	idle := s.in // no traffic since the last call
	for range 3 {
		idle.Elapsed += time.Minute
		if d := assess(idle); d.Verdict != NoData || !strings.Contains(d.Message, "4/4 points") {
			t.Fatalf("idle minute: %s: %s", d.Verdict, d.Message)
		}
	}
	st := decodeKayentaState(t, state)
	if st.Canary.Latency != nil || st.Stable.Latency != nil {
		t.Errorf("an error-rate judge kept the histograms in its state")
	}
	if len(st.Canary.Points) != 7 || st.Canary.Points[4] != nil || st.Stable.Points[6] != nil {
		t.Errorf("canary points %v: want 7 with the last three null", st.Canary.Points)
	}
	if d := assess(kayentaInterval(s, 40, arm, arm)); d.Verdict != Continue || !strings.Contains(d.Message, "5/5 points") {
		t.Errorf("fifth real interval: %s: %s", d.Verdict, d.Message)
	}
}

// Counters that go back (a reset) give no point for that call, and the
// next batch is measured from the counters after the reset.
func TestKayentaResetRestartsTheBatch(t *testing.T) {
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate))
	in := Input{Canary: counts(1000, 10), Stable: counts(1000, 10)}
	_, state, err := j.Assess(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Canary = counts(100, 50) // reset: fewer requests than before
	in.Stable = counts(2000, 30)
	if _, state, err = j.Assess(state, in); err != nil {
		t.Fatal(err)
	}
	in.Canary = counts(300, 60)
	if _, state, err = j.Assess(state, in); err != nil {
		t.Fatal(err)
	}
	st := decodeKayentaState(t, state)
	got := func(p *float64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	if len(st.Canary.Points) != 3 || *st.Canary.Points[0] != 0.01 || st.Canary.Points[1] != nil || *st.Canary.Points[2] != 0.05 {
		t.Errorf("canary points %v %v %v, want 0.01, null, 0.05 (10 errors in the 200 requests after the reset)",
			got(st.Canary.Points[0]), got(st.Canary.Points[1]), got(st.Canary.Points[2]))
	}
	if *st.Stable.Points[1] != 0.02 || st.Stable.Points[2] != nil {
		t.Errorf("stable points %v %v, want 0.02 then null (no new requests)", got(st.Stable.Points[1]), got(st.Stable.Points[2]))
	}
	// A histogram bucket going back is a reset too.
	lj := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareLatency))
	h := seqBuckets(map[int32]uint64{-200: 10, -150: 5})
	_, state, err = lj.Assess(nil, Input{Canary: latencySample(15, h), Stable: latencySample(15, h)})
	if err != nil {
		t.Fatal(err)
	}
	back := seqBuckets(map[int32]uint64{-200: 12, -150: 4})
	if _, state, err = lj.Assess(state, Input{Canary: latencySample(16, back), Stable: latencySample(15, h)}); err != nil {
		t.Fatal(err)
	}
	if st := decodeKayentaState(t, state); st.Canary.Points[1] != nil {
		t.Errorf("a bucket going back gave the point %v, want null", *st.Canary.Points[1])
	}
}

// The state is the whole judge: a judge that is given it back after a
// restart (a new value, the state through JSON) decides exactly as one that
// ran on, and a state written for other points is refused.
func TestKayentaResumeMatchesUninterrupted(t *testing.T) {
	js := kayentaSpec(spec.JudgeCompareLatency, withTol(0.1), withMax(12))
	s := newSeqSim(7)
	a := kayentaMustJudge(t, js)
	var stateA, stateB []byte
	for look := 1; look <= 12; look++ {
		in := kayentaInterval(s, 30, seqArm{median: 0.11}, seqArm{median: 0.1})
		dA, nextA, err := a.Assess(stateA, in)
		if err != nil {
			t.Fatal(err)
		}
		var roundTrip kayentaState
		if len(stateB) > 0 {
			if err := json.Unmarshal(stateB, &roundTrip); err != nil {
				t.Fatal(err)
			}
			if stateB, err = json.Marshal(roundTrip); err != nil {
				t.Fatal(err)
			}
		}
		dB, nextB, err := kayentaMustJudge(t, js).Assess(stateB, in)
		if err != nil {
			t.Fatal(err)
		}
		if dA.Verdict != dB.Verdict || dA.Message != dB.Message || !bytes.Equal(nextA, nextB) {
			t.Fatalf("look %d: uninterrupted %s %q, resumed %s %q", look, dA.Verdict, dA.Message, dB.Verdict, dB.Message)
		}
		stateA, stateB = nextA, nextB
	}
	other := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareLatency, withTol(0.1), withMax(12), func(j *spec.Judge) { j.Quantile = seqPtr(0.5) }))
	if _, _, err := other.Assess(stateA, s.in); err == nil || !strings.Contains(err.Error(), "written for other points") {
		t.Errorf("a p99 series resumed as p50: %v", err)
	}
	if _, _, err := a.Assess([]byte("{"), s.in); err == nil {
		t.Error("a broken state was accepted")
	}
}

// The series is bounded: beyond spec.KayentaMaxPoints the oldest points go.
func TestKayentaSeriesIsBounded(t *testing.T) {
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate))
	var state []byte
	in := Input{}
	for i := range spec.KayentaMaxPoints + 5 {
		in.Canary.Requests += 100
		in.Canary.Errors += int64(i % 3)
		in.Stable.Requests += 100
		in.Stable.Errors += int64(i % 3)
		var err error
		if _, state, err = j.Assess(state, in); err != nil {
			t.Fatal(err)
		}
	}
	st := decodeKayentaState(t, state)
	if len(st.Canary.Points) != spec.KayentaMaxPoints || st.Canary.Dropped != 5 || *st.Canary.Points[0] != 0.02 {
		t.Errorf("%d points, %d dropped, first %v: want %d, 5, 0.02 (call 5, i%%3 = 2)", len(st.Canary.Points), st.Canary.Dropped, *st.Canary.Points[0], spec.KayentaMaxPoints)
	}
}

func TestKayentaLimits(t *testing.T) {
	arm := seqArm{errRate: 0.01}
	// maxDuration before minSamples points: NoData that says so.
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, func(j *spec.Judge) { j.MaxDuration = seqPtr(spec.Duration(2 * time.Minute)) }))
	d, _, _ := kayentaRun(t, j, 3, newSeqSim(8), 40, arm, arm)
	if d.Verdict != NoData || !strings.Contains(d.Message, "maxDuration 2m0s reached without enough points") {
		t.Errorf("%s: %s", d.Verdict, d.Message)
	}
	// maxDuration with enough points and a Pass: Successful.
	j = kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate, func(j *spec.Judge) { j.MaxDuration = seqPtr(spec.Duration(6 * time.Minute)) }))
	d, looks, _ := kayentaRun(t, j, 10, newSeqSim(8), 40, arm, arm)
	if d.Verdict != Successful || looks != 6 {
		t.Errorf("look %d: %s: %s", looks, d.Verdict, d.Message)
	}
}

// At a limit a Pass is the verdict: onLimit inconclusive is only for a
// classifier that could not classify (label Error), not for a pass.
func TestKayentaPassAtLimitIgnoresOnLimit(t *testing.T) {
	c := kayentaConfig{compare: spec.JudgeCompareErrorRate, alpha: 0.02, up: true, minPoints: 5, maxPoints: 5, onLimitPass: false}
	pts := func(v ...float64) kayentaSeries {
		var s kayentaSeries
		for _, x := range v {
			s.Points = append(s.Points, &x)
		}
		return s
	}
	d := c.decide(kayentaState{Canary: pts(0.01, 0.02, 0.01, 0.03, 0.01), Stable: pts(0.02, 0.01, 0.01, 0.02, 0.03)}, Input{})
	if d.Verdict != Successful || d.Evidence.Label != "Pass" {
		t.Errorf("a pass at the limit with onLimit inconclusive: %s (%s): %s", d.Verdict, d.Evidence.Label, d.Message)
	}
	d = c.decide(kayentaState{Canary: pts(0.01, 0.02, 0.01, 0.03), Stable: pts(0.02, 0.01, 0.01, 0.02, 0.03)}, Input{})
	if d.Verdict != NoData {
		t.Errorf("4 canary points: %s: %s", d.Verdict, d.Message)
	}
}

func TestKayentaRejectsBadSpecsAndInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		j    spec.Judge
		want string
	}{
		{"too few points", kayentaSpec(spec.JudgeCompareErrorRate, withMin(4)), "fewer than 5 points"},
		{"alpha demands more", kayentaSpec(spec.JudgeCompareErrorRate, withAlpha(0.001), withMin(5)), "fewer than 8 points"},
		{"too many points", kayentaSpec(spec.JudgeCompareErrorRate, withMax(1001)), "at most 1000 points"},
		{"max below min", kayentaSpec(spec.JudgeCompareErrorRate, withMin(10), withMax(6)), "maxSamples 6 is below minSamples 10"},
		{"quantile on error rate", kayentaSpec(spec.JudgeCompareErrorRate, func(j *spec.Judge) { j.Quantile = seqPtr(0.9) }), "quantile applies only"},
		{"unknown direction", kayentaSpec(spec.JudgeCompareLatency, withDir("up")), "unknown direction"},
		{"wrong method", spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodFixed}, "built for method"},
	} {
		_, err := NewKayenta(tc.j)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
	j := kayentaMustJudge(t, kayentaSpec(spec.JudgeCompareErrorRate))
	if _, _, err := j.Assess(nil, Input{Canary: provider.Sample{Requests: 5, Errors: 6}}); err == nil || !strings.Contains(err.Error(), "6 errors in 5 requests") {
		t.Errorf("more errors than requests: %v", err)
	}
}
