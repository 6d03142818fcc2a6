package istio

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/router/kube"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// Annotations coalmine keeps on the VirtualService, written in the same
// patch as the routes: the routing generation, and the canary weight in
// basis points that the routes' whole percentages were rounded from.
const (
	AnnotationGeneration = "coalmine.dev/generation"
	AnnotationWeight     = "coalmine.dev/weight"
)

// idempotentMethods is what a mirror route without a method match
// mirrors, as coalmine's own proxy does.
const idempotentMethods = "^(GET|HEAD|OPTIONS|TRACE|PUT|DELETE)$"

// Destination is one version: a host (a Service), or a host's subset.
type Destination struct {
	Host   string
	Subset string
}

func (d Destination) matches(m map[string]any) bool {
	h, _ := m["host"].(string)
	s, _ := m["subset"].(string)
	return h == d.Host && s == d.Subset
}

func (d Destination) String() string {
	if d.Subset != "" {
		return d.Host + " subset " + d.Subset
	}
	return d.Host
}

// Want is the routing coalmine wants a VirtualService to carry.
type Want struct {
	// Routes names the user's http routes coalmine splits; empty means
	// the only one.
	Routes         []string
	Stable, Canary Destination
	// Owner is the rollout's label in the names of coalmine's routes.
	Owner        string
	Generation   uint64
	Weight       spec.Weight
	HeaderRoutes []spec.HeaderRoute
	MirrorRoutes []spec.MirrorRoute
	// Remove drops coalmine's annotations instead of setting them.
	Remove bool
}

// Percent is the canary's whole percentage for w basis points, as Istio
// weights are whole numbers summing to 100: rounded half up, except that
// a canary with some weight never gets 0 and never takes all (1..99).
func Percent(w spec.Weight) int64 {
	p := (int64(w) + 50) / 100
	switch {
	case w > 0 && p == 0:
		return 1
	case w < spec.MaxWeight && p == 100:
		return 99
	}
	return p
}

// RoutePrefix starts the name of every http route coalmine adds for
// rollout owner; routes are recognised as coalmine's by it alone.
func RoutePrefix(owner string) string { return "coalmine." + owner + "." }

func owned(prefix string) func(any) bool {
	return func(r any) bool {
		m, ok := r.(map[string]any)
		if !ok {
			return false
		}
		name, _ := m["name"].(string)
		return strings.HasPrefix(name, prefix)
	}
}

// Plan returns the JSON patch operations that make the VirtualService
// obj (as read) route as w says; none when it already does.
//
// The managed routes' destinations get whole-percent weights (Percent).
// A managed route naming only the stable destination gets the canary one
// (a copy with the other host or subset). Header routes, then mirror
// routes, become coalmine's own http routes placed before all others
// (Istio takes the first route that matches): for each managed route, a
// copy whose matches are the route's own (or match-all) each joined with
// one alternative of coalmine's route, so they apply only to requests the
// managed route would have taken.
func Plan(obj map[string]any, w Want) ([]kube.Op, error) {
	http, found, err := unstructured.NestedSlice(obj, "spec", "http")
	if err != nil || !found {
		return nil, fmt.Errorf("has no spec.http routes")
	}
	isOwned := owned(RoutePrefix(w.Owner))
	var user []any
	for _, r := range http {
		if !isOwned(r) {
			user = append(user, runtime.DeepCopyJSONValue(r))
		}
	}
	managed, err := pick(user, w.Routes)
	if err != nil {
		return nil, err
	}
	pct := Percent(w.Weight)
	for _, i := range managed {
		if err := setWeights(user[i].(map[string]any), w, pct); err != nil {
			return nil, fmt.Errorf("http route %s: %w", routeName(user[i], i), err)
		}
	}
	var ours []any
	for h, hr := range w.HeaderRoutes {
		for _, i := range managed {
			r, err := headerRoute(user[i].(map[string]any), hr, w, fmt.Sprintf("%sheader-%d-%d-%s", RoutePrefix(w.Owner), h, i, kube.Label(hr.Name)))
			if err != nil {
				return nil, fmt.Errorf("header route %q on http route %s: %w", hr.Name, routeName(user[i], i), err)
			}
			ours = append(ours, r)
		}
	}
	for m, mr := range w.MirrorRoutes {
		for _, i := range managed {
			r, err := mirrorRoute(user[i].(map[string]any), mr, w, fmt.Sprintf("%smirror-%d-%d-%s", RoutePrefix(w.Owner), m, i, kube.Label(mr.Name)))
			if err != nil {
				return nil, fmt.Errorf("mirror route %q on http route %s: %w", mr.Name, routeName(user[i], i), err)
			}
			ours = append(ours, r)
		}
	}
	ann := map[string]string{
		AnnotationGeneration: strconv.FormatUint(w.Generation, 10),
		AnnotationWeight:     strconv.Itoa(int(w.Weight)),
	}
	if w.Remove {
		ann = map[string]string{AnnotationGeneration: "", AnnotationWeight: ""}
	}
	ops := kube.Annotations(obj, ann)
	return append(ops, kube.ListOps("/spec/http", http, ours, user, isOwned)...), nil
}

func routeName(r any, i int) string {
	if m, ok := r.(map[string]any); ok {
		if n, _ := m["name"].(string); n != "" {
			return strconv.Quote(n)
		}
	}
	return "#" + strconv.Itoa(i)
}

// pick returns the indexes of the routes named (or of the only route).
func pick(user []any, names []string) ([]int, error) {
	if len(names) == 0 {
		if len(user) != 1 {
			return nil, fmt.Errorf("has %d http routes: name the ones coalmine splits in the router's routes", len(user))
		}
		return []int{0}, nil
	}
	var out []int
	for _, n := range names {
		found := -1
		for i, r := range user {
			if m, ok := r.(map[string]any); ok && m["name"] == n {
				found = i
			}
		}
		if found < 0 {
			return nil, fmt.Errorf("has no http route named %q (routes names the VirtualService's http routes coalmine splits)", n)
		}
		out = append(out, found)
	}
	return out, nil
}

// setWeights gives the route's two destinations their percentages.
func setWeights(route map[string]any, w Want, pct int64) error {
	if _, ok := route["delegate"]; ok {
		return fmt.Errorf("delegates to another VirtualService: name the delegate's routes instead")
	}
	dests, _, _ := unstructured.NestedSlice(route, "route")
	stable, canary := -1, -1
	for i, d := range dests {
		m, _ := d.(map[string]any)
		dest, _ := m["destination"].(map[string]any)
		switch {
		case dest != nil && w.Stable.matches(dest):
			stable = i
		case dest != nil && w.Canary.matches(dest):
			canary = i
		default:
			host, _ := dest["host"].(string)
			return fmt.Errorf("sends to %q besides the stable and canary destinations: coalmine sets the whole split of a route, so give it a route of its own", host)
		}
	}
	if stable < 0 {
		return fmt.Errorf("has no destination %s (the stable version)", w.Stable)
	}
	if canary < 0 {
		d := runtime.DeepCopyJSONValue(dests[stable]).(map[string]any)
		dest := d["destination"].(map[string]any)
		dest["host"] = w.Canary.Host
		delete(dest, "subset")
		if w.Canary.Subset != "" {
			dest["subset"] = w.Canary.Subset
		}
		dests = append(dests, d)
		canary = len(dests) - 1
	}
	dests[stable].(map[string]any)["weight"] = 100 - pct
	dests[canary].(map[string]any)["weight"] = pct
	route["route"] = dests
	return nil
}

func destination(d Destination) map[string]any {
	m := map[string]any{"host": d.Host}
	if d.Subset != "" {
		m["subset"] = d.Subset
	}
	return m
}

// stringMatch is Istio's StringMatch for m.
func stringMatch(m spec.StringMatch) (map[string]any, error) {
	switch {
	case m.Exact != nil:
		return map[string]any{"exact": *m.Exact}, nil
	case m.Prefix != nil:
		return map[string]any{"prefix": *m.Prefix}, nil
	case m.Regex != nil:
		return map[string]any{"regex": *m.Regex}, nil
	}
	return nil, fmt.Errorf("no exact, prefix or regex value")
}

// matchesOf is the route's matches, or one that matches everything.
func matchesOf(route map[string]any) []any {
	ms, _, _ := unstructured.NestedSlice(route, "match")
	if len(ms) == 0 {
		return []any{map[string]any{}}
	}
	return ms
}

// withHeader adds header name (Istio wants it lowercase) to match m.
func withHeader(m map[string]any, name string, sm map[string]any) error {
	name = strings.ToLower(name)
	hs, _ := m["headers"].(map[string]any)
	if _, ok := hs[name]; ok {
		return fmt.Errorf("the route already matches header %q, and an Istio match has each header once", name)
	}
	out := map[string]any{}
	maps.Copy(out, hs)
	out[name] = sm
	m["headers"] = out
	return nil
}

// ownCopy is the copy of a managed route that coalmine's route name
// starts from: all its settings (rewrites, retries, timeouts...) apply.
func ownCopy(route map[string]any, name string) map[string]any {
	out := runtime.DeepCopyJSONValue(route).(map[string]any)
	out["name"] = name
	return out
}

func headerRoute(route map[string]any, hr spec.HeaderRoute, w Want, name string) (map[string]any, error) {
	out := ownCopy(route, name)
	to := w.Canary
	if hr.To == spec.RoleStable {
		to = w.Stable
	}
	var ms []any
	for _, m := range matchesOf(route) {
		for _, hm := range hr.Match {
			sm, err := stringMatch(hm.HeaderValue)
			if err != nil {
				return nil, fmt.Errorf("header %q: %w", hm.HeaderName, err)
			}
			nm := runtime.DeepCopyJSONValue(m).(map[string]any)
			if err := withHeader(nm, hm.HeaderName, sm); err != nil {
				return nil, err
			}
			ms = append(ms, nm)
		}
	}
	out["match"] = ms
	// The copy keeps the managed route's destinations, so one of them
	// (with its port) is the one to keep, at weight 100.
	var keep map[string]any
	for _, d := range out["route"].([]any) {
		if dm := d.(map[string]any); to.matches(dm["destination"].(map[string]any)) {
			keep = dm
		}
	}
	keep["weight"] = int64(100)
	out["route"] = []any{keep}
	return out, nil
}

func mirrorRoute(route map[string]any, mr spec.MirrorRoute, w Want, name string) (map[string]any, error) {
	out := ownCopy(route, name)
	var ms []any
	for _, m := range matchesOf(route) {
		for _, rm := range mr.Match {
			nm := runtime.DeepCopyJSONValue(m).(map[string]any)
			if rm.Path != nil {
				if _, ok := nm["uri"]; ok {
					return nil, fmt.Errorf("the route already matches the path, and Istio cannot require two paths of one request: mirror by headers or method here, or split the route")
				}
				sm, err := stringMatch(*rm.Path)
				if err != nil {
					return nil, fmt.Errorf("path: %w", err)
				}
				nm["uri"] = sm
			}
			switch {
			case rm.Method != nil:
				if _, ok := nm["method"]; ok {
					return nil, fmt.Errorf("the route already matches the method, and Istio cannot require two")
				}
				sm, err := stringMatch(*rm.Method)
				if err != nil {
					return nil, fmt.Errorf("method: %w", err)
				}
				nm["method"] = sm
			case nm["method"] == nil:
				// Only idempotent requests are mirrored unless a match
				// names the method, as coalmine's own proxy does.
				nm["method"] = map[string]any{"regex": idempotentMethods}
			}
			for _, h := range sortedKeys(rm.Headers) {
				sm, err := stringMatch(rm.Headers[h])
				if err != nil {
					return nil, fmt.Errorf("header %q: %w", h, err)
				}
				if err := withHeader(nm, h, sm); err != nil {
					return nil, err
				}
			}
			ms = append(ms, nm)
		}
	}
	out["match"] = ms
	delete(out, "mirrors")
	out["mirror"] = destination(w.Canary)
	pct := float64(100)
	if mr.Percentage != nil {
		pct = *mr.Percentage
	}
	out["mirrorPercentage"] = map[string]any{"value": pct}
	return out, nil
}

func sortedKeys(m map[string]spec.StringMatch) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Observed is what a VirtualService carries for one rollout.
type Observed struct {
	Generation uint64
	Weight     spec.Weight
}

// Read reports what the VirtualService obj carries: the generation
// annotation, and the canary's weight of the first managed route. The
// weight is the basis points of the weight annotation when the route's
// percentages are what those basis points round to (so a step of 2.5%
// that Istio carries as 3% reads back as 2.5%); otherwise, as when
// someone else changed the weights, the route's percentage itself.
func Read(obj map[string]any, w Want) (Observed, error) {
	var o Observed
	ann, _, _ := unstructured.NestedStringMap(obj, "metadata", "annotations")
	if s, ok := ann[AnnotationGeneration]; ok {
		g, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return o, fmt.Errorf("annotation %s=%q is not a generation number", AnnotationGeneration, s)
		}
		o.Generation = g
	}
	http, _, _ := unstructured.NestedSlice(obj, "spec", "http")
	var user []any
	for _, r := range http {
		if !owned(RoutePrefix(w.Owner))(r) {
			user = append(user, r)
		}
	}
	managed, err := pick(user, w.Routes)
	if err != nil {
		return o, err
	}
	dests, _, _ := unstructured.NestedSlice(user[managed[0]].(map[string]any), "route")
	var stable, canary int64
	seen := false
	for _, d := range dests {
		m, _ := d.(map[string]any)
		dest, _ := m["destination"].(map[string]any)
		wt, ok := m["weight"].(int64)
		if !ok {
			// A lone destination without a weight takes everything.
			wt = 100
		}
		switch {
		case dest != nil && w.Stable.matches(dest):
			stable, seen = wt, true
		case dest != nil && w.Canary.matches(dest):
			canary = wt
		}
	}
	if !seen {
		return o, fmt.Errorf("http route %s has no destination %s", routeName(user[managed[0]], managed[0]), w.Stable)
	}
	if stable+canary > 0 {
		o.Weight = spec.Weight(canary * int64(spec.MaxWeight) / (stable + canary))
	}
	if s, ok := ann[AnnotationWeight]; ok {
		if bp, err := strconv.Atoi(s); err == nil && bp >= 0 && bp <= int(spec.MaxWeight) &&
			stable+canary == 100 && Percent(spec.Weight(bp)) == canary {
			o.Weight = spec.Weight(bp)
		}
	}
	return o, nil
}
