package istio

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/router/kube/kubetest"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Istio API release whose CRDs coalmine's writes are checked against
// (istio.io/client-go v1.32.0 is built on it).
const (
	istioModule  = "istio.io/api"
	istioVersion = "v1.32.0"
	crdFile      = "kubernetes/customresourcedefinitions.gen.yaml"
)

var (
	schemaOnce sync.Once
	vsSchema   *kubetest.Schema
	drSchema   *kubetest.Schema
	schemaErr  error
)

func schemas(t *testing.T) (*kubetest.Schema, *kubetest.Schema) {
	t.Helper()
	schemaOnce.Do(func() {
		vsSchema, schemaErr = kubetest.LoadSchema(istioModule, istioVersion, crdFile, "VirtualService", "v1")
		if schemaErr == nil {
			drSchema, schemaErr = kubetest.LoadSchema(istioModule, istioVersion, crdFile, "DestinationRule", "v1")
		}
	})
	if schemaErr != nil {
		t.Fatalf("the Istio CRDs of %s@%s: %v", istioModule, istioVersion, schemaErr)
	}
	return vsSchema, drSchema
}

var (
	endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	pods           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

const ns = "prod"

func virtualService(dest map[string]any) map[string]any {
	return map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "VirtualService",
		"metadata":   map[string]any{"name": "shop", "namespace": ns},
		"spec": map[string]any{
			"hosts":    []any{"shop.example.com"},
			"gateways": []any{"public"},
			"http": []any{
				map[string]any{
					"name":    "static",
					"match":   []any{map[string]any{"uri": map[string]any{"prefix": "/static"}}},
					"route":   []any{map[string]any{"destination": map[string]any{"host": "static"}}},
					"retries": map[string]any{"attempts": int64(1)},
				},
				map[string]any{
					"name": "primary",
					"match": []any{
						map[string]any{"uri": map[string]any{"prefix": "/"}},
						map[string]any{"headers": map[string]any{"x-app": map[string]any{"exact": "shop"}}},
					},
					"route":   []any{map[string]any{"destination": dest}},
					"timeout": "5s",
				},
			},
		},
	}
}

func slice(svc string, ready bool) map[string]any {
	return map[string]any{
		"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
		"metadata":    map[string]any{"name": svc + "-abc", "namespace": ns, "labels": map[string]any{"kubernetes.io/service-name": svc}},
		"addressType": "IPv4",
		"endpoints":   []any{map[string]any{"addresses": []any{"10.0.0.7"}, "conditions": map[string]any{"ready": ready}}},
	}
}

var hostCfg = spec.IstioRouter{Namespace: ns, VirtualService: "shop", Routes: []string{"primary"}, StableHost: "shop-stable", CanaryHost: "shop-canary.prod.svc.cluster.local"}

func setup(t *testing.T, cfg spec.IstioRouter, dest map[string]any) (*kubetest.Server, *Driver) {
	t.Helper()
	vs, dr := schemas(t)
	s := kubetest.NewServer(t)
	s.Validate(VirtualServices, vs)
	s.Validate(DestinationRules, dr)
	s.Put(VirtualServices, virtualService(dest))
	s.Put(endpointSlices, slice("shop-canary", true))
	d, err := NewWithClient("shop", cfg, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func hostSetup(t *testing.T) (*kubetest.Server, *Driver) {
	return setup(t, hostCfg, map[string]any{"host": "shop-stable", "port": map[string]any{"number": int64(8080)}})
}

func desired(gen uint64, w spec.Weight) router.Desired {
	return router.Desired{Rollout: "shop", Generation: gen, Weight: w, Stable: router.Target{Version: "v1"}, Canary: &router.Target{Version: "v2"}}
}

func str(s string) *string { return &s }

func routes(t *testing.T, s *kubetest.Server) []map[string]any {
	t.Helper()
	hs, _, err := unstructured.NestedSlice(s.Get(VirtualServices, ns, "shop"), "spec", "http")
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, h := range hs {
		out = append(out, h.(map[string]any))
	}
	return out
}

func byName(t *testing.T, s *kubetest.Server, name string) map[string]any {
	t.Helper()
	for _, r := range routes(t, s) {
		if r["name"] == name {
			return r
		}
	}
	t.Fatalf("no http route %q", name)
	return nil
}

func dests(r map[string]any) string {
	var out []string
	for _, d := range r["route"].([]any) {
		m := d.(map[string]any)
		dest := m["destination"].(map[string]any)
		s := fmt.Sprint(dest["host"])
		if sub, ok := dest["subset"]; ok {
			s += "/" + fmt.Sprint(sub)
		}
		if p, ok := dest["port"]; ok {
			s += fmt.Sprintf(":%v", p.(map[string]any)["number"])
		}
		out = append(out, fmt.Sprintf("%s=%v", s, m["weight"]))
	}
	return strings.Join(out, ",")
}

func TestPercentRounding(t *testing.T) {
	for w, want := range map[spec.Weight]int64{0: 0, 1: 1, 49: 1, 50: 1, 149: 1, 150: 2, 2549: 25, 2550: 26, 9949: 99, 9950: 99, 9999: 99, 10000: 100} {
		if got := Percent(w); got != want {
			t.Errorf("Percent(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestApplyWeightsAndReadThemBack(t *testing.T) {
	s, d := hostSetup(t)
	ctx := context.Background()
	for i, tt := range []struct {
		w    spec.Weight
		want string
	}{
		{500, "shop-stable:8080=95,shop-canary.prod.svc.cluster.local:8080=5"},
		{2550, "shop-stable:8080=74,shop-canary.prod.svc.cluster.local:8080=26"},
		{10, "shop-stable:8080=99,shop-canary.prod.svc.cluster.local:8080=1"},
		{10000, "shop-stable:8080=0,shop-canary.prod.svc.cluster.local:8080=100"},
	} {
		gen := uint64(i + 1)
		if err := d.Apply(ctx, desired(gen, tt.w)); err != nil {
			t.Fatal(err)
		}
		if got := dests(byName(t, s, "primary")); got != tt.want {
			t.Errorf("weight %s: %s, want %s", tt.w, got, tt.want)
		}
		if got := dests(byName(t, s, "static")); got != "static=<nil>" {
			t.Errorf("the other route changed: %s", got)
		}
		got, err := d.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// The basis points asked for, as the percentages are their rounding.
		if want := (router.Applied{Generation: gen, Weight: tt.w, CanaryAvailable: true}); got != want {
			t.Errorf("Observe = %+v, want %+v", got, want)
		}
	}
	if s.Writes() != 4 {
		t.Errorf("%d writes for 4 changes", s.Writes())
	}
	// Someone else sets the weights: Observe reports theirs.
	o := s.Get(VirtualServices, ns, "shop")
	o["spec"].(map[string]any)["http"].([]any)[1].(map[string]any)["route"].([]any)[0].(map[string]any)["weight"] = int64(60)
	o["spec"].(map[string]any)["http"].([]any)[1].(map[string]any)["route"].([]any)[1].(map[string]any)["weight"] = int64(40)
	s.Put(VirtualServices, o)
	if got, err := d.Observe(ctx); err != nil || got.Weight != 4000 {
		t.Errorf("Observe after another writer: %+v, %v", got, err)
	}
}

func TestHeaderAndMirrorRoutesComeFirstAndGo(t *testing.T) {
	s, d := hostSetup(t)
	ctx := context.Background()
	before := routes(t, s)
	des := desired(1, 1000)
	des.HeaderRoutes = []spec.HeaderRoute{{Name: "QA", To: spec.RoleCanary, Match: []spec.HeaderMatch{
		{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Exact: str("yes")}},
		{HeaderName: "X-Tenant", HeaderValue: spec.StringMatch{Prefix: str("beta")}},
	}}}
	pct := 12.5
	des.MirrorRoutes = []spec.MirrorRoute{{Name: "shadow", Percentage: &pct, Match: []spec.RequestMatch{
		{Headers: map[string]spec.StringMatch{"X-Shadow": {Regex: str("on|yes")}}},
	}}}
	if err := d.Apply(ctx, des); err != nil {
		t.Fatal(err)
	}
	rs := routes(t, s)
	if len(rs) != 4 || rs[0]["name"] != "coalmine.shop.header-0-1-qa" || rs[1]["name"] != "coalmine.shop.mirror-0-1-shadow" {
		t.Fatalf("routes: %v", rs)
	}
	if got := dests(rs[0]); got != "shop-canary.prod.svc.cluster.local:8080=100" {
		t.Errorf("header route sends to %s", got)
	}
	wantMatch := []any{
		map[string]any{"uri": map[string]any{"prefix": "/"}, "headers": map[string]any{"x-qa": map[string]any{"exact": "yes"}}},
		map[string]any{"uri": map[string]any{"prefix": "/"}, "headers": map[string]any{"x-tenant": map[string]any{"prefix": "beta"}}},
		map[string]any{"headers": map[string]any{"x-app": map[string]any{"exact": "shop"}, "x-qa": map[string]any{"exact": "yes"}}},
		map[string]any{"headers": map[string]any{"x-app": map[string]any{"exact": "shop"}, "x-tenant": map[string]any{"prefix": "beta"}}},
	}
	if !reflect.DeepEqual(rs[0]["match"], wantMatch) {
		t.Errorf("header route matches %v", rs[0]["match"])
	}
	if rs[0]["timeout"] != "5s" {
		t.Error("the header route lost the managed route's settings")
	}
	m := rs[1]
	if got := dests(m); got != "shop-stable:8080=90,shop-canary.prod.svc.cluster.local:8080=10" {
		t.Errorf("mirror route splits as %s", got)
	}
	if !reflect.DeepEqual(m["mirror"], map[string]any{"host": "shop-canary.prod.svc.cluster.local"}) ||
		!reflect.DeepEqual(m["mirrorPercentage"], map[string]any{"value": 12.5}) {
		t.Errorf("mirror %v %v", m["mirror"], m["mirrorPercentage"])
	}
	if got := m["match"].([]any)[0].(map[string]any)["method"]; !reflect.DeepEqual(got, map[string]any{"regex": idempotentMethods}) {
		t.Errorf("mirror method match %v", got)
	}
	// Resync: nothing to write.
	writes := s.Writes()
	if err := d.Apply(ctx, des); err != nil || s.Writes() != writes {
		t.Errorf("resync: %v, %d writes", err, s.Writes()-writes)
	}
	if err := d.Apply(ctx, desired(2, 1000)); err != nil {
		t.Fatal(err)
	}
	after := routes(t, s)
	if len(after) != 2 || !reflect.DeepEqual(after[0], before[0]) || after[1]["name"] != "primary" {
		t.Errorf("after the routes go: %v", after)
	}
}

func TestMirrorOfAPathOnARouteMatchingPathsIsRefused(t *testing.T) {
	s, d := hostSetup(t)
	des := desired(1, 0)
	des.MirrorRoutes = []spec.MirrorRoute{{Name: "m", Match: []spec.RequestMatch{{Path: &spec.StringMatch{Prefix: str("/api")}}}}}
	err := d.Apply(context.Background(), des)
	if err == nil || !strings.Contains(err.Error(), `mirror route "m" on http route "primary": the route already matches the path`) || s.Writes() != 0 {
		t.Errorf("Apply = %v, %d writes", err, s.Writes())
	}
}

func TestSubsetsAndDestinationRulePods(t *testing.T) {
	cfg := spec.IstioRouter{Namespace: ns, VirtualService: "shop", Routes: []string{"primary"}, Host: "shop", StableSubset: "stable", CanarySubset: "canary"}
	s, d := setup(t, cfg, map[string]any{"host": "shop", "subset": "stable"})
	ctx := context.Background()
	if err := d.Apply(ctx, desired(1, 3333)); err != nil {
		t.Fatal(err)
	}
	if got := dests(byName(t, s, "primary")); got != "shop/stable=67,shop/canary=33" {
		t.Errorf("subsets: %s", got)
	}
	if _, err := d.Observe(ctx); err == nil || !strings.Contains(err.Error(), `no DestinationRule in namespace "prod" for host "shop" defines subset "canary"`) {
		t.Errorf("Observe without a DestinationRule: %v", err)
	}
	s.Put(DestinationRules, map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
		"metadata": map[string]any{"name": "shop", "namespace": ns},
		"spec": map[string]any{"host": "shop.prod.svc.cluster.local", "subsets": []any{
			map[string]any{"name": "stable", "labels": map[string]any{"app": "shop", "track": "stable"}},
			map[string]any{"name": "canary", "labels": map[string]any{"app": "shop", "track": "canary"}},
		}},
	})
	pod := func(track, ready string) map[string]any {
		return map[string]any{"apiVersion": "v1", "kind": "Pod",
			"metadata": map[string]any{"name": "shop-" + track, "namespace": ns, "labels": map[string]any{"app": "shop", "track": track}},
			"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": ready}}}}
	}
	s.Put(pods, pod("stable", "True"))
	s.Put(pods, pod("canary", "False"))
	if got, err := d.Observe(ctx); err != nil || got.CanaryAvailable || got.Weight != 3333 {
		t.Errorf("Observe with the canary pod not ready: %+v, %v", got, err)
	}
	s.Put(pods, pod("canary", "True"))
	if got, err := d.Observe(ctx); err != nil || !got.CanaryAvailable {
		t.Errorf("Observe with the canary pod ready: %+v, %v", got, err)
	}
}

func TestConflictIsRetried(t *testing.T) {
	s, d := hostSetup(t)
	conflicts := 1
	s.OnWrite(func() {
		if conflicts == 0 {
			return
		}
		conflicts--
		o := s.Get(VirtualServices, ns, "shop")
		unstructured.SetNestedStringSlice(o, []string{"shop.example.com", "www.example.com"}, "spec", "hosts")
		s.Put(VirtualServices, o)
	})
	if err := d.Apply(context.Background(), desired(1, 5000)); err != nil {
		t.Fatal(err)
	}
	hosts, _, _ := unstructured.NestedStringSlice(s.Get(VirtualServices, ns, "shop"), "spec", "hosts")
	if conflicts != 0 || len(hosts) != 2 || dests(byName(t, s, "primary")) != "shop-stable:8080=50,shop-canary.prod.svc.cluster.local:8080=50" {
		t.Errorf("after a conflict: hosts %v, %s", hosts, dests(byName(t, s, "primary")))
	}
}

func TestRemove(t *testing.T) {
	s, d := hostSetup(t)
	ctx := context.Background()
	des := desired(3, 2000)
	des.HeaderRoutes = []spec.HeaderRoute{{Name: "qa", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "x-qa", HeaderValue: spec.StringMatch{Exact: str("1")}}}}}
	if err := d.Apply(ctx, des); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	rs := routes(t, s)
	if len(rs) != 2 || dests(rs[1]) != "shop-stable:8080=100,shop-canary.prod.svc.cluster.local:8080=0" {
		t.Errorf("after Remove: %v", rs)
	}
	if ann, _, _ := unstructured.NestedStringMap(s.Get(VirtualServices, ns, "shop"), "metadata", "annotations"); len(ann) != 0 {
		t.Errorf("annotations after Remove: %v", ann)
	}
}

func TestCheckSaysWhatIsWrong(t *testing.T) {
	s, d := hostSetup(t)
	ctx := context.Background()
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	only, _ := NewWithClient("shop", spec.IstioRouter{Namespace: ns, VirtualService: "shop", StableHost: "shop-stable", CanaryHost: "shop-canary"}, s.Client())
	if err := only.Check(ctx); err == nil || !strings.Contains(err.Error(), "has 2 http routes: name the ones coalmine splits") {
		t.Errorf("Check without routes on a VirtualService of two: %v", err)
	}
	wrong, _ := NewWithClient("shop", spec.IstioRouter{Namespace: ns, VirtualService: "shop", Routes: []string{"main"}, StableHost: "shop-stable", CanaryHost: "shop-canary"}, s.Client())
	if err := wrong.Check(ctx); err == nil || !strings.Contains(err.Error(), `has no http route named "main"`) {
		t.Errorf("Check of a missing route: %v", err)
	}
	other, _ := NewWithClient("shop", spec.IstioRouter{Namespace: ns, VirtualService: "shop", Routes: []string{"primary"}, StableHost: "shop-v1", CanaryHost: "shop-v2"}, s.Client())
	if err := other.Check(ctx); err == nil || !strings.Contains(err.Error(), `sends to "shop-stable" besides the stable and canary destinations`) {
		t.Errorf("Check of a route to other hosts: %v", err)
	}
	s.Delete(VirtualServices, ns, "shop")
	if err := d.Check(ctx); err == nil || !strings.Contains(err.Error(), "VirtualService prod/shop not found") {
		t.Errorf("Check of a missing VirtualService: %v", err)
	}
	s.Put(VirtualServices, virtualService(map[string]any{"host": "shop-stable"}))
	s.Forbid("patch", "virtualservices")
	if err := d.Apply(ctx, desired(1, 1)); err == nil || !strings.Contains(err.Error(), `verb "patch" on virtualservices.networking.istio.io`) {
		t.Errorf("Apply without patch RBAC: %v", err)
	}
}

func TestSchemaRefusesWhatTheServerWould(t *testing.T) {
	vs, _ := schemas(t)
	bad := virtualService(map[string]any{"host": "shop-stable"})
	bad["spec"].(map[string]any)["http"].([]any)[1].(map[string]any)["route"].([]any)[0].(map[string]any)["weight"] = "ten"
	if errs := vs.Admit(bad); len(errs) == 0 {
		t.Error("a string weight is admitted")
	}
	bad = virtualService(map[string]any{"host": "shop-stable"})
	bad["spec"].(map[string]any)["http"].([]any)[1].(map[string]any)["priority"] = int64(5)
	if errs := vs.Admit(bad); len(errs) == 0 {
		t.Error("an unknown field is admitted")
	}
}
