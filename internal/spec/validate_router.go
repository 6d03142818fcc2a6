package spec

import (
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// router checks a rollout whose traffic another load balancer carries:
// its own settings, and that the rollout asks nothing of it the product
// cannot do (said here, at lint time, rather than silently ignored at run
// time as Argo's NGINX router ignores header routes).
func (v *validator) router(p FieldPath, s *RolloutSpec) {
	rp := p.Child("trafficRouting").Child("router")
	r := s.TrafficRouting.Router
	if r.count() > 1 {
		v.add(rp, "a rollout has one router: keep one of haproxy, nginx, alb, gatewayAPI, istio")
		return
	}
	kind := r.Kind()
	if s.Listen != "" {
		v.add(p.Child("listen"), "the %s router carries this rollout's traffic, so coalmine listens on nothing for it: remove listen (or remove trafficRouting.router to use coalmine's own proxy)", kind)
	}
	if s.TLS != nil {
		v.add(p.Child("tls"), "the %s router terminates TLS itself: remove tls", kind)
	}
	switch {
	case r.HAProxy != nil:
		v.haproxyRouter(rp.Child("haproxy"), *r.HAProxy)
	case r.NGINX != nil:
		v.nginxRouter(rp.Child("nginx"), *r.NGINX)
	case r.ALB != nil:
		v.albRouter(rp.Child("alb"), *r.ALB)
		v.albRollout(p, s)
	case r.GatewayAPI != nil:
		v.gatewayRouter(rp.Child("gatewayAPI"), *r.GatewayAPI)
	case r.Istio != nil:
		v.istioRouter(rp.Child("istio"), *r.Istio)
	}
	if (r.GatewayAPI != nil || r.Istio != nil) && s.TrafficRouting.Assignment.UserHeader != "" {
		v.add(p.Child("trafficRouting").Child("assignment").Child("userHeader"),
			"the %s router splits each request by weight and cannot keep a user on one version by a header: remove userHeader (or pin users with a header route)", kind)
	}
	if !r.UsesEndpoints() {
		// The platform keeps the targets (target groups, Services): the
		// rollout names versions only.
		for _, f := range []struct {
			p   FieldPath
			eps []string
		}{{p.Child("stable").Child("endpoints"), s.Stable.Endpoints}, {p.Child("canary").Child("endpoints"), canaryEndpoints(s)}} {
			if len(f.eps) > 0 {
				v.add(f.p, "the %s router sends to the targets its platform keeps (target groups or Services named in the router), not to endpoints: remove endpoints", kind)
			}
		}
	}
	// HAProxy and NGINX drive plain HTTP upstreams they reach by address.
	check := func(fp FieldPath, eps []string) {
		if !r.UsesEndpoints() {
			return
		}
		for i, e := range eps {
			if !strings.HasPrefix(e, "http://") {
				v.add(fp.Index(i), "the %s router sends to http:// endpoints (%q): give the address as http://host:port", kind, e)
			}
		}
	}
	check(p.Child("stable").Child("endpoints"), s.Stable.Endpoints)
	if s.Canary != nil {
		check(p.Child("canary").Child("endpoints"), s.Canary.Endpoints)
	}
	if s.HealthCheck != nil && !s.HealthCheck.Disabled {
		v.add(p.Child("healthCheck"), "the %s router checks its servers' health itself: remove healthCheck and configure the checks in %s", kind, kind)
	}
	// Only Istio mirrors a request selected per match (a route's mirror
	// and mirrorPercentage). HAProxy and NGINX cannot; the Gateway API's
	// RequestMirror filter copies all of a rule's requests, and a rule
	// cannot require both the user's path match and the mirror's.
	for i, st := range s.Strategy.Canary.Steps {
		if st.SetMirrorRoute != nil && r.Istio == nil {
			v.add(p.Child("strategy").Child("canary").Child("steps").Index(i).Child("setMirrorRoute"),
				"the %s router cannot mirror requests: remove this step (mirroring needs coalmine's own proxy or the istio router)", kind)
		}
	}
}

func (v *validator) haproxyRouter(p FieldPath, h HAProxyRouter) {
	api := p.Child("runtimeAPI")
	switch {
	case h.RuntimeAPI == "":
		v.add(api, "the runtime API address is required: unix:///run/haproxy/admin.sock or tcp://127.0.0.1:9999, as `stats socket` names it in haproxy.cfg (level admin)")
	default:
		u, err := url.Parse(h.RuntimeAPI)
		switch {
		case err != nil || (u.Scheme != "unix" && u.Scheme != "tcp"):
			v.add(api, "runtime API address %q: use unix:///path/to/admin.sock or tcp://host:port", h.RuntimeAPI)
		case u.Scheme == "unix" && (u.Path == "" || u.Host != ""):
			v.add(api, "runtime API address %q has no socket path: use unix:///run/haproxy/admin.sock (three slashes)", h.RuntimeAPI)
		case u.Scheme == "tcp" && (u.Port() == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/")):
			v.add(api, "runtime API address %q: use tcp://host:port, with nothing after the port", h.RuntimeAPI)
		}
	}
	for _, f := range []struct {
		name, value string
	}{{"stableBackend", h.StableBackend}, {"canaryBackend", h.CanaryBackend}} {
		if f.value != "" && !haproxyName(f.value) {
			v.add(p.Child(f.name), "backend name %q: an HAProxy backend name holds only letters, digits, '-', '_', '.' and ':'", f.value)
		}
	}
	if h.StableBackend != "" && h.StableBackend == h.CanaryBackend {
		v.add(p.Child("canaryBackend"), "the canary backend must differ from the stable backend %q", h.StableBackend)
	}
	if h.Map != "" && (strings.ContainsAny(h.Map, " \t\r\n;#,()\\") || !filepath.IsAbs(h.Map)) {
		v.add(p.Child("map"), "map %q: give the absolute path haproxy.cfg names, without spaces, ';', '#', ',', '(', ')' or '\\'", h.Map)
	}
	if h.Timeout.D() < 0 {
		v.add(p.Child("timeout"), "timeout must be positive")
	}
}

func (v *validator) nginxRouter(p FieldPath, n NGINXRouter) {
	switch {
	case n.IncludeFile == "":
		v.add(p.Child("includeFile"), "includeFile is required: the file coalmine writes and your nginx.conf includes inside http { }, such as /etc/nginx/conf.d/coalmine-shop.conf")
	case !filepath.IsAbs(n.IncludeFile):
		v.add(p.Child("includeFile"), "includeFile %q must be an absolute path", n.IncludeFile)
	}
	if n.StateDir != "" {
		if !filepath.IsAbs(n.StateDir) {
			v.add(p.Child("stateDir"), "stateDir %q must be an absolute path", n.StateDir)
		} else if strings.Trim(n.StateDir, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") != "" {
			v.add(p.Child("stateDir"), "stateDir %q: NGINX reads it in an if condition, so only letters, digits and . _ - / are allowed", n.StateDir)
		}
	}
	for _, c := range []struct {
		name string
		argv []string
	}{{"testCommand", n.TestCommand}, {"reloadCommand", n.ReloadCommand}} {
		if c.argv != nil && (len(c.argv) == 0 || c.argv[0] == "") {
			v.add(p.Child(c.name), "%s needs a program, such as [nginx, -t]", c.name)
		}
	}
	if n.StatusAddress != "" {
		v.listen(p.Child("statusAddress"), n.StatusAddress)
	}
}

func canaryEndpoints(s *RolloutSpec) []string {
	if s.Canary == nil {
		return nil
	}
	return s.Canary.Endpoints
}

func (v *validator) required(p FieldPath, what, value, example string) {
	if value == "" {
		v.add(p, "%s is required, such as %s", what, example)
	}
}

func (v *validator) albRouter(p FieldPath, a ALBRouter) {
	v.required(p.Child("listenerARN"), "listenerARN", a.ListenerARN, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2")
	v.required(p.Child("stableTargetGroupARN"), "stableTargetGroupARN", a.StableTargetGroupARN, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-stable/73e2d6bc24d8a067")
	v.required(p.Child("canaryTargetGroupARN"), "canaryTargetGroupARN", a.CanaryTargetGroupARN, "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-canary/2453ed029918f21f")
	for _, f := range []struct{ name, value, kind string }{
		{"listenerARN", a.ListenerARN, ":listener/"}, {"ruleARN", a.RuleARN, ":listener-rule/"},
		{"stableTargetGroupARN", a.StableTargetGroupARN, ":targetgroup/"}, {"canaryTargetGroupARN", a.CanaryTargetGroupARN, ":targetgroup/"},
	} {
		if f.value != "" && (!strings.HasPrefix(f.value, "arn:") || !strings.Contains(f.value, f.kind)) {
			v.add(p.Child(f.name), "%q is not an ELBv2 ARN of the right kind: it must start with arn: and contain %s", f.value, f.kind)
		}
	}
	if a.RuleARN != "" && strings.Contains(a.ListenerARN, ":listener/") && strings.Contains(a.RuleARN, ":listener-rule/") &&
		!strings.HasPrefix(a.RuleARN, strings.Replace(a.ListenerARN, ":listener/", ":listener-rule/", 1)+"/") {
		v.add(p.Child("ruleARN"), "rule %q is not a rule of listener %q: a listener's rule ARNs continue its ARN with /RULE-ID", a.RuleARN, a.ListenerARN)
	}
	if a.StableTargetGroupARN != "" && a.StableTargetGroupARN == a.CanaryTargetGroupARN {
		v.add(p.Child("canaryTargetGroupARN"), "the canary target group must differ from the stable one")
	}
	if d := a.StickinessDuration.D(); d != 0 && (d < time.Second || d > 7*24*time.Hour || d%time.Second != 0) {
		v.add(p.Child("stickinessDuration"), "the ALB keeps target-group stickiness for whole seconds from 1s to 168h (7 days), not %s", a.StickinessDuration)
	}
	if a.Endpoint != "" {
		v.httpURL(p.Child("endpoint"), "ELBv2 endpoint", a.Endpoint)
	}
}

// albRollout refuses what an ALB listener rule cannot do: split by a user
// header, or match a header by regex or a literal * or ? (its http-header
// conditions compare values case-insensitively, with * and ? as
// wildcards).
func (v *validator) albRollout(p FieldPath, s *RolloutSpec) {
	tr := p.Child("trafficRouting")
	if s.TrafficRouting.Assignment.UserHeader != "" {
		v.add(tr.Child("assignment").Child("userHeader"), "the alb router cannot keep a user on one version by a header's value: remove userHeader and set stickinessDuration in the router (the ALB's target-group stickiness cookie)")
	}
	for i, h := range s.TrafficRouting.HeaderRoutes {
		v.albHeaderRoute(tr.Child("headerRoutes").Index(i), h)
	}
	for i, st := range s.Strategy.Canary.Steps {
		if st.SetHeaderRoute != nil && !st.SetHeaderRoute.Removes() {
			v.albHeaderRoute(p.Child("strategy").Child("canary").Child("steps").Index(i).Child("setHeaderRoute"), *st.SetHeaderRoute)
		}
	}
}

// albTagValue is what an AWS tag value may hold: coalmine tags each
// header-route rule with the route's name.
var albTagValue = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)

func (v *validator) albHeaderRoute(p FieldPath, h HeaderRoute) {
	if !albTagValue.MatchString(h.Name) || len(h.Name) > 256 {
		v.add(p.Child("name"), "the alb router tags the route's rule with its name, so %q must be 1 to 256 letters, digits, spaces or _ . : / = + - @", h.Name)
	}
	if len(h.Match) > 5 {
		v.add(p.Child("match"), "an ALB rule holds at most 5 match evaluations (the main rule's own conditions count too): this route has %d", len(h.Match))
	}
	for i, m := range h.Match {
		mp := p.Child("match").Index(i)
		if len(m.HeaderName) > 40 {
			v.add(mp.Child("headerName"), "the alb router matches header names of at most 40 characters")
		}
		if strings.EqualFold(m.HeaderName, "host") {
			v.add(mp.Child("headerName"), "the alb router cannot match the Host header in a header route")
		}
		hv := mp.Child("headerValue")
		var value string
		switch {
		case m.HeaderValue.Regex != nil:
			v.add(hv.Child("regex"), "the alb router matches header values exactly or by prefix, not by regex: use exact or prefix")
			continue
		case m.HeaderValue.Exact != nil:
			value, hv = *m.HeaderValue.Exact, hv.Child("exact")
		case m.HeaderValue.Prefix != nil:
			value, hv = *m.HeaderValue.Prefix+"*", hv.Child("prefix")
		default:
			continue
		}
		switch {
		case value == "":
			v.add(hv, "the alb router cannot match an empty header value")
		case strings.ContainsAny(value[:len(value)-boolInt(m.HeaderValue.Prefix != nil)], "*?"):
			v.add(hv, "the alb router cannot match a literal * or ? (they are the ALB's wildcards): %q", value)
		case len(value) > 128:
			v.add(hv, "the alb router compares header values of at most 128 characters")
		case strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r > 0x7e || r == '\\' }):
			v.add(hv, "the alb router matches printable ASCII header values without backslashes: %q", value)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (v *validator) gatewayRouter(p FieldPath, g GatewayAPIRouter) {
	v.required(p.Child("httpRoute"), "httpRoute", g.HTTPRoute, "shop")
	v.required(p.Child("stableService"), "stableService", g.StableService, "shop-stable")
	v.required(p.Child("canaryService"), "canaryService", g.CanaryService, "shop-canary")
	v.kubeName(p.Child("namespace"), g.Namespace)
	v.kubeName(p.Child("httpRoute"), g.HTTPRoute)
	v.kubeName(p.Child("stableService"), g.StableService)
	v.kubeName(p.Child("canaryService"), g.CanaryService)
	if g.StableService != "" && g.StableService == g.CanaryService {
		v.add(p.Child("canaryService"), "the canary Service must differ from the stable Service %q", g.StableService)
	}
}

// kubeName checks a Kubernetes object name or namespace (a DNS subdomain:
// lowercase letters, digits, '-' and '.'); "" is left to required.
func (v *validator) kubeName(p FieldPath, s string) {
	if s == "" {
		return
	}
	ok := len(s) <= 253 && s[0] != '-' && s[0] != '.' && s[len(s)-1] != '-' && s[len(s)-1] != '.'
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			ok = false
		}
	}
	if !ok {
		v.add(p, "%q is not a Kubernetes name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", s)
	}
}

func (v *validator) istioRouter(p FieldPath, i IstioRouter) {
	v.required(p.Child("virtualService"), "virtualService", i.VirtualService, "shop")
	hosts := i.StableHost != "" || i.CanaryHost != ""
	subsets := i.Host != "" || i.StableSubset != "" || i.CanarySubset != ""
	switch {
	case hosts && subsets:
		v.add(p, "name the versions either by host (stableHost, canaryHost) or by subset (host, stableSubset, canarySubset), not both")
	case hosts:
		v.required(p.Child("stableHost"), "stableHost", i.StableHost, "shop-stable")
		v.required(p.Child("canaryHost"), "canaryHost", i.CanaryHost, "shop-canary")
		if i.StableHost != "" && i.StableHost == i.CanaryHost {
			v.add(p.Child("canaryHost"), "the canary host must differ from the stable host %q (or use one host with two subsets)", i.StableHost)
		}
	case subsets:
		v.required(p.Child("host"), "host", i.Host, "shop")
		v.required(p.Child("stableSubset"), "stableSubset", i.StableSubset, "stable")
		v.required(p.Child("canarySubset"), "canarySubset", i.CanarySubset, "canary")
		if i.StableSubset != "" && i.StableSubset == i.CanarySubset {
			v.add(p.Child("canarySubset"), "the canary subset must differ from the stable subset %q", i.StableSubset)
		}
	default:
		v.add(p, "name the versions by host (stableHost, canaryHost) or by DestinationRule subset (host, stableSubset, canarySubset)")
	}
	v.kubeName(p.Child("namespace"), i.Namespace)
	v.kubeName(p.Child("virtualService"), i.VirtualService)
	seen := map[string]bool{}
	for n, r := range i.Routes {
		switch {
		case r == "":
			v.add(p.Child("routes").Index(n), "a route name is required (the name of one of the VirtualService's http routes)")
		case seen[r]:
			v.add(p.Child("routes").Index(n), "route %q is named twice", r)
		}
		seen[r] = true
	}
}

// haproxyName reports whether s is a name HAProxy takes for a backend.
func haproxyName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return s != ""
}
