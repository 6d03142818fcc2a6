package analysis

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// scoring is what the run's Kayenta score rules need: the score, and
// whether every scored metric has a label yet.
type scoring struct {
	score *model.KayentaScore
	// scored counts the metrics the score weighs: the judge.method kayenta
	// ones that are not dry-run (Kayenta leaves muted metrics out).
	scored int
	// labelled: every scored metric has a label other than Nodata.
	labelled bool
}

// kayentaScore is Kayenta's score over the latest labels of the run's
// judge.method kayenta metrics (stats.KayentaScoreRun), with the run's
// Scoring (group weights, thresholds; Kayenta's defaults without it). A
// metric's groups are judge.groups, else one named after it; judge.critical
// marks it critical. Dry-run metrics are shown but left out, as Kayenta
// leaves out muted ones. A metric not classified yet counts as Nodata, so
// the score is 0 while half or more of them have no label.
func kayentaScore(r Run, metrics []spec.Metric) scoring {
	var in []stats.KayentaMetric
	labels := map[string]string{}
	out := scoring{labelled: true}
	for i, m := range metrics {
		if m.Judge == nil || m.Judge.Method != spec.JudgeMethodKayenta || i >= len(r.Metrics) {
			continue
		}
		mr := r.Metrics[i]
		label := latestLabel(mr)
		labels[m.Name] = string(label)
		in = append(in, stats.KayentaMetric{Name: m.Name, Groups: m.Judge.ScoreGroups(m.Name), Label: label,
			Critical: m.Judge.Critical, Muted: mr.DryRun})
		if !mr.DryRun {
			out.scored++
			out.labelled = out.labelled && label != stats.KayentaNodata
		}
	}
	if len(in) == 0 {
		return scoring{}
	}
	pass, marginal := r.Scoring.Thresholds()
	var weights map[string]float64
	if r.Scoring != nil {
		weights = r.Scoring.GroupWeights
	}
	s := stats.KayentaScoreRun(in, weights, pass, marginal)
	out.score = &model.KayentaScore{
		Score: s.Summary, Classification: s.Classification, Reason: s.Reason,
		PassAt: pass, MarginalAt: marginal, Labels: labels, GroupScores: s.GroupScores,
	}
	return out
}

// latestLabel is the label of the metric's newest classified measurement,
// Nodata before the first.
func latestLabel(mr MetricRun) stats.KayentaLabel {
	for j := len(mr.Measurements) - 1; j >= 0; j-- {
		if e := mr.Measurements[j].Evidence; e != nil && e.Label != "" {
			return stats.KayentaLabel(e.Label)
		}
	}
	return stats.KayentaNodata
}

// labelFailure reports whether a measurement's Failed is a kayenta label's
// alone: the judge of a metric that is not critical said Failed at its
// limit because the label is High or Low (a condition beside the judge,
// or onNoData fail, fails the run as before). Such a failure lowers the
// run's score, and the score decides the run.
func labelFailure(m spec.Metric, meas Measurement, judgeDecided bool) bool {
	if !judgeDecided || meas.Phase != PhaseFailed || m.Judge == nil || m.Judge.Method != spec.JudgeMethodKayenta || m.Judge.Critical {
		return false
	}
	e := meas.Evidence
	return e != nil && (e.Label == string(stats.KayentaHigh) || e.Label == string(stats.KayentaLow))
}

// assessScore applies Kayenta's multi-interval rule to a running run: once
// every scored metric has a label, a score at or below marginal fails the
// run. A run without scored metrics is returned unchanged.
func assessScore(r Run, sc scoring, now time.Time) Run {
	if r.Phase != PhaseRunning || sc.score == nil || sc.scored == 0 || !sc.labelled || sc.score.Score > sc.score.MarginalAt {
		return r
	}
	why := fmt.Sprintf("kayenta score %s ≤ marginal %s once every kayenta metric has a label", num(sc.score.Score), num(sc.score.MarginalAt))
	r = endRunning(r, now, why)
	r.Phase = PhaseFailed
	r.Score.Decided = true
	r.Message = scoreMessage(why, *sc.score) + dryRunNote(r)
	return r
}

// finalScore is the run's phase by its score when it would otherwise end
// Successful: Failed when the last score is below pass. ok is false when
// the score does not apply: no scored metric, or (for a terminated run)
// one without a label yet.
func finalScore(sc scoring, terminated bool) (failed bool, why string, ok bool) {
	if sc.score == nil || sc.scored == 0 || (terminated && !sc.labelled) {
		return false, "", false
	}
	s := *sc.score
	if s.Score < s.PassAt {
		return true, fmt.Sprintf("kayenta score %s below pass %s at the end of the run", num(s.Score), num(s.PassAt)), true
	}
	return false, fmt.Sprintf("kayenta score %s ≥ pass %s", num(s.Score), num(s.PassAt)), true
}

// scoreMessage explains a run the score decided: why, the thresholds and
// each metric's label (and a reason that overrode the weighted sum).
func scoreMessage(why string, s model.KayentaScore) string {
	names := slices.Sorted(maps.Keys(s.Labels))
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i] = fmt.Sprintf("%q %s", n, s.Labels[n])
	}
	over := ""
	if s.Reason != "" {
		over = "; " + s.Reason
	}
	return fmt.Sprintf("%s (pass ≥ %s, marginal ≤ %s fails%s): %s", why, num(s.PassAt), num(s.MarginalAt), over, strings.Join(labels, ", "))
}

func num(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// cloneScore copies a score so that runs share nothing mutable.
func cloneScore(s *model.KayentaScore) *model.KayentaScore {
	if s == nil {
		return nil
	}
	c := *s
	c.Labels = maps.Clone(s.Labels)
	c.GroupScores = maps.Clone(s.GroupScores)
	return &c
}
