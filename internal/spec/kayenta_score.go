package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// MergeKayentaScores merges the kayentaScore blocks of a run's templates
// (a composed template's parts before it, as a run resolves them): the union of their group weights and the
// thresholds any of them sets. Two templates that weigh one group
// differently, or set a threshold to two values, are refused: which one
// the run should follow is the user's call, and either choice would
// silently change what a score of the other template means. The merged
// block must hold as one (weights summing to at most 100, marginal ≤
// pass). It returns nil when no template has a block.
func MergeKayentaScores(flat []*AnalysisTemplate) (*KayentaScore, error) {
	var out *KayentaScore
	weightFrom := map[string]string{}
	var passFrom, marginalFrom string
	for _, t := range flat {
		s := t.Spec.KayentaScore
		if s == nil {
			continue
		}
		name := t.Metadata.Name
		if out == nil {
			out = &KayentaScore{}
		}
		for _, g := range slices.Sorted(maps.Keys(s.GroupWeights)) {
			w := s.GroupWeights[g]
			if prev, ok := out.GroupWeights[g]; ok && prev != w {
				return nil, fmt.Errorf("AnalysisTemplates %q and %q weigh kayenta group %q differently (%v and %v): give it one weight", weightFrom[g], name, g, prev, w)
			}
			if out.GroupWeights == nil {
				out.GroupWeights = map[string]float64{}
			}
			out.GroupWeights[g], weightFrom[g] = w, name
		}
		for _, th := range []struct {
			what string
			from *string
			into **float64
			x    *float64
		}{{"pass", &passFrom, &out.Pass, s.Pass}, {"marginal", &marginalFrom, &out.Marginal, s.Marginal}} {
			switch {
			case th.x == nil:
			case *th.into != nil && **th.into != *th.x:
				return nil, fmt.Errorf("AnalysisTemplates %q and %q set kayentaScore.%s to %v and %v: one run has one threshold", *th.from, name, th.what, **th.into, *th.x)
			default:
				x := *th.x
				*th.into, *th.from = &x, name
			}
		}
	}
	if out == nil {
		return nil, nil
	}
	if errs := ValidateKayentaScore(*out); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return nil, fmt.Errorf("the run's templates' kayentaScore blocks together: %s", strings.Join(msgs, "; "))
	}
	return out, nil
}

// CheckScoreGroups refuses a kayentaScore that scores nothing (the run
// has no judge.method kayenta metric) or weighs a group no kayenta metric
// of the run belongs to: almost always a typo, which would leave the
// intended group a share of the rest instead of its weight.
func CheckScoreGroups(s *KayentaScore, metrics []Metric) error {
	if s == nil {
		return nil
	}
	groups := map[string]bool{}
	for _, m := range metrics {
		if m.Judge != nil && m.Judge.Method == JudgeMethodKayenta {
			for _, g := range m.Judge.ScoreGroups(m.Name) {
				groups[g] = true
			}
		}
	}
	if len(groups) == 0 {
		return fmt.Errorf("kayentaScore is set, but the run has no judge.method kayenta metric to score")
	}
	var unknown []string
	for _, g := range slices.Sorted(maps.Keys(s.GroupWeights)) {
		if !groups[g] {
			unknown = append(unknown, fmt.Sprintf("%q", g))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("kayentaScore.groupWeights weighs %s, which no kayenta metric of the run is in (groups: %s)",
			strings.Join(unknown, ", "), strings.Join(slices.Sorted(maps.Keys(groups)), ", "))
	}
	return nil
}
