package alb

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// This file holds the pure decisions of the driver: how the forward action
// reads and is rewritten, what coalmine's header-route rules must look
// like, and which calls turn the listener's rules into them. The driver
// (driver.go) only reads and writes through the API.

// Tags on the rules coalmine creates for header routes. A rule is
// coalmine's when TagRollout names the rollout; TagHeaderRoute names the
// header route it carries.
const (
	TagRollout     = "coalmine.dev/rollout"
	TagHeaderRoute = "coalmine.dev/header-route"
)

// maxPriority is the largest priority an ALB listener rule takes.
const maxPriority = 50000

// forwardState is what the main forward action holds.
type forwardState struct {
	// index of the forward action in the rule's (or listener's) actions.
	index   int
	weights pair
	// stickiness is the action's stickiness (nil when it has none).
	stickiness *types.TargetGroupStickinessConfig
}

// targetsOf lists the target groups a forward action sends to, with their
// weights: the ForwardConfig's tuples, or the one TargetGroupArn (a
// weight of 1, as the ALB reports it).
func targetsOf(a types.Action) map[string]int32 {
	out := map[string]int32{}
	if a.ForwardConfig != nil && len(a.ForwardConfig.TargetGroups) > 0 {
		for _, t := range a.ForwardConfig.TargetGroups {
			w := int32(1)
			if t.Weight != nil {
				w = *t.Weight
			}
			out[aws.ToString(t.TargetGroupArn)] += w
		}
		return out
	}
	if a.TargetGroupArn != nil {
		out[*a.TargetGroupArn] = 1
	}
	return out
}

// readForward finds the forward action among actions and reads the stable
// and canary weights from it. It refuses an action that forwards to a
// target group other than the two, so coalmine never drops one it does not
// know of.
func readForward(actions []types.Action, stableARN, canaryARN string) (forwardState, error) {
	idx := slices.IndexFunc(actions, func(a types.Action) bool { return a.Type == types.ActionTypeEnumForward })
	if idx < 0 {
		return forwardState{}, fmt.Errorf("it has no forward action (%s): give it a forward action to the stable target group", actionTypes(actions))
	}
	a := actions[idx]
	st := forwardState{index: idx}
	for arn, w := range targetsOf(a) {
		switch arn {
		case stableARN:
			st.weights.Stable = w
		case canaryARN:
			st.weights.Canary = w
		default:
			return forwardState{}, fmt.Errorf("its forward action also sends to target group %s, which is neither the stable nor the canary target group: forward to the stable target group only", arn)
		}
	}
	if a.ForwardConfig != nil && a.ForwardConfig.TargetGroupStickinessConfig != nil {
		s := *a.ForwardConfig.TargetGroupStickinessConfig
		st.stickiness = &s
	}
	return st, nil
}

func actionTypes(actions []types.Action) string {
	if len(actions) == 0 {
		return "no actions"
	}
	var names []string
	for _, a := range actions {
		names = append(names, string(a.Type))
	}
	return "actions: " + strings.Join(names, ", ")
}

// stickinessFor is the stickiness coalmine sets: on for d when d > 0, else
// nil (coalmine leaves the action's own stickiness as it is).
func stickinessFor(d spec.Duration) *types.TargetGroupStickinessConfig {
	if d.D() <= 0 {
		return nil
	}
	return &types.TargetGroupStickinessConfig{Enabled: aws.Bool(true), DurationSeconds: aws.Int32(int32(d.D().Seconds()))}
}

// forwardMatches reports whether the action holds the weights (and the
// stickiness, when coalmine sets one) it should.
func forwardMatches(st forwardState, want pair, stick *types.TargetGroupStickinessConfig) bool {
	if st.weights != want {
		return false
	}
	if stick == nil {
		return true
	}
	return st.stickiness != nil && aws.ToBool(st.stickiness.Enabled) == aws.ToBool(stick.Enabled) &&
		aws.ToInt32(st.stickiness.DurationSeconds) == aws.ToInt32(stick.DurationSeconds)
}

// withForward returns a copy of actions, fit to be written back, whose
// forward action sends to tuples (keeping its stickiness unless stick
// replaces it).
func withForward(actions []types.Action, idx int, tuples []types.TargetGroupTuple, stick *types.TargetGroupStickinessConfig) []types.Action {
	out := writable(actions)
	fc := &types.ForwardActionConfig{TargetGroups: tuples}
	if old := actions[idx].ForwardConfig; old != nil && old.TargetGroupStickinessConfig != nil {
		s := *old.TargetGroupStickinessConfig
		fc.TargetGroupStickinessConfig = &s
	}
	if stick != nil {
		s := *stick
		fc.TargetGroupStickinessConfig = &s
	}
	out[idx] = types.Action{Type: types.ActionTypeEnumForward, Order: actions[idx].Order, ForwardConfig: fc}
	return out
}

// writable copies actions read from the API so they can be sent back: an
// OIDC authentication action is described without its client secret, and
// must say to keep the existing one.
func writable(actions []types.Action) []types.Action {
	out := slices.Clone(actions)
	for i := range out {
		if c := out[i].AuthenticateOidcConfig; c != nil && c.ClientSecret == nil {
			cc := *c
			cc.UseExistingClientSecret = aws.Bool(true)
			out[i].AuthenticateOidcConfig = &cc
		}
	}
	return out
}

// tuples is the forward action's target groups with weights p.
func tuples(stableARN, canaryARN string, p pair) []types.TargetGroupTuple {
	return []types.TargetGroupTuple{
		{TargetGroupArn: aws.String(stableARN), Weight: aws.Int32(p.Stable)},
		{TargetGroupArn: aws.String(canaryARN), Weight: aws.Int32(p.Canary)},
	}
}

// headerValue is the ALB comparison string for a match: an exact value as
// it is (lint refused one with the * or ? wildcards, which the ALB cannot
// match literally), a prefix followed by *.
func headerValue(m spec.StringMatch) (string, error) {
	switch {
	case m.Exact != nil:
		return *m.Exact, nil
	case m.Prefix != nil:
		return *m.Prefix + "*", nil
	}
	return "", fmt.Errorf("the ALB matches header values exactly or by prefix, not by regex: %w", errUnsupportedRegex)
}

var errUnsupportedRegex = fmt.Errorf("regex header match")

// writableConditions copies conditions read from the API so they can be
// sent in a new rule: the ALB describes host-header and path-pattern
// conditions both in Values and in their config, and takes only one.
func writableConditions(cs []types.RuleCondition) []types.RuleCondition {
	out := slices.Clone(cs)
	for i := range out {
		c := &out[i]
		if c.HostHeaderConfig != nil || c.PathPatternConfig != nil || c.HttpHeaderConfig != nil ||
			c.QueryStringConfig != nil || c.HttpRequestMethodConfig != nil || c.SourceIpConfig != nil {
			c.Values = nil
		}
	}
	return out
}

// headerConditions are a header route's rule conditions: the main rule's
// own (so the route catches only the service's requests), then one
// http-header condition per match (all must hold).
func headerConditions(base []types.RuleCondition, r spec.HeaderRoute) ([]types.RuleCondition, error) {
	out := writableConditions(base)
	for _, m := range r.Match {
		v, err := headerValue(m.HeaderValue)
		if err != nil {
			return nil, fmt.Errorf("header route %q, header %s: %w", r.Name, m.HeaderName, err)
		}
		out = append(out, types.RuleCondition{
			Field:            aws.String("http-header"),
			HttpHeaderConfig: &types.HttpHeaderConditionConfig{HttpHeaderName: aws.String(m.HeaderName), Values: []string{v}},
		})
	}
	return out, nil
}

// conditionsKey is a canonical text of a rule's conditions, to compare
// what the ALB holds with what coalmine wants whichever form the ALB
// describes them in.
func conditionsKey(cs []types.RuleCondition) string {
	keys := make([]string, 0, len(cs))
	for _, c := range cs {
		f := aws.ToString(c.Field)
		var vals []string
		switch {
		case c.HttpHeaderConfig != nil:
			f += ":" + strings.ToLower(aws.ToString(c.HttpHeaderConfig.HttpHeaderName))
			vals = append(vals, c.HttpHeaderConfig.Values...)
			for _, r := range c.HttpHeaderConfig.RegexValues {
				vals = append(vals, "re:"+r)
			}
		case c.HostHeaderConfig != nil:
			vals = append(vals, c.HostHeaderConfig.Values...)
			for _, r := range c.HostHeaderConfig.RegexValues {
				vals = append(vals, "re:"+r)
			}
		case c.PathPatternConfig != nil:
			vals = append(vals, c.PathPatternConfig.Values...)
			for _, r := range c.PathPatternConfig.RegexValues {
				vals = append(vals, "re:"+r)
			}
		case c.HttpRequestMethodConfig != nil:
			vals = append(vals, c.HttpRequestMethodConfig.Values...)
		case c.SourceIpConfig != nil:
			vals = append(vals, c.SourceIpConfig.Values...)
		case c.QueryStringConfig != nil:
			for _, kv := range c.QueryStringConfig.Values {
				vals = append(vals, aws.ToString(kv.Key)+"="+aws.ToString(kv.Value))
			}
		default:
			vals = append(vals, c.Values...)
		}
		for _, r := range c.RegexValues {
			vals = append(vals, "re:"+r)
		}
		slices.Sort(vals)
		keys = append(keys, f+"="+strings.Join(vals, "\x00"))
	}
	slices.Sort(keys)
	return strings.Join(keys, "\x01")
}

// actionsKey is a canonical text of actions: their types in order, and the
// forward action's target groups and weights.
func actionsKey(as []types.Action) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(string(a.Type))
		if a.Type == types.ActionTypeEnumForward {
			ts := targetsOf(a)
			for _, arn := range slices.Sorted(maps.Keys(ts)) {
				fmt.Fprintf(&b, " %s=%d", arn, ts[arn])
			}
		}
		b.WriteString(";")
	}
	return b.String()
}

// wantRule is one header-route rule as coalmine wants it.
type wantRule struct {
	route      string
	priority   int32
	conditions []types.RuleCondition
	actions    []types.Action
}

// ownRule is one of coalmine's header-route rules as the ALB holds it.
type ownRule struct {
	arn, route string
	priority   int32
	conditions []types.RuleCondition
	actions    []types.Action
}

// headerPlan is the calls that turn the listener's rules of the rollout
// into the wanted ones.
type headerPlan struct {
	deletes    []string
	priorities []types.RulePriorityPair
	modifies   []ownRule // arn, conditions and actions to set
	creates    []wantRule
	// wanted are the wanted rules' route names, in order.
	wanted []string
}

func (p headerPlan) empty() bool {
	return len(p.deletes) == 0 && len(p.priorities) == 0 && len(p.modifies) == 0 && len(p.creates) == 0
}

// priorityOf parses a rule's priority; the default rule has none.
func priorityOf(r types.Rule) (int32, bool) {
	n, err := strconv.ParseInt(aws.ToString(r.Priority), 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// headerPriorities chooses the priorities of n header-route rules. Behind
// a rule (mainPriority > 0) they take the n numbers right before it, which
// must be free of other rules (the ALB evaluates rules lowest number
// first, so a route placed further up would catch requests meant for a
// rule in between); behind the listener's default action (mainPriority 0)
// they follow every other rule. foreign are the priorities of the rules
// that are not the rollout's own.
func headerPriorities(n int, mainPriority int32, foreign []int32) ([]int32, error) {
	if n == 0 {
		return nil, nil
	}
	out := make([]int32, n)
	if mainPriority == 0 {
		top := int32(0)
		for _, p := range foreign {
			top = max(top, p)
		}
		if int(top)+n > maxPriority {
			return nil, fmt.Errorf("the listener's rules reach priority %d, leaving no room for %d header-route rules after them (maximum %d)", top, n, maxPriority)
		}
		for i := range out {
			out[i] = top + 1 + int32(i)
		}
		return out, nil
	}
	first := mainPriority - int32(n)
	for _, p := range foreign {
		if p >= first && p < mainPriority {
			return nil, fmt.Errorf("the %d header-route rules take priorities %d to %d, right before the rule (priority %d), but another rule has priority %d: renumber the listener's rules to leave %d free priorities before coalmine's rule", n, first, mainPriority-1, mainPriority, p, n)
		}
	}
	if first < 1 {
		return nil, fmt.Errorf("the %d header-route rules take the priorities right before the rule, but it has priority %d: give the rule a priority above %d", n, mainPriority, n)
	}
	for i := range out {
		out[i] = first + int32(i)
	}
	return out, nil
}

// planHeaderRules compares the rollout's own rules with the wanted ones,
// matched by route name, and returns only the calls that change something.
func planHeaderRules(own []ownRule, want []wantRule) headerPlan {
	var p headerPlan
	byRoute := map[string]ownRule{}
	for _, o := range own {
		if _, dup := byRoute[o.route]; dup || !slices.ContainsFunc(want, func(w wantRule) bool { return w.route == o.route }) {
			p.deletes = append(p.deletes, o.arn)
			continue
		}
		byRoute[o.route] = o
	}
	for _, w := range want {
		p.wanted = append(p.wanted, w.route)
		o, ok := byRoute[w.route]
		if !ok {
			p.creates = append(p.creates, w)
			continue
		}
		if o.priority != w.priority {
			p.priorities = append(p.priorities, types.RulePriorityPair{RuleArn: aws.String(o.arn), Priority: aws.Int32(w.priority)})
		}
		if conditionsKey(o.conditions) != conditionsKey(w.conditions) || actionsKey(o.actions) != actionsKey(w.actions) {
			p.modifies = append(p.modifies, ownRule{arn: o.arn, route: w.route, conditions: w.conditions, actions: w.actions})
		}
	}
	return p
}
