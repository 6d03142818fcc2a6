package spec

import (
	"strings"
	"time"
)

// EventTypes are the event types of SPEC §6.4, the values allowed in a
// notification's `on` list besides NotifyAllEvents.
var EventTypes = []string{
	"rollout-started",
	"rollout-step-completed",
	"rollout-paused",
	"rollout-resumed",
	"rollout-promoted",
	"rollout-completed",
	"rollout-aborted",
	"rollout-weight-changed",
	"analysis-started",
	"analysis-successful",
	"analysis-failed",
	"analysis-inconclusive",
	"analysis-error",
	"analysis-nodata",
	"endpoint-unhealthy",
	"endpoint-healthy",
	"router-unavailable",
	"router-available",
}

// NotifyAllEvents in a notification's `on` list subscribes to every event type.
const NotifyAllEvents = "*"

// Validate reports every problem of the rollout with its field path. It is
// pure and checks the effective configuration, so call SetDefaults first.
// References to AnalysisTemplates are checked by internal/config, which sees
// all documents.
func (r *Rollout) Validate() FieldErrors {
	v := &validator{}
	v.apiVersionKind(r.APIVersion, r.Kind, KindRollout)
	v.name("metadata.name", r.Metadata.Name)

	s := &r.Spec
	p := FieldPath("spec")
	if s.TrafficRouting.Router.External() {
		v.router(p, s)
	} else {
		v.listen(p.Child("listen"), s.Listen)
	}
	if s.TLS != nil {
		if s.TLS.CertFile == "" {
			v.add(p.Child("tls").Child("certFile"), "certFile is required when tls is set")
		}
		if s.TLS.KeyFile == "" {
			v.add(p.Child("tls").Child("keyFile"), "keyFile is required when tls is set")
		}
	}
	v.protocols(p.Child("protocols"), s)
	needEndpoints := s.TrafficRouting.Router.UsesEndpoints()
	v.version(p.Child("stable"), "stable", s.Stable, needEndpoints)
	if c := s.Canary; c != nil && !(c.Version == "" && len(c.Endpoints) == 0) && c.Version != s.Stable.Version {
		v.version(p.Child("canary"), "canary", *c, needEndpoints)
	} else if c != nil {
		// An empty canary, or one equal to stable, means nothing to roll
		// out; its endpoints must still be usable if given.
		v.endpoints(p.Child("canary").Child("endpoints"), c.Endpoints)
	}
	if s.HealthCheck != nil {
		v.healthCheck(p.Child("healthCheck"), *s.HealthCheck)
		if s.HealthCheck.GRPC != nil && !s.HealthCheck.Disabled {
			v.grpcHealthCheckEndpoints(p, s)
		}
	}

	od := s.OutlierDetection
	v.atLeast(p.Child("outlierDetection").Child("consecutiveErrors"), od.ConsecutiveErrors, 0)
	if od.ConsecutiveErrors > 0 {
		v.positive(p.Child("outlierDetection").Child("ejectionTime"), od.EjectionTime)
	}
	v.atLeast(p.Child("connectionPool").Child("maxConnections"), s.ConnectionPool.MaxConnections, 1)
	v.atLeast(p.Child("connectionPool").Child("maxPendingRequests"), s.ConnectionPool.MaxPendingRequests, 0)

	v.trafficRouting(p.Child("trafficRouting"), s.TrafficRouting)
	v.positive(p.Child("progressDeadline"), s.ProgressDeadline)
	if s.RollbackWindow != nil {
		v.atLeast(p.Child("rollbackWindow"), int(*s.RollbackWindow), 0)
	}
	v.strategy(p.Child("strategy").Child("canary"), s.TrafficRouting.HeaderRoutes, s.Strategy.Canary)
	for i, n := range s.Notifications {
		v.notification(p.Child("notifications").Index(i), n)
	}
	return v.errs
}

func (v *validator) protocols(p FieldPath, s *RolloutSpec) {
	seen := nameSet{}
	for i, proto := range s.Protocols {
		v.oneOf(p.Index(i), "protocol", proto, ProtocolH1, ProtocolH2, ProtocolH2C)
		v.unique(seen, p.Index(i), "protocol", proto)
	}
	// h2 is negotiated by TLS and h2c is its cleartext form: a listener
	// must speak at least one protocol that fits it.
	switch {
	case s.TLS == nil && !s.HasProtocol(ProtocolH1) && !s.HasProtocol(ProtocolH2C):
		v.add(p, "a listener without tls speaks h1 or h2c: add one (h2 needs tls)")
	case s.TLS != nil && !s.HasProtocol(ProtocolH1) && !s.HasProtocol(ProtocolH2):
		v.add(p, "a listener with tls speaks h1 or h2: add one (h2c is for listeners without tls)")
	}
}

// version checks one version; needEndpoints is false for routers whose
// platform keeps the targets (ALB target groups, Kubernetes Services).
func (v *validator) version(p FieldPath, role string, vs VersionSpec, needEndpoints bool) {
	if vs.Version == "" {
		v.add(p.Child("version"), "the %s version is required, such as v1.4.2", role)
	} else {
		v.plainLabel(p.Child("version"), "version", vs.Version)
	}
	if len(vs.Endpoints) == 0 && !needEndpoints {
		return
	}
	if len(vs.Endpoints) == 0 {
		v.add(p.Child("endpoints"), "the %s version needs at least one endpoint, such as http://127.0.0.1:9001", role)
		return
	}
	v.endpoints(p.Child("endpoints"), vs.Endpoints)
}

func (v *validator) endpoints(p FieldPath, eps []string) {
	seen := nameSet{}
	for i, e := range eps {
		v.endpoint(p.Index(i), e)
		v.unique(seen, p.Index(i), "endpoint", e)
	}
}

// grpcHealthCheckEndpoints checks that gRPC health checks can reach every
// endpoint: gRPC needs HTTP/2, which http:// endpoints do not speak.
func (v *validator) grpcHealthCheckEndpoints(p FieldPath, s *RolloutSpec) {
	check := func(fp FieldPath, eps []string) {
		for i, e := range eps {
			if strings.HasPrefix(e, "http://") {
				v.add(fp.Index(i), "endpoint %q cannot answer gRPC health checks (healthCheck.grpc): use h2c:// for a gRPC server without TLS, or https://", e)
			}
		}
	}
	check(p.Child("stable").Child("endpoints"), s.Stable.Endpoints)
	if s.Canary != nil {
		check(p.Child("canary").Child("endpoints"), s.Canary.Endpoints)
	}
}

func (v *validator) healthCheck(p FieldPath, hc HealthCheck) {
	if hc.Path == "" || hc.Path[0] != '/' {
		v.add(p.Child("path"), "health check path %q must start with /", hc.Path)
	}
	v.minDuration(p.Child("interval"), hc.Interval, MinHealthCheckInterval)
	v.minDuration(p.Child("timeout"), hc.Timeout, MinHealthCheckTimeout)
	v.atLeast(p.Child("healthyThreshold"), hc.HealthyThreshold, 1)
	v.atLeast(p.Child("unhealthyThreshold"), hc.UnhealthyThreshold, 1)
}

func (v *validator) trafficRouting(p FieldPath, tr TrafficRouting) {
	grpcCodes := nameSet{}
	for i, name := range tr.GRPCErrorCodes {
		v.oneOf(p.Child("grpcErrorCodes").Index(i), "gRPC status code", name, GRPCCodeNames[:]...)
		v.unique(grpcCodes, p.Child("grpcErrorCodes").Index(i), "gRPC status code", name)
	}
	a := p.Child("assignment")
	if tr.Assignment.UserHeader != "" {
		v.token(a.Child("userHeader"), "header name", tr.Assignment.UserHeader)
	}
	if c := tr.Assignment.Cookie; c.Enabled() {
		v.token(a.Child("cookie").Child("name"), "cookie name", c.Name)
		v.positive(a.Child("cookie").Child("ttl"), c.TTL)
	}
	seen := nameSet{}
	for i, hr := range tr.HeaderRoutes {
		hp := p.Child("headerRoutes").Index(i)
		if hr.Removes() {
			// Only a setHeaderRoute step can remove a route; a static
			// route with nothing to match would be meaningless.
			v.routeName(hp, hr.Name)
			v.add(hp.Child("match"), "a header route needs at least one match")
		} else {
			v.headerRoute(hp, hr)
		}
		v.unique(seen, hp.Child("name"), "header route name", hr.Name)
	}
	t := p.Child("timeouts")
	v.minDuration(t.Child("connect"), tr.Timeouts.Connect, Duration(time.Millisecond))
	v.minDuration(t.Child("response"), tr.Timeouts.Response, Duration(time.Millisecond))
	v.minDuration(t.Child("idle"), tr.Timeouts.Idle, Duration(100*time.Millisecond))
	v.minDuration(t.Child("requestHeaders"), tr.Timeouts.RequestHeaders, Duration(100*time.Millisecond))
	cl := p.Child("clientLimits")
	v.atLeast(cl.Child("maxConnections"), tr.ClientLimits.MaxConnections, 1)
	if n := tr.ClientLimits.MaxHeaderBytes; n < MinHeaderBytes || n > MaxHeaderBytes {
		v.add(cl.Child("maxHeaderBytes"), "%d is out of range: it must be between %d and %d", n, MinHeaderBytes, MaxHeaderBytes)
	}
	if tr.VersionHeader != VersionHeaderOff {
		v.token(p.Child("versionHeader"), "header name", tr.VersionHeader)
	}
	v.oneOf(p.Child("balancer"), "balancer", tr.Balancer, BalancerLeastRequests, BalancerRoundRobin)
	if tr.MirrorMaxBodyBytes < 0 {
		v.add(p.Child("mirrorMaxBodyBytes"), "must be at least 0, not %d", tr.MirrorMaxBodyBytes)
	}
}

func (v *validator) routeName(p FieldPath, name string) {
	if name == "" {
		v.add(p.Child("name"), "a route name is required")
	}
}

func (v *validator) headerRoute(p FieldPath, hr HeaderRoute) {
	v.routeName(p, hr.Name)
	if len(hr.Match) == 0 {
		v.add(p.Child("match"), "a header route needs at least one match")
	}
	for i, m := range hr.Match {
		mp := p.Child("match").Index(i)
		v.token(mp.Child("headerName"), "headerName", m.HeaderName)
		v.stringMatch(mp.Child("headerValue"), m.HeaderValue)
	}
	if !hr.To.Valid() {
		v.add(p.Child("to"), "unknown target %q: use canary or stable", hr.To)
	}
}

func (v *validator) mirrorRoute(p FieldPath, mr MirrorRoute) {
	v.routeName(p, mr.Name)
	if len(mr.Match) == 0 && mr.Percentage != nil {
		// Argo removes a mirror route that has no match, whatever its
		// percentage (it requires a match for safety): accepting this would
		// either mirror nothing or, as coalmine once did, every GET.
		v.add(p.Child("match"), "a mirror route needs a match: without one, Argo Rollouts removes the route whatever its percentage, so nothing would be mirrored; "+
			"to mirror, add a match such as match: [{method: {exact: GET}}] (or [{path: {prefix: /}}] for every idempotent request); to remove route %q, give only its name", mr.Name)
	}
	if mr.Percentage != nil && v.finite(p.Child("percentage"), *mr.Percentage) {
		if *mr.Percentage < 0 || *mr.Percentage > 100 {
			v.add(p.Child("percentage"), "percentage %v is out of range: it must be between 0 and 100", *mr.Percentage)
		}
	}
	for i, m := range mr.Match {
		mp := p.Child("match").Index(i)
		if m.Method != nil {
			v.stringMatch(mp.Child("method"), *m.Method)
		}
		if m.Path != nil {
			v.stringMatch(mp.Child("path"), *m.Path)
		}
		for _, k := range sortedKeys(m.Headers) {
			v.token(mp.Child("headers").Key(k), "header name", k)
			v.stringMatch(mp.Child("headers").Key(k), m.Headers[k])
		}
	}
}

// strategy checks the steps, simulating the header and mirror routes they
// add and remove so a removal of a route that was never added is caught.
func (v *validator) strategy(p FieldPath, static []HeaderRoute, c CanaryStrategy) {
	if a := c.Analysis; a != nil {
		ap := p.Child("analysis")
		v.templateRefs(ap, a.Templates, a.Args)
		v.selectors(ap, a.DryRun, a.MeasurementRetention)
		if a.StartingStep < 0 || a.StartingStep > len(c.Steps) {
			v.add(ap.Child("startingStep"), "startingStep %d is out of range: there are %d steps, so use 0 to %d", a.StartingStep, len(c.Steps), len(c.Steps))
		}
	}
	staticNames := map[string]bool{}
	for _, hr := range static {
		staticNames[hr.Name] = true
	}
	headerRoutes := map[string]bool{} // added by earlier steps and not removed
	mirrorRoutes := map[string]bool{}
	for i, st := range c.Steps {
		sp := p.Child("steps").Index(i)
		if !v.union(sp, "a step", []string{"setWeight", "pause", "analysis", "setHeaderRoute", "setMirrorRoute"},
			[]bool{st.SetWeight != nil, st.Pause != nil, st.Analysis != nil, st.SetHeaderRoute != nil, st.SetMirrorRoute != nil}) {
			continue
		}
		switch {
		case st.SetWeight != nil:
			if _, err := WeightFromPercent(*st.SetWeight); err != nil {
				v.add(sp.Child("setWeight"), "%s", err)
			}
		case st.Pause != nil:
			if d := st.Pause.Duration; d != nil && *d <= 0 {
				v.add(sp.Child("pause").Child("duration"), "a pause duration must be positive; use pause: {} to wait for promote")
			}
		case st.Analysis != nil:
			v.templateRefs(sp.Child("analysis"), st.Analysis.Templates, st.Analysis.Args)
			v.selectors(sp.Child("analysis"), st.Analysis.DryRun, st.Analysis.MeasurementRetention)
		case st.SetHeaderRoute != nil:
			hp := sp.Child("setHeaderRoute")
			hr := *st.SetHeaderRoute
			switch {
			case hr.Removes():
				v.routeName(hp, hr.Name)
				if hr.Name != "" && !headerRoutes[hr.Name] {
					v.add(hp.Child("name"), "no earlier setHeaderRoute step adds route %q, so there is nothing to remove; to add it, give it a match", hr.Name)
				}
				delete(headerRoutes, hr.Name)
			case staticNames[hr.Name]:
				v.headerRoute(hp, hr)
				v.add(hp.Child("name"), "header route %q is already defined in spec.trafficRouting.headerRoutes; use another name", hr.Name)
			default:
				v.headerRoute(hp, hr)
				headerRoutes[hr.Name] = true
			}
		case st.SetMirrorRoute != nil:
			mp := sp.Child("setMirrorRoute")
			mr := *st.SetMirrorRoute
			v.mirrorRoute(mp, mr)
			if mr.Removes() {
				if mr.Name != "" && !mirrorRoutes[mr.Name] {
					v.add(mp.Child("name"), "no earlier setMirrorRoute step adds route %q, so there is nothing to remove; to add it, give it a match", mr.Name)
				}
				delete(mirrorRoutes, mr.Name)
			} else {
				mirrorRoutes[mr.Name] = true
			}
		}
	}
}

// templateRefs checks the shape of a list of template references; whether
// the templates exist is checked across documents by internal/config.
func (v *validator) templateRefs(p FieldPath, refs []TemplateRef, args []Arg) {
	if len(refs) == 0 {
		v.add(p.Child("templates"), "at least one template is required, such as [{templateName: golden-signals}]")
	}
	seen := nameSet{}
	for i, t := range refs {
		tp := p.Child("templates").Index(i).Child("templateName")
		if t.TemplateName == "" {
			v.add(tp, "templateName is required")
			continue
		}
		v.unique(seen, tp, "template", t.TemplateName)
	}
	seenArgs := nameSet{}
	for i, a := range args {
		v.argValueFrom(p.Child("args").Index(i).Child("valueFrom"), a.ValueFrom, a.Value != "")
		ap := p.Child("args").Index(i).Child("name")
		if a.Name == "" {
			v.add(ap, "an argument name is required")
			continue
		}
		v.unique(seenArgs, ap, "argument", a.Name)
	}
}

func (v *validator) notification(p FieldPath, n Notification) {
	if len(n.On) == 0 {
		v.add(p.Child("on"), "list the event types to send, such as [rollout-aborted], or [\"*\"] for all")
	}
	for i, e := range n.On {
		if e == NotifyAllEvents {
			continue
		}
		known := false
		for _, t := range EventTypes {
			known = known || e == t
		}
		if !known {
			v.add(p.Child("on").Index(i), "unknown event type %q: use \"*\" or one of %s", e, orList(EventTypes))
		}
	}
	if !v.union(p, "a notification", []string{"webhook", "slack", "pagerduty"},
		[]bool{n.Webhook != nil, n.Slack != nil, n.PagerDuty != nil}) {
		return
	}
	switch {
	case n.Webhook != nil:
		wp := p.Child("webhook")
		w := n.Webhook
		if v.union(wp, "a webhook", []string{"url", "urlFrom"}, []bool{w.URL != "", w.URLFrom != nil}) {
			if w.URL != "" {
				v.httpURL(wp.Child("url"), "webhook", w.URL)
			} else {
				v.secretRef(wp.Child("urlFrom"), w.URLFrom)
			}
		}
		v.headers(wp.Child("headers"), w.Headers)
	case n.Slack != nil:
		v.secretRef(p.Child("slack").Child("webhookURLFrom"), n.Slack.WebhookURLFrom)
	case n.PagerDuty != nil:
		v.secretRef(p.Child("pagerduty").Child("routingKeyFrom"), n.PagerDuty.RoutingKeyFrom)
	}
}

func (v *validator) secretRef(p FieldPath, s *SecretRef) {
	if s == nil {
		v.add(p, "a secret reference is required, such as {env: NAME} or {file: /path}")
		return
	}
	v.union(p, "a secret reference", []string{"env", "file"}, []bool{s.Env != "", s.File != ""})
}
