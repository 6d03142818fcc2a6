package judge

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// seqErrJudge is an error-rate judge at α 0.01; abs < 0 leaves
// maxAbsoluteIncrease unset (its default).
func seqErrJudge(tol, abs float64, maxDur time.Duration) spec.Judge {
	j := spec.Judge{Compare: spec.JudgeCompareErrorRate, Alpha: seqPtr(0.01), MaxRelativeIncrease: seqPtr(tol)}
	if abs >= 0 {
		j.MaxAbsoluteIncrease = seqPtr(abs)
	}
	if maxDur > 0 {
		j.MaxDuration = seqPtr(spec.Duration(maxDur))
	}
	return j
}

// Neither version has any error: without a margin the ratio is never
// bounded and the judge waits for its limit; with maxAbsoluteIncrease 0.2
// points it passes once the canary's bound is under 0.2%, after about
// ln(2/α')/0.002 ≈ 3,100 canary requests (α' = 3/8 α).
func TestSequentialErrorRateMarginPassesACanaryWithoutErrors(t *testing.T) {
	clean := func(sim *seqSim) func(int) Input {
		return func(int) Input { return sim.step(1000, 0.05, seqArm{}, seqArm{}) }
	}
	d, looks, _ := seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0, 10*time.Minute)), 300, clean(newSeqSim(1)))
	if d.Verdict != Continue || !strings.Contains(d.Message, "ratio not bounded yet") {
		t.Fatalf("without a margin, after %d looks: %s %q", looks, d.Verdict, d.Message)
	}
	// The default margin, 0.1 points: twice the requests.
	d, looks, _ = seqRun(t, seqMustJudge(t, seqErrJudge(0.5, -1, 10*time.Minute)), 300, clean(newSeqSim(1)))
	if d.Verdict != Successful || looks < 90 || looks > 160 {
		t.Fatalf("with the default margin, after %d looks: %s %q", looks, d.Verdict, d.Message)
	}
	d, looks, _ = seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0.2, 10*time.Minute)), 300, clean(newSeqSim(1)))
	if d.Verdict != Successful {
		t.Fatalf("with a 0.2-point margin, after %d looks: %s %q", looks, d.Verdict, d.Message)
	}
	if looks < 40 || looks > 90 {
		t.Errorf("passed after %d s at 50 canary req/s, want about 63 s (3,140 requests)", looks)
	}
	for _, want := range []string{"non-inferiority shown", "canary rate <", "stable + 0.2%"} {
		if !strings.Contains(d.Message, want) {
			t.Errorf("message %q lacks %q", d.Message, want)
		}
	}
	t.Logf("passed after %d s: %s", looks, d.Message)
}

// Failing needs both tolerances exceeded: 0.3% against 0.1% triples the
// rate (beyond ×1.5) but adds only 0.2 points (within 0.5).
func TestSequentialErrorRateMarginFailsOnlyBeyondBoth(t *testing.T) {
	worse := func(sim *seqSim) func(int) Input {
		return func(int) Input { return sim.step(2000, 0.25, seqArm{errRate: 0.003}, seqArm{errRate: 0.001}) }
	}
	d, looks, _ := seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0, 0)), 600, worse(newSeqSim(2)))
	if d.Verdict != Failed {
		t.Fatalf("without a margin, ratio 3 against 1.5: after %d looks %s %q", looks, d.Verdict, d.Message)
	}
	d, looks, _ = seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0.5, 0)), 600, worse(newSeqSim(2)))
	if d.Verdict == Failed {
		t.Fatalf("with a 0.5-point margin, +0.2 points failed after %d looks: %q", looks, d.Message)
	}
	if d.Verdict != Successful || !strings.Contains(d.Message, "non-inferiority shown") {
		t.Logf("after %d looks: %s %q", looks, d.Verdict, d.Message)
	}
	// Beyond both: 2% against 0.1% (+1.9 points).
	bad := func(sim *seqSim) func(int) Input {
		return func(int) Input { return sim.step(2000, 0.25, seqArm{errRate: 0.02}, seqArm{errRate: 0.001}) }
	}
	d, looks, _ = seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0.5, 0)), 600, bad(newSeqSim(2)))
	if d.Verdict != Failed {
		t.Fatalf("2%% against 0.1%% with a 0.5-point margin: after %d looks %s %q", looks, d.Verdict, d.Message)
	}
	t.Logf("failed after %d s: %s", looks, d.Message)
}

// A regression too small for the e-values within the horizon is caught by
// the one look at maxDuration; without a limit there is no look and the
// judge goes on.
func TestSequentialErrorRateHorizonLook(t *testing.T) {
	// Deterministic batches: canary 1% (2 of 200 per second), stable 0.5%
	// (19 of 3800): ratio 2 against a tolerated 1.5.
	in := func(i int) Input {
		var x Input
		x.Canary.Requests, x.Canary.Errors = int64(200*i), int64(2*i)
		x.Stable.Requests, x.Stable.Errors = int64(3800*i), int64(19*i)
		x.Elapsed = time.Duration(i) * time.Second
		return x
	}
	d, looks, state := seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0, 60*time.Second)), 60, in)
	if d.Verdict != Failed || looks != 60 || !strings.Contains(d.Message, "fixed-horizon look at the limit") {
		t.Fatalf("after %d looks: %s %q", looks, d.Verdict, d.Message)
	}
	var s seqErrorRateState
	if err := json.Unmarshal(state, &s); err != nil || s.Horizon == nil || !s.Horizon.Looked || !s.Horizon.Rejected {
		t.Fatalf("state after the look: %s (%v)", state, err)
	}
	if math.Exp(s.MaxLogE) >= 5/0.01 {
		t.Fatalf("the e-values decided (e = %v), the test needs a case they miss", math.Exp(s.MaxLogE))
	}
	d, _, _ = seqRun(t, seqMustJudge(t, seqErrJudge(0.5, 0, 0)), 60, in)
	if d.Verdict != Continue {
		t.Fatalf("without a limit: %s %q", d.Verdict, d.Message)
	}
}

// A state written before the horizon look existed (the old fingerprint, no
// horizon) resumes under its old rules: all of α on the e-values, no look.
func TestSequentialErrorRateResumesALegacyState(t *testing.T) {
	j := seqMustJudge(t, seqErrJudge(0.5, 0, 60*time.Second)).(*seqErrorRateJudge)
	legacy := seqErrorRateState{V: seqStateVersion, Key: j.c.legacyKey(), Up: j.newGrid()}
	state, _ := json.Marshal(legacy)
	in := func(i int) Input {
		var x Input
		x.Canary.Requests, x.Canary.Errors = int64(200*i), int64(2*i)
		x.Stable.Requests, x.Stable.Errors = int64(3800*i), int64(19*i)
		x.Elapsed = time.Duration(i) * time.Second
		return x
	}
	var d Decision
	var err error
	for i := 1; i <= 60; i++ {
		d, state, err = j.Assess(state, in(i))
		if err != nil {
			t.Fatalf("look %d: %v", i, err)
		}
	}
	var s seqErrorRateState
	_ = json.Unmarshal(state, &s)
	if s.Horizon != nil || s.Key != j.c.legacyKey() || d.Verdict != Successful || !strings.Contains(d.Message, "= 1/α") {
		t.Fatalf("legacy state: %s %q, state %s", d.Verdict, d.Message, state)
	}
	// A fresh state under the same configuration has the look.
	_, fresh, _ := j.Assess(nil, in(1))
	_ = json.Unmarshal(fresh, &s)
	if s.Horizon == nil || s.Key != j.c.key() || s.Key == j.c.legacyKey() {
		t.Fatalf("fresh state: %s", fresh)
	}
}

func TestSequentialErrorRateMarginRejectsBadSpecs(t *testing.T) {
	for _, c := range []struct {
		j    spec.Judge
		want string
	}{
		{spec.Judge{Compare: spec.JudgeCompareLatency, MaxAbsoluteIncrease: seqPtr(0.1)}, "only to compare: error-rate"},
		{spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxAbsoluteIncrease: seqPtr(-0.1)}, "at least 0"},
		{spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxAbsoluteIncrease: seqPtr(100.0)}, "below 100"},
		{spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxAbsoluteIncrease: seqPtr(math.NaN())}, "at least 0"},
	} {
		if _, err := NewSequential(c.j); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.j, err, c.want)
		}
	}
	if _, err := NewFixed(spec.Judge{Compare: spec.JudgeCompareErrorRate, Method: spec.JudgeMethodFixed, MaxAbsoluteIncrease: seqPtr(0.1)}); err == nil {
		t.Error("the fixed judge accepted maxAbsoluteIncrease")
	}
}
