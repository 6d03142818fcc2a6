package alb

import (
	"context"
	"errors"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

func ptr[T any](v T) *T { return &v }

func desired(gen uint64, w spec.Weight, routes ...spec.HeaderRoute) router.Desired {
	return router.Desired{Rollout: "shop", Generation: gen, Weight: w,
		Stable: router.Target{Version: "v1"}, Canary: &router.Target{Version: "v2"}, HeaderRoutes: routes}
}

var writes = []string{"ModifyRule", "ModifyListener", "CreateRule", "DeleteRule", "SetRulePriorities"}

func writesIn(calls []string) []string {
	var out []string
	for _, c := range calls {
		if slices.Contains(writes, c) {
			out = append(out, c)
		}
	}
	return out
}

func mustObserve(t *testing.T, d *Driver) router.Applied {
	t.Helper()
	a, err := d.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestWeightMapping(t *testing.T) {
	for _, tt := range []struct {
		w    spec.Weight
		want pair
	}{
		{0, pair{999, 0}}, {10000, pair{0, 999}}, {1, pair{999, 1}}, {4, pair{999, 1}}, {5, pair{999, 1}},
		{15, pair{998, 2}}, {500, pair{950, 50}}, {2500, pair{750, 250}}, {5000, pair{500, 500}},
		{9990, pair{1, 999}}, {9995, pair{1, 999}}, {9999, pair{1, 999}},
	} {
		if got := weightsFor(tt.w); got != tt.want {
			t.Errorf("weightsFor(%d) = %v, want %v", tt.w, got, tt.want)
		}
	}
	// Every multiple of 0.1% maps and inverts exactly.
	for w := spec.Weight(0); w <= spec.MaxWeight; w += 10 {
		got, err := shareOf(weightsFor(w))
		if err != nil || got != w {
			t.Fatalf("shareOf(weightsFor(%d)) = %d, %v", w, got, err)
		}
	}
	// Weights set by hand invert to their ratio.
	if got, _ := shareOf(pair{1, 1}); got != 5000 {
		t.Errorf("shareOf(1,1) = %d", got)
	}
	if got, _ := shareOf(pair{1, 0}); got != 0 {
		t.Errorf("shareOf(1,0) = %d", got)
	}
	if _, err := shareOf(pair{0, 0}); err == nil {
		t.Error("shareOf(0,0) must fail: the rule sends nothing")
	}
}

func TestApplyObserveRule(t *testing.T) {
	f := newFakeELB(t)
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
	ctx := context.Background()
	if err := d.Apply(ctx, desired(3, 505)); err != nil {
		t.Fatal(err)
	}
	// The exact request: the whole action list, the forward action with
	// both target groups and their weights, nothing else of the rule.
	form := f.lastForm("ModifyRule")
	want := url.Values{
		"Action": {"ModifyRule"}, "Version": {"2015-12-01"}, "RuleArn": {mainRuleARN},
		"Actions.member.1.Type":  {"forward"},
		"Actions.member.1.Order": {"1"},
		"Actions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn": {stableTG},
		"Actions.member.1.ForwardConfig.TargetGroups.member.1.Weight":         {"949"},
		"Actions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn": {canaryTG},
		"Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight":         {"51"},
		"Actions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled":  {"false"},
	}
	if !reflect.DeepEqual(form, want) {
		t.Errorf("ModifyRule sent\n%v\nwant\n%v", form, want)
	}
	if got := writesIn(f.take()); !slices.Equal(got, []string{"ModifyRule"}) {
		t.Fatalf("writes = %v, want one ModifyRule", got)
	}
	if got := f.weights(mainRuleARN); got["shop-stable"] != "949" || got["shop-canary"] != "51" || got["stickiness"] != "" {
		t.Fatalf("weights on the ALB = %v, want 949/51 without stickiness", got)
	}
	a := mustObserve(t, d)
	if a.Generation != 3 || a.Weight != 505 || !a.CanaryAvailable {
		t.Fatalf("Observe = %+v, want generation 3, weight 505 (finer than the ALB's 0.1%%, reported as applied), canary available", a)
	}
	if got := f.take(); !slices.Equal(got, []string{"DescribeRules", "DescribeTargetHealth"}) {
		t.Errorf("Observe calls = %v, want DescribeRules and DescribeTargetHealth only", got)
	}
	// A resync that finds everything applied writes nothing.
	if err := d.Apply(ctx, desired(3, 505)); err != nil {
		t.Fatal(err)
	}
	if got := writesIn(f.take()); len(got) != 0 {
		t.Fatalf("second Apply wrote %v, want nothing", got)
	}
	// Someone sets other weights by hand: generation 0, weight their ratio.
	f.mu.Lock()
	fc := f.rules[mainRuleARN].actions[0].(map[string]any)["ForwardConfig"].(map[string]any)
	fc["TargetGroups"].([]any)[1].(map[string]any)["Weight"] = "1"
	fc["TargetGroups"].([]any)[0].(map[string]any)["Weight"] = "3"
	f.mu.Unlock()
	if a := mustObserve(t, d); a.Generation != 0 || a.Weight != 2500 {
		t.Fatalf("Observe after a change by hand = %+v, want generation 0 and weight 2500", a)
	}
	if err := d.Apply(ctx, desired(3, 505)); err != nil {
		t.Fatal(err)
	}
	if a := mustObserve(t, d); a.Generation != 3 || a.Weight != 505 {
		t.Fatalf("Observe after re-apply = %+v", a)
	}
	// Full promotion and Remove.
	if err := d.Apply(ctx, desired(4, 10000)); err != nil {
		t.Fatal(err)
	}
	if got := f.weights(mainRuleARN); got["shop-stable"] != "0" || got["shop-canary"] != "999" {
		t.Fatalf("weights at 100%% = %v", got)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.weights(mainRuleARN); got["shop-stable"] != "999" || got["shop-canary"] != "0" {
		t.Fatalf("weights after Remove = %v", got)
	}
	if a := mustObserve(t, d); a.Generation != 0 || a.Weight != 0 {
		t.Fatalf("Observe after Remove = %+v", a)
	}
}

func TestStickiness(t *testing.T) {
	f := newFakeELB(t)
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN, StickinessDuration: spec.Duration(time.Hour)})
	if err := d.Apply(context.Background(), desired(1, 1000)); err != nil {
		t.Fatal(err)
	}
	if got := f.weights(mainRuleARN); got["stickiness"] != "3600" || got["shop-canary"] != "100" {
		t.Fatalf("weights = %v, want stickiness 3600 s and canary 100", got)
	}
	if a := mustObserve(t, d); a.Generation != 1 {
		t.Fatalf("Observe = %+v", a)
	}
}

func TestHeaderRoutes(t *testing.T) {
	f := newFakeELB(t)
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
	ctx := context.Background()
	beta := spec.HeaderRoute{Name: "beta", To: spec.RoleCanary, Match: []spec.HeaderMatch{
		{HeaderName: "X-Beta", HeaderValue: spec.StringMatch{Exact: ptr("yes")}},
		{HeaderName: "X-Tenant", HeaderValue: spec.StringMatch{Prefix: ptr("acme-")}},
	}}
	pin := spec.HeaderRoute{Name: "pin-stable", To: spec.RoleStable, Match: []spec.HeaderMatch{
		{HeaderName: "X-Pin", HeaderValue: spec.StringMatch{Exact: ptr("stable")}},
	}}
	if err := d.Apply(ctx, desired(1, 0, beta, pin)); err != nil {
		t.Fatal(err)
	}
	if got := writesIn(f.take()); !slices.Equal(got, []string{"CreateRule", "CreateRule", "ModifyRule"}) {
		t.Fatalf("writes = %v", got)
	}
	f.mu.Lock()
	var own []*fakeRule
	for _, r := range f.sortedRules() {
		if len(f.tags[r.arn]) > 0 {
			own = append(own, r)
		}
	}
	if len(own) != 2 || own[0].priority != 8 || own[1].priority != 9 {
		f.mu.Unlock()
		t.Fatalf("header-route rules %v, want two at priorities 8 and 9 (right before the rule at 10)", own)
	}
	var b strings.Builder
	writeXML(&b, map[string]any{"c": own[0].conditions, "a": own[0].actions, "t": tagsOf(f.tags[own[0].arn])})
	got := b.String()
	f.mu.Unlock()
	for _, want := range []string{
		"<Field>host-header</Field><HostHeaderConfig><Values><member>shop.example.com</member>",
		"<HttpHeaderName>X-Beta</HttpHeaderName><Values><member>yes</member>",
		"<HttpHeaderName>X-Tenant</HttpHeaderName><Values><member>acme-*</member>",
		"<TargetGroupArn>" + canaryTG + "</TargetGroupArn><Weight>1</Weight>",
		"coalmine.dev/rollout=shop", "coalmine.dev/header-route=beta",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the beta rule lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, "<Field>host-header</Field><HostHeaderConfig><Values><member>shop.example.com</member></Values></HostHeaderConfig><Values>") {
		t.Error("the copied host condition carries both Values and HostHeaderConfig")
	}
	if a := mustObserve(t, d); a.Generation != 1 {
		t.Fatalf("Observe = %+v", a)
	}
	f.take()
	// Nothing changed: nothing written.
	if err := d.Apply(ctx, desired(1, 0, beta, pin)); err != nil {
		t.Fatal(err)
	}
	if got := writesIn(f.take()); len(got) != 0 {
		t.Fatalf("re-apply wrote %v", got)
	}
	// A route changes and the other goes: one ModifyRule, one DeleteRule
	// and the kept rule moves next to the main rule.
	beta.Match = beta.Match[:1]
	if err := d.Apply(ctx, desired(2, 0, beta)); err != nil {
		t.Fatal(err)
	}
	if got := writesIn(f.take()); !slices.Equal(got, []string{"DeleteRule", "SetRulePriorities", "ModifyRule"}) {
		t.Fatalf("writes = %v", got)
	}
	if a := mustObserve(t, d); a.Generation != 2 {
		t.Fatalf("Observe = %+v", a)
	}
	// The rule deleted behind coalmine's back: generation 0, then back.
	f.mu.Lock()
	for arn := range f.tags {
		delete(f.rules, arn)
		delete(f.tags, arn)
	}
	f.mu.Unlock()
	if a := mustObserve(t, d); a.Generation != 0 {
		t.Fatalf("Observe with the header rule gone = %+v, want generation 0", a)
	}
	if err := d.Apply(ctx, desired(2, 0, beta)); err != nil {
		t.Fatal(err)
	}
	if a := mustObserve(t, d); a.Generation != 2 {
		t.Fatalf("Observe after re-apply = %+v", a)
	}
	if err := d.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tags) != 0 || len(f.rules) != 2 {
		t.Fatalf("after Remove: %d tagged rules, %d rules; want only the two users' rules", len(f.tags), len(f.rules))
	}
}

func tagsOf(kv [][2]string) []any {
	var out []any
	for _, p := range kv {
		out = append(out, p[0]+"="+p[1])
	}
	return out
}

func TestHeaderRoutesNeedFreePriorities(t *testing.T) {
	f := newFakeELB(t)
	f.rules[otherRule].priority = 9
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
	r := spec.HeaderRoute{Name: "beta", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-Beta", HeaderValue: spec.StringMatch{Exact: ptr("1")}}}}
	err := d.Apply(context.Background(), desired(1, 100, r))
	if err == nil || !strings.Contains(err.Error(), "another rule has priority 9: renumber") {
		t.Fatalf("Apply = %v, want the priority conflict named", err)
	}
	if got := writesIn(f.take()); len(got) != 0 {
		t.Fatalf("a refused Apply wrote %v", got)
	}
}

// An abort reaches the ALB's forward action even when the header-route
// rules cannot be planned (a foreign rule where they would go).
func TestAbortLandsWhenHeaderRulesCannot(t *testing.T) {
	f := newFakeELB(t)
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
	ctx := context.Background()
	if err := d.Apply(ctx, desired(1, 5000)); err != nil {
		t.Fatal(err)
	}
	f.take()
	f.rules[otherRule].priority = 9
	r := spec.HeaderRoute{Name: "beta", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-Beta", HeaderValue: spec.StringMatch{Exact: ptr("1")}}}}
	err := d.Apply(ctx, desired(2, 0, r))
	if err == nil || !strings.Contains(err.Error(), "renumber") {
		t.Fatalf("Apply = %v, want the priority conflict named", err)
	}
	form := f.lastForm("ModifyRule")
	if form.Get("Actions.member.1.ForwardConfig.TargetGroups.member.2.Weight") != "0" {
		t.Fatalf("the abort did not reach the forward action: %v", form)
	}
}

func TestDefaultAction(t *testing.T) {
	f := newFakeELB(t)
	f.defaultActions = []any{normaliseAction(forwardTo(stableTG))}
	d := f.driver(t, spec.ALBRouter{})
	ctx := context.Background()
	r := spec.HeaderRoute{Name: "beta", To: spec.RoleCanary, Match: []spec.HeaderMatch{{HeaderName: "X-Beta", HeaderValue: spec.StringMatch{Exact: ptr("1")}}}}
	if err := d.Apply(ctx, desired(7, 2000, r)); err != nil {
		t.Fatal(err)
	}
	if got := writesIn(f.take()); !slices.Equal(got, []string{"CreateRule", "ModifyListener"}) {
		t.Fatalf("writes = %v", got)
	}
	if got := f.weights(""); got["shop-canary"] != "200" || got["shop-stable"] != "800" {
		t.Fatalf("default action weights = %v", got)
	}
	f.mu.Lock()
	prios := []int{}
	for arn, r := range f.rules {
		if len(f.tags[arn]) > 0 {
			prios = append(prios, r.priority)
		}
	}
	f.mu.Unlock()
	if !slices.Equal(prios, []int{11}) {
		t.Fatalf("header rule priorities %v, want [11] (after every rule)", prios)
	}
	a := mustObserve(t, d)
	if a.Generation != 7 || a.Weight != 2000 {
		t.Fatalf("Observe = %+v", a)
	}
	if got := f.take(); !slices.Equal(got, []string{"DescribeListeners", "DescribeRules", "DescribeTargetHealth"}) {
		t.Fatalf("Observe calls = %v", got)
	}
}

func TestThrottlingIsRetried(t *testing.T) {
	f := newFakeELB(t)
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
	f.fail["DescribeRules"] = []string{"Throttling", "Throttling"}
	f.fail["ModifyRule"] = []string{"Throttling"}
	if err := d.Apply(context.Background(), desired(1, 100)); err != nil {
		t.Fatalf("Apply with throttled calls: %v", err)
	}
	calls := f.take()
	if n := count(calls, "ModifyRule"); n != 2 {
		t.Fatalf("ModifyRule sent %d times (%v), want 2: throttled once, then retried", n, calls)
	}
	// Throttled beyond the retryer's attempts: an error naming the call.
	f.fail["DescribeRules"] = []string{"Throttling", "Throttling", "Throttling"}
	_, err := d.Observe(context.Background())
	if err == nil || !strings.Contains(err.Error(), "DescribeRules") || !strings.Contains(err.Error(), "Throttling") {
		t.Fatalf("Observe = %v, want a Throttling error of DescribeRules", err)
	}
}

func count(calls []string, name string) int {
	n := 0
	for _, c := range calls {
		if c == name {
			n++
		}
	}
	return n
}

func TestPartialFailures(t *testing.T) {
	t.Run("modify succeeds, describe shows something else", func(t *testing.T) {
		f := newFakeELB(t)
		d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
		f.after["ModifyRule"] = func(f *fakeELB) {
			f.rules[mainRuleARN].actions = []any{normaliseAction(forwardTo(stableTG))}
			delete(f.after, "ModifyRule")
		}
		if err := d.Apply(context.Background(), desired(5, 3000)); err != nil {
			t.Fatal(err)
		}
		if a := mustObserve(t, d); a.Generation != 0 || a.Weight != 0 {
			t.Fatalf("Observe = %+v, want generation 0 (not applied) and weight 0", a)
		}
	})
	t.Run("access denied", func(t *testing.T) {
		f := newFakeELB(t)
		d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
		if err := d.Apply(context.Background(), desired(1, 100)); err != nil {
			t.Fatal(err)
		}
		f.fail["ModifyRule"] = []string{"AccessDenied"}
		err := d.Apply(context.Background(), desired(2, 200))
		if err == nil || !strings.Contains(err.Error(), "grant elasticloadbalancing:ModifyRule") {
			t.Fatalf("Apply = %v, want the IAM action named", err)
		}
		if a := mustObserve(t, d); a.Generation != 0 || a.Weight != 100 {
			t.Fatalf("Observe after a refused Apply = %+v, want generation 0 and the old weight", a)
		}
	})
	t.Run("target group not found", func(t *testing.T) {
		f := newFakeELB(t)
		d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
		delete(f.targetGroups, canaryTG)
		err := d.Check(context.Background())
		if err == nil || !strings.Contains(err.Error(), "TargetGroupNotFound") {
			t.Fatalf("Check = %v", err)
		}
		if err := d.Apply(context.Background(), desired(1, 100)); err == nil || !strings.Contains(err.Error(), "TargetGroupNotFound") {
			t.Fatalf("Apply = %v", err)
		}
	})
	t.Run("rule not on the listener", func(t *testing.T) {
		f := newFakeELB(t)
		d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN + "0"})
		if err := d.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "RuleNotFound") {
			t.Fatalf("Check = %v", err)
		}
		if err := d.Apply(context.Background(), desired(1, 100)); err == nil || !strings.Contains(err.Error(), "is not a rule of listener") {
			t.Fatalf("Apply = %v", err)
		}
	})
	t.Run("forward to a third target group", func(t *testing.T) {
		f := newFakeELB(t)
		d := f.driver(t, spec.ALBRouter{RuleARN: otherRule})
		err := d.Apply(context.Background(), desired(1, 100))
		if err == nil || !strings.Contains(err.Error(), "neither the stable nor the canary") {
			t.Fatalf("Apply = %v", err)
		}
	})
	t.Run("mirror", func(t *testing.T) {
		f := newFakeELB(t)
		d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
		des := desired(1, 100)
		des.MirrorRoutes = []spec.MirrorRoute{{Name: "m"}}
		if err := d.Apply(context.Background(), des); !errors.Is(err, router.ErrUnsupported) {
			t.Fatalf("Apply = %v, want ErrUnsupported", err)
		}
	})
}

func TestOIDCActionKept(t *testing.T) {
	f := newFakeELB(t)
	f.rules[mainRuleARN].actions = []any{
		map[string]any{"Type": "authenticate-oidc", "Order": "1", "AuthenticateOidcConfig": map[string]any{
			"Issuer": "https://idp.example.com", "AuthorizationEndpoint": "https://idp.example.com/auth",
			"TokenEndpoint": "https://idp.example.com/token", "UserInfoEndpoint": "https://idp.example.com/userinfo", "ClientId": "shop"}},
		normaliseAction(map[string]any{"Type": "forward", "Order": "2", "TargetGroupArn": stableTG}),
	}
	d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
	if err := d.Apply(context.Background(), desired(1, 100)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	acts := f.rules[mainRuleARN].actions
	if len(acts) != 2 || acts[0].(map[string]any)["Type"] != "authenticate-oidc" {
		t.Fatalf("actions after Apply: %v", acts)
	}
}

func TestCanaryAvailable(t *testing.T) {
	for _, tt := range []struct {
		name    string
		targets []any
		want    bool
	}{
		{"none", nil, false},
		{"healthy", []any{targetHealth("a", "unhealthy", "Target.FailedHealthChecks"), targetHealth("b", "healthy", "")}, true},
		{"unhealthy", []any{targetHealth("a", "unhealthy", "Target.FailedHealthChecks")}, false},
		{"initial", []any{targetHealth("a", "initial", "Elb.RegistrationInProgress")}, false},
		{"unused", []any{targetHealth("a", "unused", "Target.NotInUse")}, false},
		{"health checks off", []any{targetHealth("a", "unavailable", "Target.HealthCheckDisabled")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeELB(t)
			f.health[canaryTG] = tt.targets
			d := f.driver(t, spec.ALBRouter{RuleARN: mainRuleARN})
			if a := mustObserve(t, d); a.CanaryAvailable != tt.want {
				t.Fatalf("CanaryAvailable = %v, want %v", a.CanaryAvailable, tt.want)
			}
		})
	}
}

func TestNewAndBackends(t *testing.T) {
	setFakeAWSEnv(t)
	t.Setenv("AWS_REGION", "")
	_, err := New("shop", spec.ALBRouter{ListenerARN: listenerARN, StableTargetGroupARN: stableTG, CanaryTargetGroupARN: canaryTG})
	if err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Fatalf("New without a region = %v", err)
	}
	d, err := New("shop", spec.ALBRouter{ListenerARN: listenerARN, StableTargetGroupARN: stableTG, CanaryTargetGroupARN: canaryTG, Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	b := d.Backends()
	if b["shop-stable"] != spec.RoleStable || b["shop-canary"] != spec.RoleCanary || len(b) != 2 {
		t.Fatalf("Backends = %v", b)
	}
	if _, err := New("shop", spec.ALBRouter{ListenerARN: listenerARN, StableTargetGroupARN: stableTG, CanaryTargetGroupARN: stableTG, Region: "eu-west-1"}); err == nil {
		t.Fatal("New with one target group for both versions must fail")
	}
}
