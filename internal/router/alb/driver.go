// Package alb drives an AWS Application Load Balancer for one rollout: it
// sets the weights of the stable and canary target groups in the forward
// action of one listener rule (or of the listener's default action), and
// creates one rule per header route, through the ELBv2 API with the AWS
// SDK's default credential chain. The targets in the target groups are the
// platform's business (ECS, an Auto Scaling group, the AWS Load Balancer
// Controller); coalmine never registers any.
//
// What it writes, and how it recognises its own:
//   - The forward action's two target group tuples. ALB weights are 0..999
//     and only their ratio matters: see weightsFor. Stickiness
//     (TargetGroupStickinessConfig) is set only when the router's
//     stickinessDuration is, and left as it is otherwise.
//   - One rule per header route, forwarding to one target group, with the
//     main rule's conditions (and transforms) plus one http-header
//     condition per match, and the main rule's other actions (an
//     authentication action still runs). The rules are tagged
//     coalmine.dev/rollout=NAME and coalmine.dev/header-route=ROUTE, and take
//     the priorities right before the main rule (after every rule for the
//     default action).
//
// Apply reads first and writes only what differs, so a resync that finds
// everything applied sends no Modify call. The ALB has no place for
// coalmine's routing generation: the driver keeps the last one it applied
// in memory, with what it wrote for it, and Observe reports it only while
// the ALB still shows exactly that (else 0, and the adapter applies
// again). None of this has run against real AWS: it is tested against a
// local server speaking the ELBv2 query protocol as the API reference
// describes it.
package alb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Driver drives one rollout's routing on an ALB. It implements
// router.Driver.
type Driver struct {
	rollout string
	cfg     spec.ALBRouter
	client  *elbv2.Client

	// applied is what the last successful Apply wrote (nil before it and
	// after a failed one), for Observe to compare with.
	applied *appliedState
}

// appliedState is what one Apply left on the ALB.
type appliedState struct {
	generation uint64
	weight     spec.Weight
	weights    pair
	stickiness *types.TargetGroupStickinessConfig
	// headerRules maps coalmine's header-route rule ARNs to the key of
	// their conditions and actions.
	headerRules map[string]string
}

var _ router.Driver = (*Driver)(nil)

// New returns the driver of rollout on the ALB listener cfg names, with
// the SDK's default credential chain and cfg's region and endpoint.
func New(rollout string, cfg spec.ALBRouter) (*Driver, error) {
	return newDriver(rollout, cfg)
}

// newDriver is New with extra client options (tests make the retryer
// fast).
func newDriver(rollout string, cfg spec.ALBRouter, optFns ...func(*elbv2.Options)) (*Driver, error) {
	switch {
	case cfg.ListenerARN == "":
		return nil, errors.New("alb router: listenerARN is required")
	case cfg.StableTargetGroupARN == "" || cfg.CanaryTargetGroupARN == "":
		return nil, errors.New("alb router: stableTargetGroupARN and canaryTargetGroupARN are required")
	case cfg.StableTargetGroupARN == cfg.CanaryTargetGroupARN:
		return nil, errors.New("alb router: the canary target group must differ from the stable one")
	}
	var loadOpts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(context.Background(), loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("alb router: load the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("alb router: no AWS region: set region in the router, or AWS_REGION, or region in the shared AWS config")
	}
	opts := []func(*elbv2.Options){func(o *elbv2.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}}
	return &Driver{rollout: rollout, cfg: cfg, client: elbv2.NewFromConfig(awsCfg, append(opts, optFns...)...)}, nil
}

// Backends names the two target groups (the ALB's access logs are not
// read by coalmine, but a line names its target group this way).
func (d *Driver) Backends() map[string]spec.Role {
	return map[string]spec.Role{
		targetGroupName(d.cfg.StableTargetGroupARN): spec.RoleStable,
		targetGroupName(d.cfg.CanaryTargetGroupARN): spec.RoleCanary,
	}
}

// targetGroupName is the NAME of arn:...:targetgroup/NAME/ID (the whole
// ARN when it has another form).
func targetGroupName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":targetgroup/")
	if !ok {
		return arn
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

func (d *Driver) errorf(format string, args ...any) error {
	return fmt.Errorf("ALB router of rollout %s: "+format, append([]any{d.rollout}, args...)...)
}

// apiError names the call that failed and, when AWS refused it for lack
// of permission, the IAM action to grant.
func apiError(op, what string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation":
			return fmt.Errorf("%s %s: access denied: grant elasticloadbalancing:%s to coalmine's AWS identity (docs/routers.md lists the actions): %w", op, what, op, err)
		}
	}
	return fmt.Errorf("%s %s: %w", op, what, err)
}

// main is the rule or default action coalmine sets the weights of.
type mainAction struct {
	actions    []types.Action
	conditions []types.RuleCondition
	transforms []types.RuleTransform
	// priority is the rule's priority, 0 for the listener's default.
	priority int32
}

// listenerRules reads every rule of the listener (the default one
// included), page by page.
func (d *Driver) listenerRules(ctx context.Context) ([]types.Rule, error) {
	var rules []types.Rule
	in := &elbv2.DescribeRulesInput{ListenerArn: aws.String(d.cfg.ListenerARN), PageSize: aws.Int32(400)}
	for {
		out, err := d.client.DescribeRules(ctx, in)
		if err != nil {
			return nil, apiError("DescribeRules", "of listener "+d.cfg.ListenerARN, err)
		}
		rules = append(rules, out.Rules...)
		if aws.ToString(out.NextMarker) == "" {
			return rules, nil
		}
		in.Marker = out.NextMarker
	}
}

// findMain picks the main rule (or the default rule) out of the
// listener's rules.
func (d *Driver) findMain(rules []types.Rule) (mainAction, error) {
	for _, r := range rules {
		switch {
		case d.cfg.RuleARN == "" && aws.ToBool(r.IsDefault):
			return mainAction{actions: r.Actions}, nil
		case d.cfg.RuleARN != "" && aws.ToString(r.RuleArn) == d.cfg.RuleARN:
			p, ok := priorityOf(r)
			if !ok {
				return mainAction{}, fmt.Errorf("rule %s is the listener's default rule: leave ruleARN empty to use the default action", d.cfg.RuleARN)
			}
			return mainAction{actions: r.Actions, conditions: r.Conditions, transforms: r.Transforms, priority: p}, nil
		}
	}
	if d.cfg.RuleARN == "" {
		return mainAction{}, fmt.Errorf("listener %s has no default rule in DescribeRules", d.cfg.ListenerARN)
	}
	return mainAction{}, fmt.Errorf("rule %s is not a rule of listener %s: check ruleARN and listenerARN", d.cfg.RuleARN, d.cfg.ListenerARN)
}

// readMain reads only the main rule or the listener's default actions:
// one call, for Observe and Check.
func (d *Driver) readMain(ctx context.Context) ([]types.Action, error) {
	if d.cfg.RuleARN == "" {
		out, err := d.client.DescribeListeners(ctx, &elbv2.DescribeListenersInput{ListenerArns: []string{d.cfg.ListenerARN}})
		if err != nil {
			return nil, apiError("DescribeListeners", d.cfg.ListenerARN, err)
		}
		if len(out.Listeners) != 1 {
			return nil, fmt.Errorf("DescribeListeners %s answered %d listeners", d.cfg.ListenerARN, len(out.Listeners))
		}
		return out.Listeners[0].DefaultActions, nil
	}
	out, err := d.client.DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: []string{d.cfg.RuleARN}})
	if err != nil {
		return nil, apiError("DescribeRules", d.cfg.RuleARN, err)
	}
	if len(out.Rules) != 1 {
		return nil, fmt.Errorf("DescribeRules %s answered %d rules", d.cfg.RuleARN, len(out.Rules))
	}
	return out.Rules[0].Actions, nil
}

// ownRules reads the tags of the listener's rules and returns the ones
// that are this rollout's, and the priorities of all others.
func (d *Driver) ownRules(ctx context.Context, rules []types.Rule) ([]ownRule, []int32, error) {
	byARN := map[string]types.Rule{}
	var arns []string
	var foreign []int32
	for _, r := range rules {
		p, ok := priorityOf(r)
		if !ok {
			continue // the default rule
		}
		arn := aws.ToString(r.RuleArn)
		if arn == d.cfg.RuleARN {
			foreign = append(foreign, p)
			continue
		}
		byARN[arn] = r
		arns = append(arns, arn)
	}
	var own []ownRule
	for batch := range slices.Chunk(arns, 20) {
		out, err := d.client.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: batch})
		if err != nil {
			return nil, nil, apiError("DescribeTags", "of the listener's rules", err)
		}
		for _, td := range out.TagDescriptions {
			arn := aws.ToString(td.ResourceArn)
			r, ok := byARN[arn]
			if !ok {
				continue
			}
			tags := map[string]string{}
			for _, t := range td.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			if tags[TagRollout] != d.rollout {
				continue
			}
			p, _ := priorityOf(r)
			own = append(own, ownRule{arn: arn, route: tags[TagHeaderRoute], priority: p, conditions: r.Conditions, actions: r.Actions})
			delete(byARN, arn)
		}
	}
	for _, r := range byARN {
		p, _ := priorityOf(r)
		foreign = append(foreign, p)
	}
	return own, foreign, nil
}

// wantRules builds the header-route rules d asks for.
func (d *Driver) wantRules(des router.Desired, m mainAction, fwd forwardState, foreign []int32) ([]wantRule, error) {
	var routes []spec.HeaderRoute
	for _, r := range des.HeaderRoutes {
		if r.Removes() || (r.To != spec.RoleStable && des.Canary == nil) {
			continue // nothing to route, or no canary to route to
		}
		routes = append(routes, r)
	}
	prios, err := headerPriorities(len(routes), m.priority, foreign)
	if err != nil {
		return nil, err
	}
	out := make([]wantRule, 0, len(routes))
	for i, r := range routes {
		conds, err := headerConditions(m.conditions, r)
		if err != nil {
			return nil, err
		}
		target := d.cfg.CanaryTargetGroupARN
		if r.To == spec.RoleStable {
			target = d.cfg.StableTargetGroupARN
		}
		acts := withForward(m.actions, fwd.index, []types.TargetGroupTuple{{TargetGroupArn: aws.String(target), Weight: aws.Int32(1)}}, nil)
		if f := acts[fwd.index].ForwardConfig; f != nil {
			f.TargetGroupStickinessConfig = nil
		}
		out = append(out, wantRule{route: r.Name, priority: prios[i], conditions: conds, actions: acts})
	}
	return out, nil
}

// Apply makes the ALB route as des says: header-route rules first, then the
// main forward action's weights. Only calls that change something are
// sent.
func (d *Driver) Apply(ctx context.Context, des router.Desired) error {
	d.applied = nil
	if len(des.MirrorRoutes) > 0 {
		return d.errorf("mirror routes: %w (an ALB cannot mirror requests)", router.ErrUnsupported)
	}
	if des.UserHeader != "" {
		return d.errorf("assignment.userHeader: %w (an ALB cannot split by a header's value; use stickinessDuration)", router.ErrUnsupported)
	}
	rules, err := d.listenerRules(ctx)
	if err != nil {
		return d.errorf("%w", err)
	}
	m, err := d.findMain(rules)
	if err != nil {
		return d.errorf("%w", err)
	}
	fwd, err := readForward(m.actions, d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN)
	if err != nil {
		return d.errorf("%s: %w", d.mainName(), err)
	}
	weights, stick := weightsFor(des.Weight), stickinessFor(d.cfg.StickinessDuration)
	if des.Canary == nil {
		weights = weightsFor(0)
	}
	writeMain := func() error {
		if forwardMatches(fwd, weights, stick) {
			return nil
		}
		return d.writeMain(ctx, withForward(m.actions, fwd.index, tuples(d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN, weights), stick))
	}
	// A lower canary share (an abort) goes in first and on its own: no
	// header-rule trouble (a foreign rule in the priorities, a quota, a
	// missing DescribeTags permission) may keep it from the ALB.
	lowered := canaryShare(weights) < canaryShare(fwd.weights)
	if lowered {
		if err := writeMain(); err != nil {
			return d.errorf("%w", err)
		}
	}
	own, foreign, err := d.ownRules(ctx, rules)
	if err != nil {
		return d.errorf("%w", err)
	}
	want, err := d.wantRules(des, m, fwd, foreign)
	if err != nil {
		return d.errorf("%w", err)
	}
	plan := planHeaderRules(own, want)
	arns, err := d.execute(ctx, plan, own, m.transforms)
	if err != nil {
		return d.errorf("%w", err)
	}
	if !lowered {
		if err := writeMain(); err != nil {
			return d.errorf("%w", err)
		}
	}
	st := &appliedState{generation: des.Generation, weight: des.Weight, weights: weights, stickiness: stick, headerRules: map[string]string{}}
	if des.Canary == nil {
		st.weight = 0
	}
	for i, w := range want {
		st.headerRules[arns[i]] = conditionsKey(w.conditions) + "\x02" + actionsKey(w.actions)
	}
	d.applied = st
	return nil
}

func (d *Driver) mainName() string {
	if d.cfg.RuleARN == "" {
		return "the default action of listener " + d.cfg.ListenerARN
	}
	return "rule " + d.cfg.RuleARN
}

// execute sends a plan's calls (deletes, priorities, modifications,
// creations, in that order, so no two rules ever want one priority) and
// returns the ARN of each wanted rule, in want's order.
func (d *Driver) execute(ctx context.Context, p headerPlan, own []ownRule, transforms []types.RuleTransform) ([]string, error) {
	for _, arn := range p.deletes {
		if _, err := d.client.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: aws.String(arn)}); err != nil && !isCode(err, "RuleNotFound") {
			return nil, apiError("DeleteRule", arn, err)
		}
	}
	if len(p.priorities) > 0 {
		if _, err := d.client.SetRulePriorities(ctx, &elbv2.SetRulePrioritiesInput{RulePriorities: p.priorities}); err != nil {
			return nil, apiError("SetRulePriorities", "of the header-route rules", err)
		}
	}
	for _, m := range p.modifies {
		_, err := d.client.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(m.arn), Conditions: m.conditions, Actions: m.actions, Transforms: transforms})
		if err != nil {
			return nil, apiError("ModifyRule", m.arn+" (header route "+m.route+")", err)
		}
	}
	created := map[string]string{}
	for _, c := range p.creates {
		out, err := d.client.CreateRule(ctx, &elbv2.CreateRuleInput{
			ListenerArn: aws.String(d.cfg.ListenerARN),
			Priority:    aws.Int32(c.priority),
			Conditions:  c.conditions,
			Actions:     c.actions,
			Transforms:  transforms,
			Tags: []types.Tag{
				{Key: aws.String(TagRollout), Value: aws.String(d.rollout)},
				{Key: aws.String(TagHeaderRoute), Value: aws.String(c.route)},
			},
		})
		if err != nil {
			return nil, apiError("CreateRule", fmt.Sprintf("for header route %s at priority %d", c.route, c.priority), err)
		}
		if len(out.Rules) != 1 {
			return nil, fmt.Errorf("CreateRule for header route %s answered %d rules", c.route, len(out.Rules))
		}
		created[c.route] = aws.ToString(out.Rules[0].RuleArn)
	}
	ownARN := map[string]string{}
	for _, o := range own {
		if _, ok := ownARN[o.route]; !ok && !slices.Contains(p.deletes, o.arn) {
			ownARN[o.route] = o.arn
		}
	}
	var arns []string
	for _, w := range p.wanted {
		if a, ok := created[w]; ok {
			arns = append(arns, a)
		} else {
			arns = append(arns, ownARN[w])
		}
	}
	return arns, nil
}

// writeMain sets the main rule's (or the listener's default) actions.
func (d *Driver) writeMain(ctx context.Context, actions []types.Action) error {
	if d.cfg.RuleARN == "" {
		_, err := d.client.ModifyListener(ctx, &elbv2.ModifyListenerInput{ListenerArn: aws.String(d.cfg.ListenerARN), DefaultActions: actions})
		if err != nil {
			return apiError("ModifyListener", d.cfg.ListenerARN, err)
		}
		return nil
	}
	_, err := d.client.ModifyRule(ctx, &elbv2.ModifyRuleInput{RuleArn: aws.String(d.cfg.RuleARN), Actions: actions})
	if err != nil {
		return apiError("ModifyRule", d.cfg.RuleARN, err)
	}
	return nil
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// Observe reads the weights the ALB applies and whether the canary target
// group has a target taking traffic. The generation is the last applied
// one while the ALB shows what was applied for it, else 0.
func (d *Driver) Observe(ctx context.Context) (router.Applied, error) {
	var a router.Applied
	actions, err := d.readMain(ctx)
	if err != nil {
		return a, d.errorf("%w", err)
	}
	fwd, err := readForward(actions, d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN)
	if err != nil {
		return a, d.errorf("%s: %w", d.mainName(), err)
	}
	st := d.applied
	if st != nil && forwardMatches(fwd, st.weights, st.stickiness) {
		// The ALB holds the pair coalmine set for this weight; the
		// weight itself is finer than the ALB's 0.1% resolution.
		a.Weight = st.weight
		ok, err := d.headerRulesIntact(ctx, st)
		if err != nil {
			return a, d.errorf("%w", err)
		}
		if ok {
			a.Generation = st.generation
		}
	} else if a.Weight, err = shareOf(fwd.weights); err != nil {
		return a, d.errorf("%s: %w", d.mainName(), err)
	}
	if a.CanaryAvailable, err = d.canaryAvailable(ctx); err != nil {
		return a, d.errorf("%w", err)
	}
	return a, nil
}

// headerRulesIntact reports whether coalmine's header-route rules are as
// the last Apply left them (one DescribeRules call for all of them).
func (d *Driver) headerRulesIntact(ctx context.Context, st *appliedState) (bool, error) {
	if len(st.headerRules) == 0 {
		return true, nil
	}
	arns := slices.Sorted(maps.Keys(st.headerRules))
	out, err := d.client.DescribeRules(ctx, &elbv2.DescribeRulesInput{RuleArns: arns})
	if isCode(err, "RuleNotFound") {
		return false, nil // deleted by someone: apply again
	}
	if err != nil {
		return false, apiError("DescribeRules", "of the header-route rules", err)
	}
	if len(out.Rules) != len(arns) {
		return false, nil
	}
	for _, r := range out.Rules {
		if st.headerRules[aws.ToString(r.RuleArn)] != conditionsKey(r.Conditions)+"\x02"+actionsKey(r.Actions) {
			return false, nil
		}
	}
	return true, nil
}

// canaryAvailable reports whether the canary target group has a target
// the ALB sends requests to: a healthy one, or one whose target group has
// health checks off (state unavailable, reason
// Target.HealthCheckDisabled), which the ALB routes to unchecked. Targets
// that are initial, unhealthy, draining or unused (not yet behind a rule
// of the load balancer) do not count.
func (d *Driver) canaryAvailable(ctx context.Context) (bool, error) {
	out, err := d.client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(d.cfg.CanaryTargetGroupARN)})
	if err != nil {
		return false, apiError("DescribeTargetHealth", d.cfg.CanaryTargetGroupARN, err)
	}
	for _, t := range out.TargetHealthDescriptions {
		if h := t.TargetHealth; h != nil && (h.State == types.TargetHealthStateEnumHealthy ||
			(h.State == types.TargetHealthStateEnumUnavailable && h.Reason == types.TargetHealthReasonEnumHealthCheckDisabled)) {
			return true, nil
		}
	}
	return false, nil
}

// Check reports whether the rule (or listener) and both target groups can
// be read, and the forward action is one coalmine can set.
func (d *Driver) Check(ctx context.Context) error {
	actions, err := d.readMain(ctx)
	if err != nil {
		return d.errorf("%w", err)
	}
	if _, err := readForward(actions, d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN); err != nil {
		return d.errorf("%s: %w", d.mainName(), err)
	}
	out, err := d.client.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN}})
	if err != nil {
		return d.errorf("%w", apiError("DescribeTargetGroups", "stable and canary", err))
	}
	for _, arn := range []string{d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN} {
		if !slices.ContainsFunc(out.TargetGroups, func(tg types.TargetGroup) bool { return aws.ToString(tg.TargetGroupArn) == arn }) {
			return d.errorf("DescribeTargetGroups did not return target group %s", arn)
		}
	}
	return nil
}

// Remove sends all traffic to stable and deletes the rollout's
// header-route rules.
func (d *Driver) Remove(ctx context.Context) error {
	d.applied = nil
	rules, err := d.listenerRules(ctx)
	if err != nil {
		return d.errorf("%w", err)
	}
	m, err := d.findMain(rules)
	if err != nil {
		return d.errorf("%w", err)
	}
	fwd, err := readForward(m.actions, d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN)
	if err != nil {
		return d.errorf("%s: %w", d.mainName(), err)
	}
	if w := weightsFor(0); !forwardMatches(fwd, w, nil) {
		if err := d.writeMain(ctx, withForward(m.actions, fwd.index, tuples(d.cfg.StableTargetGroupARN, d.cfg.CanaryTargetGroupARN, w), nil)); err != nil {
			return d.errorf("%w", err)
		}
	}
	own, _, err := d.ownRules(ctx, rules)
	if err != nil {
		return d.errorf("%w", err)
	}
	for _, o := range own {
		if _, err := d.client.DeleteRule(ctx, &elbv2.DeleteRuleInput{RuleArn: aws.String(o.arn)}); err != nil && !isCode(err, "RuleNotFound") {
			return d.errorf("%w", apiError("DeleteRule", o.arn, err))
		}
	}
	return nil
}

// canaryShare is a pair's canary share in basis points, the whole for a
// pair that sends nothing (so any real pair counts as lower).
func canaryShare(p pair) spec.Weight {
	w, err := shareOf(p)
	if err != nil {
		return spec.MaxWeight
	}
	return w
}
