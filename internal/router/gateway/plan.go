package gateway

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/router/kube"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

var (
	nestedSlice     = unstructured.NestedSlice
	nestedStringMap = unstructured.NestedStringMap
)

// Limits of an HTTPRoute (the Gateway API CRD's maxItems and its rule on
// the matches of all rules together).
const (
	maxRules        = 16
	maxMatches      = 64
	maxTotalMatches = 128
)

// Want is the routing coalmine wants an HTTPRoute to carry.
type Want struct {
	// Namespace of the HTTPRoute (backendRefs without a namespace are in it).
	Namespace     string
	StableService string
	CanaryService string
	// Owner is the rollout's label in the names of the rules coalmine adds.
	Owner      string
	Generation uint64
	// Weight is the canary's share in basis points.
	Weight       spec.Weight
	HeaderRoutes []spec.HeaderRoute
	// Remove drops the generation annotation instead of setting it (the
	// rollout is no longer coalmine's).
	Remove bool
}

// Observed is what an HTTPRoute carries for one rollout.
type Observed struct {
	Generation uint64
	Weight     spec.Weight
}

// RulePrefix starts the name of every rule coalmine adds to an HTTPRoute
// for rollout owner; the rest of the name numbers the header route and
// the user's rule it copies. Rules are recognised as coalmine's by it
// alone, so users must not name their own rules so.
func RulePrefix(owner string) string { return "coalmine." + owner + "." }

// Plan returns the JSON patch operations that make the HTTPRoute obj (as
// read) route as w says; none when it already does.
//
// The user's rules that send to the stable or canary Service get the
// weights: stable 10000−w and canary w, the basis points themselves (the
// Gateway API splits by weight over the sum, so the share is exact). A
// rule that names only the stable Service gets a backendRef to the canary
// one, a copy of the stable ref (same port) with the other name.
//
// Each header route becomes one rule per such user rule: a copy of it
// whose matches are the user's matches (or the default "/" prefix) each
// with one more header match, sending to the route's version only. The
// Gateway API ranks matches on the same path and method by their number
// of header matches, so these win over the rule they copy whatever their
// place; they are put first so that, between two header routes, the
// earlier one wins, as coalmine's own proxy does.
func Plan(obj map[string]any, w Want) ([]kube.Op, error) {
	rules, found, err := nestedSlice(obj, "spec", "rules")
	if err != nil || !found {
		return nil, fmt.Errorf("has no spec.rules to route by")
	}
	prefix := RulePrefix(w.Owner)
	var user []any
	for _, r := range rules {
		if !ownedRule(r, prefix) {
			user = append(user, runtime.DeepCopyJSONValue(r))
		}
	}
	var managed []int
	for i, r := range user {
		rule, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("rule %d is not an object", i)
		}
		ok, err := setWeights(rule, w)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if ok {
			managed = append(managed, i)
		}
	}
	if len(managed) == 0 {
		return nil, fmt.Errorf("no rule sends to Service %q: add a backendRef to it (kind Service) in the rule coalmine is to split", w.StableService)
	}
	var owned []any
	for h, hr := range w.HeaderRoutes {
		for _, i := range managed {
			r, err := headerRule(user[i].(map[string]any), hr, w, fmt.Sprintf("%s%d-%d-%s", prefix, h, i, kube.Label(hr.Name)))
			if err != nil {
				return nil, fmt.Errorf("header route %q: %w", hr.Name, err)
			}
			owned = append(owned, r)
		}
	}
	want := append(owned, user...)
	if err := limits(want); err != nil {
		return nil, err
	}
	gen := strconv.FormatUint(w.Generation, 10)
	if w.Remove {
		gen = ""
	}
	ops := kube.Annotations(obj, map[string]string{AnnotationGeneration: gen})
	return append(ops, kube.ListOps("/spec/rules", rules, owned, user, func(r any) bool { return ownedRule(r, prefix) })...), nil
}

func ownedRule(r any, prefix string) bool {
	m, ok := r.(map[string]any)
	if !ok {
		return false
	}
	name, _ := m["name"].(string)
	return strings.HasPrefix(name, prefix)
}

// serviceRef reports which of the two Services ref names ("" for neither).
func serviceRef(ref map[string]any, w Want) string {
	if g, _ := ref["group"].(string); g != "" {
		return ""
	}
	if k, ok := ref["kind"].(string); ok && k != "Service" {
		return ""
	}
	if ns, _ := ref["namespace"].(string); ns != "" && ns != w.Namespace {
		return ""
	}
	switch name, _ := ref["name"].(string); name {
	case w.StableService:
		return "stable"
	case w.CanaryService:
		return "canary"
	}
	return ""
}

// setWeights gives rule's refs to the two Services their weights, adding
// the canary ref if missing; it reports whether the rule sends to them.
func setWeights(rule map[string]any, w Want) (bool, error) {
	refs, _, _ := nestedSlice(rule, "backendRefs")
	stable, canary := -1, -1
	for i, r := range refs {
		ref, ok := r.(map[string]any)
		if !ok {
			return false, fmt.Errorf("backendRef %d is not an object", i)
		}
		switch serviceRef(ref, w) {
		case "stable":
			stable = i
		case "canary":
			canary = i
		}
	}
	if stable < 0 && canary < 0 {
		return false, nil
	}
	if stable < 0 {
		return false, fmt.Errorf("sends to the canary Service %q but not to the stable Service %q: add a backendRef to %q", w.CanaryService, w.StableService, w.StableService)
	}
	for i, r := range refs {
		if i != stable && i != canary {
			name, _ := r.(map[string]any)["name"].(string)
			return false, fmt.Errorf("sends to %q besides the stable and canary Services: coalmine sets the whole split of a rule, so give that backend a rule of its own", name)
		}
	}
	if canary < 0 {
		ref := runtime.DeepCopyJSONValue(refs[stable]).(map[string]any)
		ref["name"] = w.CanaryService
		delete(ref, "filters")
		refs = append(refs, ref)
		canary = len(refs) - 1
	}
	refs[stable].(map[string]any)["weight"] = int64(spec.MaxWeight - w.Weight)
	refs[canary].(map[string]any)["weight"] = int64(w.Weight)
	rule["backendRefs"] = refs
	return true, nil
}

// headerRule is the rule that sends rule's requests matching hr to hr's
// version.
func headerRule(rule map[string]any, hr spec.HeaderRoute, w Want, name string) (map[string]any, error) {
	out := runtime.DeepCopyJSONValue(rule).(map[string]any)
	out["name"] = name
	svc := w.CanaryService
	if hr.To == spec.RoleStable {
		svc = w.StableService
	}
	var ref map[string]any
	for _, r := range out["backendRefs"].([]any) {
		if m := r.(map[string]any); m["name"] == svc && serviceRef(m, w) != "" {
			ref = m
		}
	}
	ref["weight"] = int64(1)
	out["backendRefs"] = []any{ref}
	matches, _, _ := nestedSlice(rule, "matches")
	if len(matches) == 0 {
		matches = []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}}
	}
	var ms []any
	for _, m := range matches {
		for _, hm := range hr.Match {
			h, err := headerMatch(hm)
			if err != nil {
				return nil, err
			}
			nm := runtime.DeepCopyJSONValue(m).(map[string]any)
			hs, _, _ := nestedSlice(nm, "headers")
			for _, e := range hs {
				if n, _ := e.(map[string]any)["name"].(string); strings.EqualFold(n, hm.HeaderName) {
					return nil, fmt.Errorf("the rule it applies to already matches header %q, and a Gateway API match has each header once", hm.HeaderName)
				}
			}
			nm["headers"] = append(hs, h)
			ms = append(ms, nm)
		}
	}
	if len(ms) > maxMatches {
		return nil, fmt.Errorf("needs %d matches in one rule (its alternatives times the rule's matches); the Gateway API allows %d", len(ms), maxMatches)
	}
	out["matches"] = ms
	return out, nil
}

// headerMatch is the HTTPHeaderMatch for m: Exact, or RegularExpression
// for a regex and for a prefix (as ^ and the quoted prefix).
func headerMatch(m spec.HeaderMatch) (map[string]any, error) {
	v := m.HeaderValue
	switch {
	case v.Exact != nil:
		return map[string]any{"type": "Exact", "name": m.HeaderName, "value": *v.Exact}, nil
	case v.Prefix != nil:
		return map[string]any{"type": "RegularExpression", "name": m.HeaderName, "value": PrefixRegex(*v.Prefix)}, nil
	case v.Regex != nil:
		return map[string]any{"type": "RegularExpression", "name": m.HeaderName, "value": *v.Regex}, nil
	}
	return nil, fmt.Errorf("header %q has no exact, prefix or regex value", m.HeaderName)
}

// PrefixRegex is the regular expression that matches values starting
// with p, whether the implementation matches the whole value (Envoy) or
// searches in it: anchored at the start, open at the end.
func PrefixRegex(p string) string { return "^" + regexp.QuoteMeta(p) + ".*" }

func limits(rules []any) error {
	if len(rules) > maxRules {
		return fmt.Errorf("would have %d rules with coalmine's header routes; the Gateway API allows %d: use fewer header routes or split the HTTPRoute", len(rules), maxRules)
	}
	total := 0
	for _, r := range rules {
		ms, _, _ := nestedSlice(r.(map[string]any), "matches")
		total += len(ms)
	}
	if total > maxTotalMatches {
		return fmt.Errorf("would have %d matches in all with coalmine's header routes; the Gateway API allows %d", total, maxTotalMatches)
	}
	return nil
}

// Read reports what the HTTPRoute obj carries for w's Services: the
// generation annotation and the canary's share of the first rule that
// sends to them, in basis points (rounded to the nearest).
func Read(obj map[string]any, w Want) (Observed, error) {
	var o Observed
	ann, _, _ := nestedStringMap(obj, "metadata", "annotations")
	if s, ok := ann[AnnotationGeneration]; ok {
		g, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return o, fmt.Errorf("annotation %s=%q is not a generation number", AnnotationGeneration, s)
		}
		o.Generation = g
	}
	rules, _, _ := nestedSlice(obj, "spec", "rules")
	prefix := RulePrefix(w.Owner)
	for _, r := range rules {
		rule, ok := r.(map[string]any)
		if !ok || ownedRule(r, prefix) {
			continue
		}
		refs, _, _ := nestedSlice(rule, "backendRefs")
		var stable, canary float64
		seen := false
		for _, e := range refs {
			ref, ok := e.(map[string]any)
			if !ok {
				continue
			}
			wt := weightOf(ref)
			switch serviceRef(ref, w) {
			case "stable":
				stable, seen = wt, true
			case "canary":
				canary = wt
			}
		}
		if !seen {
			continue
		}
		if stable+canary > 0 {
			o.Weight = spec.Weight(math.Round(canary / (stable + canary) * float64(spec.MaxWeight)))
		}
		return o, nil
	}
	return o, fmt.Errorf("no rule sends to Service %q", w.StableService)
}

// weightOf is a backendRef's weight; absent means 1, the API's default.
func weightOf(ref map[string]any) float64 {
	switch v := ref["weight"].(type) {
	case int64:
		return float64(v)
	case float64:
		return v
	case nil:
		return 1
	}
	return 0
}
