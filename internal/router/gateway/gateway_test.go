package gateway

import (
	"context"
	"errors"
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

// The Gateway API release whose CRD coalmine's writes are checked against.
const (
	gatewayModule  = "sigs.k8s.io/gateway-api"
	gatewayVersion = "v1.6.3"
)

var (
	schemaOnce sync.Once
	schemaVal  *kubetest.Schema
	schemaErr  error
)

func httpRouteSchema(t *testing.T) *kubetest.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		schemaVal, schemaErr = kubetest.LoadSchema(gatewayModule, gatewayVersion,
			"config/crd/standard/gateway.networking.k8s.io_httproutes.yaml", "HTTPRoute", "v1")
	})
	if schemaErr != nil {
		t.Fatalf("the HTTPRoute CRD of %s@%s: %v", gatewayModule, gatewayVersion, schemaErr)
	}
	return schemaVal
}

var endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}

const ns = "prod"

func userRoute() map[string]any {
	return map[string]any{
		"apiVersion": "gateway.networking.k8s.io/v1",
		"kind":       "HTTPRoute",
		"metadata":   map[string]any{"name": "shop", "namespace": ns, "annotations": map[string]any{"team": "shop"}},
		"spec": map[string]any{
			"parentRefs": []any{map[string]any{"name": "public"}},
			"hostnames":  []any{"shop.example.com"},
			"rules": []any{
				map[string]any{
					"matches": []any{
						map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}},
						map[string]any{"path": map[string]any{"type": "Exact", "value": "/cart"}, "method": "POST"},
					},
					"filters":     []any{map[string]any{"type": "RequestHeaderModifier", "requestHeaderModifier": map[string]any{"add": []any{map[string]any{"name": "x-via", "value": "gw"}}}}},
					"backendRefs": []any{map[string]any{"name": "shop-stable", "port": int64(8080)}},
				},
				map[string]any{
					"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/static"}}},
					"backendRefs": []any{map[string]any{"name": "static", "port": int64(80)}},
				},
			},
		},
	}
}

func slice(svc string, ready bool) map[string]any {
	return map[string]any{
		"apiVersion":  "discovery.k8s.io/v1",
		"kind":        "EndpointSlice",
		"metadata":    map[string]any{"name": svc + "-abc", "namespace": ns, "labels": map[string]any{"kubernetes.io/service-name": svc}},
		"addressType": "IPv4",
		"endpoints":   []any{map[string]any{"addresses": []any{"10.0.0.7"}, "conditions": map[string]any{"ready": ready}}},
	}
}

var cfg = spec.GatewayAPIRouter{Namespace: ns, HTTPRoute: "shop", StableService: "shop-stable", CanaryService: "shop-canary"}

func setup(t *testing.T) (*kubetest.Server, *Driver) {
	t.Helper()
	s := kubetest.NewServer(t)
	s.Validate(HTTPRoutes, httpRouteSchema(t))
	s.Put(HTTPRoutes, userRoute())
	s.Put(endpointSlices, slice("shop-canary", true))
	d, err := NewWithClient("shop", cfg, s.Client())
	if err != nil {
		t.Fatal(err)
	}
	return s, d
}

func desired(gen uint64, w spec.Weight, hrs ...spec.HeaderRoute) router.Desired {
	return router.Desired{Rollout: "shop", Generation: gen, Weight: w,
		Stable: router.Target{Version: "v1"}, Canary: &router.Target{Version: "v2"}, HeaderRoutes: hrs}
}

func str(s string) *string { return &s }

func rules(t *testing.T, s *kubetest.Server) []any {
	t.Helper()
	rs, _, err := unstructured.NestedSlice(s.Get(HTTPRoutes, ns, "shop"), "spec", "rules")
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func refs(rule any) string {
	var out []string
	for _, r := range rule.(map[string]any)["backendRefs"].([]any) {
		m := r.(map[string]any)
		out = append(out, fmt.Sprintf("%v:%v=%v", m["name"], m["port"], m["weight"]))
	}
	return strings.Join(out, ",")
}

func TestApplyWeightsAndReadThemBack(t *testing.T) {
	s, d := setup(t)
	ctx := context.Background()
	for i, w := range []spec.Weight{500, 2550, 10000, 0} {
		gen := uint64(i + 1)
		if err := d.Apply(ctx, desired(gen, w)); err != nil {
			t.Fatal(err)
		}
		rs := rules(t, s)
		if got, want := refs(rs[0]), fmt.Sprintf("shop-stable:8080=%d,shop-canary:8080=%d", 10000-w, w); got != want {
			t.Errorf("weight %s: backendRefs %s, want %s", w, got, want)
		}
		if got := refs(rs[1]); got != "static:80=1" {
			t.Errorf("the other rule changed: %s", got)
		}
		got, err := d.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := (router.Applied{Generation: gen, Weight: w, CanaryAvailable: true}); got != want {
			t.Errorf("Observe = %+v, want %+v", got, want)
		}
	}
	ann := s.Get(HTTPRoutes, ns, "shop")["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann["team"] != "shop" || ann[AnnotationGeneration] != "4" {
		t.Errorf("annotations %v: want the user's kept and %s=4", ann, AnnotationGeneration)
	}
	if got := s.Writes(); got != 4 {
		t.Errorf("%d writes for 4 changes", got)
	}
}

func TestCanaryAvailableFollowsEndpointSlices(t *testing.T) {
	s, d := setup(t)
	ctx := context.Background()
	if err := d.Apply(ctx, desired(1, 100)); err != nil {
		t.Fatal(err)
	}
	s.Put(endpointSlices, slice("shop-canary", false))
	if got, err := d.Observe(ctx); err != nil || got.CanaryAvailable {
		t.Fatalf("Observe with no ready canary endpoint = %+v, %v", got, err)
	}
	s.Forbid("list", "endpointslices")
	if _, err := d.Observe(ctx); err == nil || !strings.Contains(err.Error(), `"list" on endpointslices.discovery.k8s.io`) {
		t.Errorf("Observe without RBAC on EndpointSlices: %v", err)
	}
}

func TestResyncOfAnAppliedRouteSendsNoWrite(t *testing.T) {
	s, d := setup(t)
	ctx := context.Background()
	des := desired(7, 1234, spec.HeaderRoute{Name: "qa", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Exact: str("1")}}}})
	if err := d.Apply(ctx, des); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := d.Apply(ctx, des); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Observe(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Writes(); got != 1 {
		t.Errorf("%d writes; an applied route (with the server's defaults filled in) must get none", got)
	}
}

func TestHeaderRoutesAreAddedFirstAndRemoved(t *testing.T) {
	s, d := setup(t)
	ctx := context.Background()
	before := rules(t, s)
	hrs := []spec.HeaderRoute{
		{Name: "QA team", To: spec.RoleCanary, Match: []spec.HeaderMatch{
			{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Exact: str("yes")}},
			{HeaderName: "X-Tenant", HeaderValue: spec.StringMatch{Prefix: str("beta.")}},
		}},
		{Name: "pin", To: spec.RoleStable, Match: []spec.HeaderMatch{{HeaderName: "X-Pin", HeaderValue: spec.StringMatch{Regex: str("v1|old")}}}},
	}
	if err := d.Apply(ctx, desired(1, 1000, hrs...)); err != nil {
		t.Fatal(err)
	}
	rs := rules(t, s)
	if len(rs) != 4 {
		t.Fatalf("%d rules, want 2 of coalmine's and the user's 2", len(rs))
	}
	qa, pin := rs[0].(map[string]any), rs[1].(map[string]any)
	if qa["name"] != "coalmine.shop.0-0-qa-team" || pin["name"] != "coalmine.shop.1-0-pin" {
		t.Errorf("rule names %v, %v", qa["name"], pin["name"])
	}
	if got := refs(qa); got != "shop-canary:8080=1" {
		t.Errorf("qa rule sends to %s", got)
	}
	if got := refs(pin); got != "shop-stable:8080=1" {
		t.Errorf("pin rule sends to %s", got)
	}
	// The user's 2 matches times the route's 2 alternatives, each with one header more.
	var got []string
	for _, m := range qa["matches"].([]any) {
		mm := m.(map[string]any)
		h := mm["headers"].([]any)[0].(map[string]any)
		got = append(got, fmt.Sprintf("%v %v %v %v=%v", mm["method"], mm["path"].(map[string]any)["value"], h["type"], h["name"], h["value"]))
	}
	want := []string{
		"<nil> / Exact X-QA=yes", `<nil> / RegularExpression X-Tenant=^beta\..*`,
		"POST /cart Exact X-QA=yes", `POST /cart RegularExpression X-Tenant=^beta\..*`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("qa matches\n%q\nwant\n%q", got, want)
	}
	if qa["filters"] == nil {
		t.Error("the header rule lost the user rule's filters")
	}
	if err := d.Apply(ctx, desired(2, 1000, hrs[1])); err != nil {
		t.Fatal(err)
	}
	if rs := rules(t, s); len(rs) != 3 || rs[0].(map[string]any)["name"] != "coalmine.shop.0-0-pin" {
		t.Errorf("after dropping the first route: %d rules, first %v", len(rs), rs[0].(map[string]any)["name"])
	}
	if err := d.Apply(ctx, desired(3, 0)); err != nil {
		t.Fatal(err)
	}
	after := rules(t, s)
	if len(after) != 2 || refs(after[0]) != "shop-stable:8080=10000,shop-canary:8080=0" || !reflect.DeepEqual(after[1], before[1]) {
		t.Errorf("after removing the header routes: %v", after)
	}
}

func TestConflictIsRetried(t *testing.T) {
	s, d := setup(t)
	conflicts := 2
	s.OnWrite(func() {
		if conflicts == 0 {
			return
		}
		conflicts--
		// Someone else changes the route between coalmine's read and write.
		o := s.Get(HTTPRoutes, ns, "shop")
		unstructured.SetNestedField(o, []any{"shop.example.com", fmt.Sprintf("www%d.example.com", conflicts)}, "spec", "hostnames")
		s.Put(HTTPRoutes, o)
	})
	if err := d.Apply(context.Background(), desired(1, 3000)); err != nil {
		t.Fatal(err)
	}
	o := s.Get(HTTPRoutes, ns, "shop")
	hosts, _, _ := unstructured.NestedStringSlice(o, "spec", "hostnames")
	if conflicts != 0 || !reflect.DeepEqual(hosts, []string{"shop.example.com", "www0.example.com"}) {
		t.Errorf("conflicts left %d, hostnames %v: the other writer's change must stay", conflicts, hosts)
	}
	if got := refs(rules(t, s)[0]); got != "shop-stable:8080=7000,shop-canary:8080=3000" {
		t.Errorf("after retrying: %s", got)
	}
}

func TestConflictsWithoutEndGiveAnError(t *testing.T) {
	s, d := setup(t)
	s.OnWrite(func() {
		o := s.Get(HTTPRoutes, ns, "shop")
		unstructured.SetNestedField(o, "x", "metadata", "labels", "touched")
		s.Put(HTTPRoutes, o)
	})
	err := d.Apply(context.Background(), desired(1, 3000))
	if err == nil || !strings.Contains(err.Error(), "changed under coalmine 6 times") {
		t.Errorf("Apply = %v", err)
	}
}

func TestRemove(t *testing.T) {
	s, d := setup(t)
	ctx := context.Background()
	hr := spec.HeaderRoute{Name: "qa", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Exact: str("1")}}}}
	if err := d.Apply(ctx, desired(5, 4000, hr)); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	o := s.Get(HTTPRoutes, ns, "shop")
	rs := rules(t, s)
	if len(rs) != 2 || refs(rs[0]) != "shop-stable:8080=10000,shop-canary:8080=0" {
		t.Errorf("after Remove: %v", rs)
	}
	ann, _, _ := unstructured.NestedStringMap(o, "metadata", "annotations")
	if _, ok := ann[AnnotationGeneration]; ok || ann["team"] != "shop" {
		t.Errorf("annotations after Remove: %v", ann)
	}
	writes := s.Writes()
	if err := d.Remove(ctx); err != nil || s.Writes() != writes {
		t.Errorf("a second Remove: %v, %d writes", err, s.Writes()-writes)
	}
}

func TestCheckSaysWhatIsWrong(t *testing.T) {
	s, d := setup(t)
	ctx := context.Background()
	if err := d.Check(ctx); err != nil {
		t.Fatalf("Check of a good route: %v", err)
	}
	for _, tt := range []struct {
		name   string
		break_ func()
		want   string
	}{
		{"not sending to stable", func() {
			o := userRoute()
			unstructured.SetNestedSlice(o, []any{map[string]any{"backendRefs": []any{map[string]any{"name": "other", "port": int64(80)}}}}, "spec", "rules")
			s.Put(HTTPRoutes, o)
		}, `no rule sends to Service "shop-stable"`},
		{"another backend in the rule", func() {
			o := userRoute()
			unstructured.SetNestedSlice(o, []any{map[string]any{"backendRefs": []any{
				map[string]any{"name": "shop-stable", "port": int64(80)}, map[string]any{"name": "legacy", "port": int64(80)}}}}, "spec", "rules")
			s.Put(HTTPRoutes, o)
		}, `sends to "legacy" besides the stable and canary Services`},
		{"missing", func() { s.Delete(HTTPRoutes, ns, "shop") }, "HTTPRoute prod/shop not found"},
	} {
		tt.break_()
		err := d.Check(ctx)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Check = %v, want it to say %q", tt.name, err, tt.want)
		}
	}
	if err := d.Apply(ctx, desired(1, 1)); err == nil || !strings.Contains(err.Error(), "HTTPRoute prod/shop not found") {
		t.Errorf("Apply to a missing route: %v", err)
	}
	if _, err := d.Observe(ctx); err == nil || !strings.Contains(err.Error(), "HTTPRoute prod/shop not found") {
		t.Errorf("Observe of a missing route: %v", err)
	}
	s.Put(HTTPRoutes, userRoute())
	s.Forbid("get", "httproutes")
	want := `forbidden to get it: grant coalmine's identity the verb "get" on httproutes.gateway.networking.k8s.io in namespace "prod"`
	if err := d.Check(ctx); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Check without RBAC: %v, want it to say %q", err, want)
	}
}

func TestPatchForbidden(t *testing.T) {
	s, d := setup(t)
	s.Forbid("patch", "httproutes")
	err := d.Apply(context.Background(), desired(1, 1))
	if err == nil || !strings.Contains(err.Error(), `verb "patch" on httproutes.gateway.networking.k8s.io`) {
		t.Errorf("Apply without patch RBAC: %v", err)
	}
}

func TestMirrorRoutesAndUserHeaderAreRefused(t *testing.T) {
	_, d := setup(t)
	des := desired(1, 100)
	des.MirrorRoutes = []spec.MirrorRoute{{Name: "m"}}
	if err := d.Apply(context.Background(), des); !errors.Is(err, router.ErrUnsupported) {
		t.Errorf("Apply with a mirror route: %v", err)
	}
	des = desired(1, 100)
	des.UserHeader = "X-User"
	if err := d.Apply(context.Background(), des); !errors.Is(err, router.ErrUnsupported) {
		t.Errorf("Apply with a user header: %v", err)
	}
}

func TestTooManyRulesAreRefusedBeforeWriting(t *testing.T) {
	s, d := setup(t)
	var hrs []spec.HeaderRoute
	for i := range 15 {
		hrs = append(hrs, spec.HeaderRoute{Name: fmt.Sprint(i), To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-N", HeaderValue: spec.StringMatch{Exact: str(fmt.Sprint(i))}}}})
	}
	err := d.Apply(context.Background(), desired(1, 100, hrs...))
	if err == nil || !strings.Contains(err.Error(), "would have 17 rules") || s.Writes() != 0 {
		t.Errorf("Apply with 15 header routes: %v, %d writes", err, s.Writes())
	}
}

// The validator is not a formality: it refuses what the API server would.
func TestSchemaRefusesWhatTheServerWould(t *testing.T) {
	sc := httpRouteSchema(t)
	for name, change := range map[string]func(o map[string]any){
		"weight above 1000000": func(o map[string]any) {
			o["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["backendRefs"].([]any)[0].(map[string]any)["weight"] = int64(1000001)
		},
		"unknown field": func(o map[string]any) {
			o["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["priority"] = int64(1)
		},
		"bad rule name": func(o map[string]any) {
			o["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["name"] = "QA team"
		},
		"header type (CEL-free enum)": func(o map[string]any) {
			o["spec"].(map[string]any)["rules"].([]any)[0].(map[string]any)["matches"] = []any{map[string]any{"headers": []any{map[string]any{"type": "Prefix", "name": "x", "value": "y"}}}}
		},
		"over 128 matches in all (CEL)": func(o map[string]any) {
			var rs []any
			for range 3 {
				var ms []any
				for j := range 50 {
					ms = append(ms, map[string]any{"path": map[string]any{"type": "Exact", "value": fmt.Sprintf("/%d", j)}})
				}
				rs = append(rs, map[string]any{"matches": ms, "backendRefs": []any{map[string]any{"name": "shop-stable", "port": int64(80)}}})
			}
			o["spec"].(map[string]any)["rules"] = rs
		},
	} {
		o := userRoute()
		change(o)
		if errs := sc.Admit(o); len(errs) == 0 {
			t.Errorf("%s: admitted", name)
		}
	}
	if errs := sc.Admit(userRoute()); len(errs) != 0 {
		t.Errorf("the fixture is refused: %v", errs)
	}
}

func TestPrefixRegex(t *testing.T) {
	if got := PrefixRegex("a.b*"); got != `^a\.b\*.*` {
		t.Errorf("PrefixRegex = %s", got)
	}
}
