package analysis

import (
	"maps"

	"github.com/coalmine-dev/coalmine/internal/analysis/stats"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Kayenta's default score thresholds (its canary configuration's
// scoreThresholds).
const (
	KayentaPassScore     = 95
	KayentaMarginalScore = 75
)

// kayentaScore is Kayenta's score over the latest labels of the run's
// judge.method kayenta metrics, nil when it has none. Each metric is its
// own group with an equal weight and none is critical: the spec has no
// groups, weights or thresholds yet. Dry-run metrics are left out, as
// Kayenta leaves out muted ones. A metric not classified yet counts as
// Nodata, so the score is 0 until more than half of them have a label.
func kayentaScore(r Run, metrics []spec.Metric) *model.KayentaScore {
	var scored []stats.KayentaMetric
	labels := map[string]string{}
	for i, m := range metrics {
		if m.Judge == nil || m.Judge.Method != spec.JudgeMethodKayenta || i >= len(r.Metrics) {
			continue
		}
		mr := r.Metrics[i]
		label := stats.KayentaNodata
		for j := len(mr.Measurements) - 1; j >= 0; j-- {
			if e := mr.Measurements[j].Evidence; e != nil && e.Label != "" {
				label = stats.KayentaLabel(e.Label)
				break
			}
		}
		labels[m.Name] = string(label)
		scored = append(scored, stats.KayentaMetric{Name: m.Name, Groups: []string{m.Name}, Label: label, Muted: mr.DryRun})
	}
	if len(scored) == 0 {
		return nil
	}
	s := stats.KayentaScoreRun(scored, nil, KayentaPassScore, KayentaMarginalScore)
	return &model.KayentaScore{
		Score: s.Summary, Classification: s.Classification, Reason: s.Reason,
		PassAt: KayentaPassScore, MarginalAt: KayentaMarginalScore, Labels: labels,
	}
}

// cloneScore copies a score so that runs share nothing mutable.
func cloneScore(s *model.KayentaScore) *model.KayentaScore {
	if s == nil {
		return nil
	}
	c := *s
	c.Labels = maps.Clone(s.Labels)
	return &c
}
