package spec

import "math"

// Settings of judge method kayenta that validation and the judge share.
const (
	// KayentaDefaultAlpha makes the classifier's interval the 98 % one
	// Kayenta's judge uses.
	KayentaDefaultAlpha = 0.02
	// KayentaMaxPoints bounds the per-version series a kayenta judge keeps
	// in its persisted state (one point per evaluation); older points are
	// dropped. It also bounds maxSamples and minSamples, which count points.
	KayentaMaxPoints = 1000
)

// KayentaMinPoints is the fewest points per version with which the
// Mann-Whitney interval at level 1−alpha can exclude zero at all: the
// largest standardised rank statistic of n against n points, with every
// canary point above every stable one, is (n²/2 − ½)/√(n²(2n+1)/12), and
// it must reach the normal quantile z(1−alpha/2). Below it the classifier
// could only ever answer Pass, so a verdict would be a pass for lack of
// data. For alpha 0.02 it is 5 (4 points reach z 2.17 < 2.33).
func KayentaMinPoints(alpha float64) int64 {
	if !(alpha > 0 && alpha < 1) {
		return 1
	}
	z := math.Sqrt2 * math.Erfinv(1-alpha)
	for n := 1.0; n <= KayentaMaxPoints; n++ {
		if (n*n/2-0.5)/math.Sqrt(n*n*(2*n+1)/12) >= z {
			return int64(n)
		}
	}
	return KayentaMaxPoints + 1
}

// kayentaJudge checks what only method kayenta asks: its sample counts are
// points (one per evaluation), at most KayentaMaxPoints, and enough for
// its interval to be able to exclude zero.
func (v *validator) kayentaJudge(p FieldPath, j Judge) {
	alpha := KayentaDefaultAlpha
	if j.Alpha != nil && *j.Alpha > 0 && *j.Alpha < 1 {
		alpha = *j.Alpha
	}
	least := KayentaMinPoints(alpha)
	if least > KayentaMaxPoints {
		v.add(p.Child("alpha"), "method kayenta: alpha %v needs more than %d points per version before its interval can exclude zero; use a larger alpha", alpha, KayentaMaxPoints)
	}
	if j.MinSamples != nil {
		switch n := *j.MinSamples; {
		case n > KayentaMaxPoints:
			v.add(p.Child("minSamples"), "method kayenta keeps at most %d points per version, not %d", KayentaMaxPoints, n)
		case n >= 0 && n < least:
			v.add(p.Child("minSamples"), "method kayenta: with %d points per version the %v interval can never exclude zero, so the judge could only pass; use at least %d", n, 1-alpha, least)
		}
	}
	if j.MaxSamples != nil && *j.MaxSamples > KayentaMaxPoints {
		v.add(p.Child("maxSamples"), "method kayenta keeps at most %d points per version, not %d", KayentaMaxPoints, *j.MaxSamples)
	}
	if j.Groups != nil && len(j.Groups) == 0 {
		v.add(p.Child("groups"), "lists no group: leave it out for a group named after the metric")
	}
	seen := nameSet{}
	for i, g := range j.Groups {
		if g == "" {
			v.add(p.Child("groups").Index(i), "a group name is required")
			continue
		}
		v.unique(seen, p.Child("groups").Index(i), "group", g)
	}
}

// kayentaScore checks a kayentaScore block on its own: weights of named
// groups, each at least 0 and together at most 100, and 0 ≤ marginal ≤
// pass ≤ 100 (an unset threshold is its default). Whether the groups exist
// is known only once the run's templates are merged.
func (v *validator) kayentaScore(p FieldPath, s KayentaScore) {
	sum := 0.0
	for _, g := range sortedKeys(s.GroupWeights) {
		w := s.GroupWeights[g]
		wp := p.Child("groupWeights").Key(g)
		switch {
		case g == "":
			v.add(wp, "a group name is required")
		case !v.finite(wp, w):
		case w < 0:
			v.add(wp, "a weight is at least 0, not %v", w)
		default:
			sum += w
		}
	}
	if sum > 100 {
		v.add(p.Child("groupWeights"), "the weights sum to %v; at most 100", sum)
	}
	for _, t := range []struct {
		name string
		x    *float64
	}{{"pass", s.Pass}, {"marginal", s.Marginal}} {
		if t.x != nil && v.finite(p.Child(t.name), *t.x) && (*t.x < 0 || *t.x > 100) {
			v.add(p.Child(t.name), "a score threshold is 0 to 100, not %v", *t.x)
		}
	}
	if pass, marginal := s.Thresholds(); marginal > pass {
		v.add(p.Child("marginal"), "marginal %v is above pass %v; 0 ≤ marginal ≤ pass ≤ 100", marginal, pass)
	}
}

// ValidateKayentaScore checks a merged kayentaScore (a run's), with
// messages under the path "kayentaScore".
func ValidateKayentaScore(s KayentaScore) FieldErrors {
	v := &validator{}
	v.kayentaScore("kayentaScore", s)
	return v.errs
}
