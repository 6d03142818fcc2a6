package alb

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeELB stands in for the ELBv2 endpoint. It speaks the AWS query
// protocol as the ELBv2 API reference describes it: a form-encoded POST
// with Action and Version=2015-12-01, lists as Name.member.N, a SigV4
// Authorization header; answers are XML <ActionResponse><ActionResult> with
// lists as <member> elements, errors an <ErrorResponse> with Code and
// Message and an HTTP 400. Rules and actions are kept as the request's own
// tree, so what a Describe returns is exactly what was written, in the
// names the reference gives both.
type fakeELB struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	listener string
	// defaultActions is the listener's default action list.
	defaultActions []any
	rules          map[string]*fakeRule
	tags           map[string][][2]string
	targetGroups   map[string]string // ARN → name
	health         map[string][]any  // target group ARN → TargetHealthDescriptions
	pageSize       int
	next           int
	// calls lists the actions received, in order; forms their bodies.
	calls []string
	forms []url.Values
	// fail answers the next calls of an action with an error code (one
	// entry per call), before doing anything.
	fail map[string][]string
	// after runs after an action has been carried out (to change the state
	// behind the driver's back).
	after map[string]func(f *fakeELB)
}

type fakeRule struct {
	arn        string
	priority   int
	conditions []any
	actions    []any
	transforms []any
}

const (
	listenerARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2"
	mainRuleARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
	otherRule   = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/1111111111111111"
	stableTG    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-stable/73e2d6bc24d8a067"
	canaryTG    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-canary/2453ed029918f21f"
	otherTG     = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/admin/5555555555555555"
)

// forwardTo is a forward action to the stable target group alone, as a
// user creates it (TargetGroupArn), in the tree form the fake keeps.
func forwardTo(arn string) map[string]any {
	return map[string]any{"Type": "forward", "Order": "1", "TargetGroupArn": arn}
}

func newFakeELB(t *testing.T) *fakeELB {
	f := &fakeELB{
		t:        t,
		listener: listenerARN,
		rules:    map[string]*fakeRule{},
		tags:     map[string][][2]string{},
		targetGroups: map[string]string{
			stableTG: "shop-stable", canaryTG: "shop-canary", otherTG: "admin",
		},
		health:   map[string][]any{},
		pageSize: 2,
		fail:     map[string][]string{},
		after:    map[string]func(*fakeELB){},
	}
	f.defaultActions = []any{normaliseAction(map[string]any{"Type": "fixed-response", "Order": "1",
		"FixedResponseConfig": map[string]any{"StatusCode": "404", "ContentType": "text/plain"}})}
	hostCond := map[string]any{"Field": "host-header", "Values": []any{"shop.example.com"},
		"HostHeaderConfig": map[string]any{"Values": []any{"shop.example.com"}}}
	f.rules[mainRuleARN] = &fakeRule{arn: mainRuleARN, priority: 10, conditions: []any{hostCond},
		actions: []any{normaliseAction(forwardTo(stableTG))}}
	f.rules[otherRule] = &fakeRule{arn: otherRule, priority: 5, conditions: []any{map[string]any{"Field": "path-pattern",
		"Values": []any{"/admin/*"}, "PathPatternConfig": map[string]any{"Values": []any{"/admin/*"}}}},
		actions: []any{normaliseAction(forwardTo(otherTG))}}
	f.health[canaryTG] = []any{targetHealth("10.0.0.7", "healthy", "")}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func targetHealth(id, state, reason string) map[string]any {
	h := map[string]any{"State": state}
	if reason != "" {
		h["Reason"] = reason
	}
	return map[string]any{"Target": map[string]any{"Id": id, "Port": "8080"}, "HealthCheckPort": "8080", "TargetHealth": h}
}

// normaliseAction makes a forward action look as the ALB describes it:
// both forms when it sends to one target group (TargetGroupArn, and
// ForwardConfig with weight 1), only ForwardConfig for several.
func normaliseAction(a map[string]any) map[string]any {
	if a["Type"] != "forward" {
		return a
	}
	if arn, ok := a["TargetGroupArn"].(string); ok && a["ForwardConfig"] == nil {
		a["ForwardConfig"] = map[string]any{"TargetGroups": []any{map[string]any{"TargetGroupArn": arn, "Weight": "1"}},
			"TargetGroupStickinessConfig": map[string]any{"Enabled": "false"}}
		return a
	}
	fc, _ := a["ForwardConfig"].(map[string]any)
	tgs, _ := fc["TargetGroups"].([]any)
	if len(tgs) == 1 {
		a["TargetGroupArn"] = tgs[0].(map[string]any)["TargetGroupArn"]
	} else {
		delete(a, "TargetGroupArn")
	}
	for _, tg := range tgs {
		m := tg.(map[string]any)
		if m["Weight"] == nil {
			m["Weight"] = "1"
		}
	}
	if fc["TargetGroupStickinessConfig"] == nil {
		fc["TargetGroupStickinessConfig"] = map[string]any{"Enabled": "false"}
	}
	return a
}

// client is a driver on the fake with a fast retryer.
func (f *fakeELB) driver(t *testing.T, cfg spec.ALBRouter) *Driver {
	t.Helper()
	setFakeAWSEnv(t)
	cfg.Endpoint = f.srv.URL
	if cfg.ListenerARN == "" {
		cfg.ListenerARN = listenerARN
	}
	cfg.StableTargetGroupARN, cfg.CanaryTargetGroupARN = stableTG, canaryTG
	d, err := newDriver("shop", cfg, fastRetry)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// setFakeAWSEnv gives the SDK's default chain static fake credentials and
// a region, and keeps it off the shared files and the instance metadata
// service, so nothing leaves the machine.
func setFakeAWSEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent/coalmine-test")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/coalmine-test")
}

// fastRetry keeps the SDK's standard retryer (which retries Throttling)
// but without waiting or a client-side retry quota.
func fastRetry(o *elbv2.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = 3
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
		so.RateLimiter = ratelimit.None
	})
}

// parseForm turns Name.member.N.Field=value pairs into a tree of maps,
// lists and strings.
func parseForm(v url.Values) map[string]any {
	root := map[string]any{}
	for key, vals := range v {
		parts := strings.Split(key, ".")
		var cur any = root
		var set func(any)
		for i := 0; i < len(parts); i++ {
			p := parts[i]
			if p == "member" && i+1 < len(parts) {
				n, _ := strconv.Atoi(parts[i+1])
				i++
				list, _ := cur.([]any)
				for len(list) < n {
					list = append(list, nil)
				}
				set(list)
				last := i == len(parts)-1
				if last {
					list[n-1] = vals[0]
					break
				}
				if list[n-1] == nil {
					list[n-1] = map[string]any{}
				}
				cur = list[n-1]
				set = func(x any) { list[n-1] = x }
				continue
			}
			m := cur.(map[string]any)
			if i == len(parts)-1 {
				m[p] = vals[0]
				break
			}
			next, ok := m[p]
			if !ok {
				if parts[i+1] == "member" {
					next = []any{}
				} else {
					next = map[string]any{}
				}
				m[p] = next
			}
			cur = next
			set = func(x any) { m[p] = x }
		}
	}
	return root
}

// writeXML renders a tree as the query protocol's XML: maps as elements in
// sorted order, lists as <member> elements.
func writeXML(b *strings.Builder, v any) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(b, "<%s>", k)
			writeXML(b, x[k])
			fmt.Fprintf(b, "</%s>", k)
		}
	case []any:
		for _, e := range x {
			b.WriteString("<member>")
			writeXML(b, e)
			b.WriteString("</member>")
		}
	case string:
		xml.EscapeText(b, []byte(x))
	case nil:
	default:
		panic(fmt.Sprintf("writeXML: %T", v))
	}
}

type apiErr struct{ code, msg string }

func (f *fakeELB) serve(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	action := r.PostForm.Get("Action")
	auth := r.Header.Get("Authorization")
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
		r.PostForm.Get("Version") != "2015-12-01" ||
		!strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDFAKE/") || !strings.Contains(auth, "/eu-west-1/elasticloadbalancing/aws4_request") {
		f.t.Errorf("request not in the ELBv2 query form: %s %s Content-Type %q Version %q Authorization %q",
			r.Method, action, r.Header.Get("Content-Type"), r.PostForm.Get("Version"), auth)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action)
	f.forms = append(f.forms, r.PostForm)
	in := parseForm(r.PostForm)
	var result any
	var e *apiErr
	if q := f.fail[action]; len(q) > 0 {
		f.fail[action] = q[1:]
		e = &apiErr{q[0], "injected by the test"}
	} else {
		result, e = f.do(action, in)
		if e == nil && f.after[action] != nil {
			f.after[action](f)
		}
	}
	var b strings.Builder
	if e != nil {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(&b, `<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-%d</RequestId></ErrorResponse>`, e.code, e.msg, len(f.calls))
		w.Write([]byte(b.String()))
		return
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+`<%sResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><%sResult>`, action, action)
	writeXML(&b, result)
	fmt.Fprintf(&b, `</%sResult><ResponseMetadata><RequestId>req-%d</RequestId></ResponseMetadata></%sResponse>`, action, len(f.calls), action)
	w.Header().Set("Content-Type", "text/xml")
	w.Write([]byte(b.String()))
}

func list(v any) []any { l, _ := v.([]any); return l }
func str(v any) string { s, _ := v.(string); return s }

func (f *fakeELB) ruleXML(r *fakeRule) map[string]any {
	m := map[string]any{"RuleArn": r.arn, "Priority": strconv.Itoa(r.priority), "IsDefault": "false",
		"Conditions": r.conditions, "Actions": r.actions}
	if r.transforms != nil {
		m["Transforms"] = r.transforms
	}
	return m
}

func (f *fakeELB) sortedRules() []*fakeRule {
	var rs []*fakeRule
	for _, r := range f.rules {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *fakeRule) int { return a.priority - b.priority })
	return rs
}

// checkActions validates actions as the API reference says: weights
// 0..999, target groups that exist.
func (f *fakeELB) checkActions(actions []any) *apiErr {
	if len(actions) == 0 {
		return &apiErr{"ValidationError", "Actions must not be empty"}
	}
	for _, a := range actions {
		m := a.(map[string]any)
		if m["Type"] != "forward" {
			if c, ok := m["AuthenticateOidcConfig"].(map[string]any); ok && c["ClientSecret"] == nil && c["UseExistingClientSecret"] != "true" {
				return &apiErr{"ValidationError", "ClientSecret is required unless UseExistingClientSecret is true"}
			}
			continue
		}
		fc, _ := m["ForwardConfig"].(map[string]any)
		for _, tg := range list(fc["TargetGroups"]) {
			t := tg.(map[string]any)
			w, err := strconv.Atoi(str(t["Weight"]))
			if t["Weight"] != nil && (err != nil || w < 0 || w > 999) {
				return &apiErr{"ValidationError", "Weight must be between 0 and 999"}
			}
			if _, ok := f.targetGroups[str(t["TargetGroupArn"])]; !ok {
				return &apiErr{"TargetGroupNotFound", "One or more target groups not found"}
			}
		}
		normaliseAction(m)
	}
	return nil
}

func (f *fakeELB) do(action string, in map[string]any) (any, *apiErr) {
	switch action {
	case "DescribeListeners":
		if arns := list(in["ListenerArns"]); len(arns) != 1 || arns[0] != f.listener {
			return nil, &apiErr{"ListenerNotFound", "One or more listeners not found"}
		}
		return map[string]any{"Listeners": []any{map[string]any{"ListenerArn": f.listener, "Port": "443", "Protocol": "HTTPS",
			"DefaultActions": f.defaultActions}}}, nil
	case "DescribeRules":
		if arns := list(in["RuleArns"]); len(arns) > 0 {
			var out []any
			for _, a := range arns {
				r, ok := f.rules[str(a)]
				if !ok {
					return nil, &apiErr{"RuleNotFound", "One or more rules not found"}
				}
				out = append(out, f.ruleXML(r))
			}
			return map[string]any{"Rules": out}, nil
		}
		if str(in["ListenerArn"]) != f.listener {
			return nil, &apiErr{"ListenerNotFound", "One or more listeners not found"}
		}
		all := []any{}
		for _, r := range f.sortedRules() {
			all = append(all, f.ruleXML(r))
		}
		all = append(all, map[string]any{"RuleArn": f.listener + "/default", "Priority": "default", "IsDefault": "true", "Actions": f.defaultActions})
		start, _ := strconv.Atoi(str(in["Marker"]))
		size, _ := strconv.Atoi(str(in["PageSize"]))
		if size == 0 || size > f.pageSize {
			size = f.pageSize
		}
		end := min(start+size, len(all))
		out := map[string]any{"Rules": all[start:end]}
		if end < len(all) {
			out["NextMarker"] = strconv.Itoa(end)
		}
		return out, nil
	case "DescribeTags":
		arns := list(in["ResourceArns"])
		if len(arns) > 20 {
			return nil, &apiErr{"ValidationError", "at most 20 resource ARNs"}
		}
		var out []any
		for _, a := range arns {
			var tags []any
			for _, kv := range f.tags[str(a)] {
				tags = append(tags, map[string]any{"Key": kv[0], "Value": kv[1]})
			}
			out = append(out, map[string]any{"ResourceArn": a, "Tags": tags})
		}
		return map[string]any{"TagDescriptions": out}, nil
	case "ModifyRule":
		r, ok := f.rules[str(in["RuleArn"])]
		if !ok {
			return nil, &apiErr{"RuleNotFound", "One or more rules not found"}
		}
		if acts, ok := in["Actions"]; ok {
			if e := f.checkActions(list(acts)); e != nil {
				return nil, e
			}
			r.actions = list(acts)
		}
		if c, ok := in["Conditions"]; ok {
			r.conditions = list(c)
		}
		if t, ok := in["Transforms"]; ok {
			r.transforms = list(t)
		}
		return map[string]any{"Rules": []any{f.ruleXML(r)}}, nil
	case "ModifyListener":
		if str(in["ListenerArn"]) != f.listener {
			return nil, &apiErr{"ListenerNotFound", "One or more listeners not found"}
		}
		if acts, ok := in["DefaultActions"]; ok {
			if e := f.checkActions(list(acts)); e != nil {
				return nil, e
			}
			f.defaultActions = list(acts)
		}
		return map[string]any{"Listeners": []any{map[string]any{"ListenerArn": f.listener, "DefaultActions": f.defaultActions}}}, nil
	case "CreateRule":
		p, _ := strconv.Atoi(str(in["Priority"]))
		if p < 1 || p > 50000 {
			return nil, &apiErr{"ValidationError", "Priority must be between 1 and 50000"}
		}
		for _, r := range f.rules {
			if r.priority == p {
				return nil, &apiErr{"PriorityInUse", "Priority '" + strconv.Itoa(p) + "' is currently in use"}
			}
		}
		if e := f.checkActions(list(in["Actions"])); e != nil {
			return nil, e
		}
		if len(list(in["Conditions"])) == 0 {
			return nil, &apiErr{"ValidationError", "A rule needs at least one condition"}
		}
		for _, c := range list(in["Conditions"]) {
			if m := c.(map[string]any); m["Values"] != nil && (m["HostHeaderConfig"] != nil || m["PathPatternConfig"] != nil) {
				return nil, &apiErr{"ValidationError", "You cannot specify both Values and a condition config"}
			}
		}
		f.next++
		arn := fmt.Sprintf("%s/%016x", strings.Replace(f.listener, ":listener/", ":listener-rule/", 1), 0xc0a1+f.next)
		r := &fakeRule{arn: arn, priority: p, conditions: list(in["Conditions"]), actions: list(in["Actions"]), transforms: list(in["Transforms"])}
		f.rules[arn] = r
		for _, t := range list(in["Tags"]) {
			m := t.(map[string]any)
			f.tags[arn] = append(f.tags[arn], [2]string{str(m["Key"]), str(m["Value"])})
		}
		return map[string]any{"Rules": []any{f.ruleXML(r)}}, nil
	case "DeleteRule":
		if _, ok := f.rules[str(in["RuleArn"])]; !ok {
			return nil, &apiErr{"RuleNotFound", "One or more rules not found"}
		}
		delete(f.rules, str(in["RuleArn"]))
		delete(f.tags, str(in["RuleArn"]))
		return map[string]any{}, nil
	case "SetRulePriorities":
		want := map[string]int{}
		for _, p := range list(in["RulePriorities"]) {
			m := p.(map[string]any)
			n, _ := strconv.Atoi(str(m["Priority"]))
			if _, ok := f.rules[str(m["RuleArn"])]; !ok {
				return nil, &apiErr{"RuleNotFound", "One or more rules not found"}
			}
			want[str(m["RuleArn"])] = n
		}
		seen := map[int]bool{}
		for _, r := range f.rules {
			p := r.priority
			if n, ok := want[r.arn]; ok {
				p = n
			}
			if seen[p] {
				return nil, &apiErr{"PriorityInUse", "Priority '" + strconv.Itoa(p) + "' is currently in use"}
			}
			seen[p] = true
		}
		var out []any
		for arn, n := range want {
			f.rules[arn].priority = n
			out = append(out, f.ruleXML(f.rules[arn]))
		}
		return map[string]any{"Rules": out}, nil
	case "DescribeTargetGroups":
		var out []any
		for _, a := range list(in["TargetGroupArns"]) {
			name, ok := f.targetGroups[str(a)]
			if !ok {
				return nil, &apiErr{"TargetGroupNotFound", "One or more target groups not found"}
			}
			out = append(out, map[string]any{"TargetGroupArn": a, "TargetGroupName": name, "Protocol": "HTTP", "Port": "8080", "TargetType": "ip", "HealthCheckEnabled": "true"})
		}
		return map[string]any{"TargetGroups": out}, nil
	case "DescribeTargetHealth":
		arn := str(in["TargetGroupArn"])
		if _, ok := f.targetGroups[arn]; !ok {
			return nil, &apiErr{"TargetGroupNotFound", "One or more target groups not found"}
		}
		return map[string]any{"TargetHealthDescriptions": f.health[arn]}, nil
	}
	return nil, &apiErr{"InvalidAction", "unknown action " + action}
}

// take returns the actions received since the last take.
func (f *fakeELB) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls, f.forms = nil, nil
	return c
}

// lastForm is the body of the last call of action since the last take.
func (f *fakeELB) lastForm(action string) url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.calls) - 1; i >= 0; i-- {
		if f.calls[i] == action {
			return f.forms[i]
		}
	}
	return nil
}

// weights reads the main rule's (or default action's) forward weights.
func (f *fakeELB) weights(arn string) map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	acts := f.defaultActions
	if arn != "" {
		acts = f.rules[arn].actions
	}
	out := map[string]string{}
	for _, a := range acts {
		m := a.(map[string]any)
		if m["Type"] != "forward" {
			continue
		}
		for _, tg := range list(m["ForwardConfig"].(map[string]any)["TargetGroups"]) {
			t := tg.(map[string]any)
			out[f.targetGroups[str(t["TargetGroupArn"])]] = str(t["Weight"])
		}
		if s, ok := m["ForwardConfig"].(map[string]any)["TargetGroupStickinessConfig"].(map[string]any); ok && s["Enabled"] == "true" {
			out["stickiness"] = str(s["DurationSeconds"])
		}
	}
	return out
}

var _ = aws.String
