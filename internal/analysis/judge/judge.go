// Package judge compares canary with stable statistically (SPEC §5.4,
// statistics.md): error rates by counts, latency by histograms, with
// anytime-valid sequential tests (method sequential), fixed-horizon tests
// (method fixed) or Kayenta's classifier on per-interval series (method
// kayenta). Judges are pure: the analysis engine hands them the data
// since the run started and the state they returned last time, and persists
// the new state, so a restart resumes a sequential test instead of
// restarting it.
package judge

import (
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/provider"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Verdict is a judge's answer for one evaluation.
type Verdict string

// Verdicts. Continue means no decision yet (the measurement stays Running);
// NoData means fewer than minSamples per version.
const (
	Continue     Verdict = "Running"
	Successful   Verdict = "Successful"
	Failed       Verdict = "Failed"
	Inconclusive Verdict = "Inconclusive"
	NoData       Verdict = "NoData"
)

// Input is what a judge sees at one evaluation: each version's cumulative
// data since the run started, and how long the run has been going.
type Input struct {
	Canary, Stable provider.Sample
	Elapsed        time.Duration
}

// Decision is a verdict with its explanation.
type Decision struct {
	Verdict  Verdict
	Evidence model.Evidence
	// Message states the reason in one sentence with the numbers, e.g.
	// `canary error rate 10.2% vs stable 0.1% (n=812/15402): e-value 412 > 100`.
	Message string
}

// Judge evaluates one metric. State is opaque to the caller: nil on the
// first call, then whatever the previous call returned. Judge must not keep
// anything between calls except through the state.
type Judge interface {
	Assess(state []byte, in Input) (d Decision, next []byte, err error)
}

// New builds the judge a metric's judge spec asks for (defaults filled in
// by spec.SetDefaults): the sequential, the fixed-horizon or Kayenta's.
func New(j spec.Judge) (Judge, error) {
	switch j.Method {
	case spec.JudgeMethodSequential, "":
		return NewSequential(j)
	case spec.JudgeMethodFixed:
		return NewFixed(j)
	case spec.JudgeMethodKayenta:
		return NewKayenta(j)
	}
	return nil, fmt.Errorf("judge method %q: use %s, %s or %s", j.Method, spec.JudgeMethodSequential, spec.JudgeMethodFixed, spec.JudgeMethodKayenta)
}
