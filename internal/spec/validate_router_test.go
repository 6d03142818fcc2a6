package spec

import (
	"slices"
	"testing"
	"time"
)

func TestRouterValidate(t *testing.T) {
	haproxy := func(r *Rollout) {
		r.Spec.Listen = ""
		r.Spec.TrafficRouting.Router.HAProxy = &HAProxyRouter{RuntimeAPI: "unix:///run/haproxy/admin.sock"}
	}
	nginx := func(r *Rollout) {
		r.Spec.Listen = ""
		r.Spec.TrafficRouting.Router.NGINX = &NGINXRouter{IncludeFile: "/etc/nginx/conf.d/coalmine-shop.conf"}
	}
	gateway := func(r *Rollout) {
		r.Spec.Listen = ""
		r.Spec.Stable.Endpoints = nil
		r.Spec.Canary.Endpoints = nil
		r.Spec.TrafficRouting.Router.GatewayAPI = &GatewayAPIRouter{Namespace: "prod", HTTPRoute: "shop", StableService: "shop-stable", CanaryService: "shop-canary"}
	}
	istio := func(r *Rollout) {
		r.Spec.Listen = ""
		r.Spec.Stable.Endpoints = nil
		r.Spec.Canary.Endpoints = nil
		r.Spec.TrafficRouting.Router.Istio = &IstioRouter{VirtualService: "shop", StableHost: "shop-stable", CanaryHost: "shop-canary"}
	}
	mirror := func(r *Rollout) {
		r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps, Step{SetMirrorRoute: &MirrorRoute{Name: "m", Match: []RequestMatch{{Path: &StringMatch{Prefix: ptr("/")}}}}})
	}
	tests := []struct {
		name   string
		modify func(r *Rollout)
		want   []string
	}{
		{"gatewayAPI", gateway, nil},
		{"istio", istio, nil},
		{"istio subsets and mirror", func(r *Rollout) {
			istio(r)
			r.Spec.TrafficRouting.Router.Istio = &IstioRouter{VirtualService: "shop", Routes: []string{"primary"}, Host: "shop", StableSubset: "v1", CanarySubset: "v2"}
			mirror(r)
		}, nil},
		{"gatewayAPI mirror step", func(r *Rollout) { gateway(r); mirror(r) },
			[]string{"spec.strategy.canary.steps[3].setMirrorRoute: the gatewayAPI router cannot mirror requests: remove this step (mirroring needs coalmine's own proxy or the istio router)"}},
		{"gatewayAPI user header", func(r *Rollout) { gateway(r); r.Spec.TrafficRouting.Assignment.UserHeader = "X-User" },
			[]string{"spec.trafficRouting.assignment.userHeader: the gatewayAPI router splits each request by weight and cannot keep a user on one version by a header"}},
		{"istio user header", func(r *Rollout) { istio(r); r.Spec.TrafficRouting.Assignment.UserHeader = "X-User" },
			[]string{"spec.trafficRouting.assignment.userHeader: the istio router splits each request by weight"}},
		{"gatewayAPI names", func(r *Rollout) {
			gateway(r)
			g := r.Spec.TrafficRouting.Router.GatewayAPI
			g.HTTPRoute, g.CanaryService, g.Namespace = "Shop", "shop-stable", "prod_1"
		}, []string{
			`spec.trafficRouting.router.gatewayAPI.namespace: "prod_1" is not a Kubernetes name`,
			`spec.trafficRouting.router.gatewayAPI.httpRoute: "Shop" is not a Kubernetes name`,
			`spec.trafficRouting.router.gatewayAPI.canaryService: the canary Service must differ from the stable Service "shop-stable"`,
		}},
		{"gatewayAPI required", func(r *Rollout) { gateway(r); r.Spec.TrafficRouting.Router.GatewayAPI.HTTPRoute = "" },
			[]string{"spec.trafficRouting.router.gatewayAPI.httpRoute: httpRoute is required"}},
		{"gatewayAPI endpoints", func(r *Rollout) { gateway(r); r.Spec.Canary.Endpoints = []string{"http://127.0.0.1:1"} },
			[]string{"spec.canary.endpoints: the gatewayAPI router sends to the targets its platform keeps"}},
		{"istio routes and hosts", func(r *Rollout) {
			istio(r)
			i := r.Spec.TrafficRouting.Router.Istio
			i.CanaryHost, i.Routes = "shop-stable", []string{"a", "", "a"}
		}, []string{
			`spec.trafficRouting.router.istio.canaryHost: the canary host must differ from the stable host "shop-stable"`,
			"spec.trafficRouting.router.istio.routes[1]: a route name is required",
			`spec.trafficRouting.router.istio.routes[2]: route "a" is named twice`,
		}},
		{"istio both forms", func(r *Rollout) { istio(r); r.Spec.TrafficRouting.Router.Istio.CanarySubset = "v2" },
			[]string{"spec.trafficRouting.router.istio: name the versions either by host (stableHost, canaryHost) or by subset"}},
		{"haproxy", haproxy, nil},
		{"nginx", nginx, nil},
		{"tcp runtime API", func(r *Rollout) { haproxy(r); r.Spec.TrafficRouting.Router.HAProxy.RuntimeAPI = "tcp://127.0.0.1:9999" }, nil},
		{"both", func(r *Rollout) { haproxy(r); r.Spec.TrafficRouting.Router.NGINX = &NGINXRouter{IncludeFile: "/x"} },
			[]string{"spec.trafficRouting.router: a rollout has one router: keep one of haproxy, nginx, alb, gatewayAPI, istio"}},
		{"listen with a router", func(r *Rollout) { haproxy(r); r.Spec.Listen = "127.0.0.1:8080" },
			[]string{"spec.listen: the haproxy router carries this rollout's traffic, so coalmine listens on nothing for it: remove listen"}},
		{"runtime API", func(r *Rollout) { haproxy(r); r.Spec.TrafficRouting.Router.HAProxy.RuntimeAPI = "" },
			[]string{"spec.trafficRouting.router.haproxy.runtimeAPI: the runtime API address is required"}},
		{"runtime API scheme", func(r *Rollout) { haproxy(r); r.Spec.TrafficRouting.Router.HAProxy.RuntimeAPI = "/run/haproxy.sock" },
			[]string{`spec.trafficRouting.router.haproxy.runtimeAPI: runtime API address "/run/haproxy.sock": use unix:///path/to/admin.sock or tcp://host:port`}},
		{"runtime API two slashes", func(r *Rollout) {
			haproxy(r)
			r.Spec.TrafficRouting.Router.HAProxy.RuntimeAPI = "unix://run/haproxy.sock"
		},
			[]string{`spec.trafficRouting.router.haproxy.runtimeAPI: runtime API address "unix://run/haproxy.sock" has no socket path`}},
		{"backends", func(r *Rollout) {
			haproxy(r)
			r.Spec.TrafficRouting.Router.HAProxy.StableBackend = "shop"
			r.Spec.TrafficRouting.Router.HAProxy.CanaryBackend = "shop"
			r.Spec.TrafficRouting.Router.HAProxy.Map = "coalmine.map"
		}, []string{
			`spec.trafficRouting.router.haproxy.canaryBackend: the canary backend must differ from the stable backend "shop"`,
			`spec.trafficRouting.router.haproxy.map: map "coalmine.map": give the absolute path haproxy.cfg names`,
		}},
		{"include file", func(r *Rollout) { nginx(r); r.Spec.TrafficRouting.Router.NGINX.IncludeFile = "coalmine.conf" },
			[]string{`spec.trafficRouting.router.nginx.includeFile: includeFile "coalmine.conf" must be an absolute path`}},
		{"state dir", func(r *Rollout) { nginx(r); r.Spec.TrafficRouting.Router.NGINX.StateDir = "shop.d" },
			[]string{`spec.trafficRouting.router.nginx.stateDir: stateDir "shop.d" must be an absolute path`}},
		{"state dir syntax", func(r *Rollout) { nginx(r); r.Spec.TrafficRouting.Router.NGINX.StateDir = "/etc/nginx/a b;" },
			[]string{`spec.trafficRouting.router.nginx.stateDir: stateDir "/etc/nginx/a b;": NGINX reads it in an if condition`}},
		{"commands", func(r *Rollout) { nginx(r); r.Spec.TrafficRouting.Router.NGINX.ReloadCommand = []string{} },
			[]string{"spec.trafficRouting.router.nginx.reloadCommand: reloadCommand needs a program"}},
		{"https endpoint", func(r *Rollout) { nginx(r); r.Spec.Canary.Endpoints = []string{"https://127.0.0.1:9443"} },
			[]string{`spec.canary.endpoints[0]: the nginx router sends to http:// endpoints ("https://127.0.0.1:9443")`}},
		{"mirror step", func(r *Rollout) {
			haproxy(r)
			r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps, Step{SetMirrorRoute: &MirrorRoute{Name: "m", Match: []RequestMatch{{Path: &StringMatch{Prefix: ptr("/")}}}}})
		}, []string{"spec.strategy.canary.steps[3].setMirrorRoute: the haproxy router cannot mirror requests: remove this step"}},
		{"health check", func(r *Rollout) { haproxy(r); r.Spec.HealthCheck = &HealthCheck{} },
			[]string{"spec.healthCheck: the haproxy router checks its servers' health itself"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRollout()
			tt.modify(&r)
			r.SetDefaults()
			assertErrors(t, r.Validate(), tt.want)
		})
	}
}

func TestKubernetesRouterClaims(t *testing.T) {
	g := Router{GatewayAPI: &GatewayAPIRouter{HTTPRoute: "shop", StableService: "a", CanaryService: "b"}}
	want := []string{"Service a in HTTPRoute default/shop", "Service b in HTTPRoute default/shop"}
	if got := g.Claims("x"); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("gatewayAPI claims %q", got)
	}
	i := Router{Istio: &IstioRouter{Namespace: "prod", VirtualService: "shop", Routes: []string{"p", "q"}, Context: "eu"}}
	if got := i.Claims("x"); len(got) != 2 || got[1] != "http route q of VirtualService prod/shop (kubeconfig , context eu)" {
		t.Errorf("istio claims %q", got)
	}
}

// Two rollouts sharing an NGINX state directory would overwrite each
// other's weight files: the directory is claimed, default or given.
func TestNGINXClaimsTheStateDirectory(t *testing.T) {
	r := Router{NGINX: &NGINXRouter{IncludeFile: "/etc/nginx/coalmine/shop.conf"}}
	if c := r.Claims("shop"); !slices.Contains(c, "NGINX state directory /etc/nginx/coalmine/shop.d") {
		t.Errorf("claims = %q, want the default state directory", c)
	}
	r.NGINX.StateDir = "/var/lib/coalmine/shop"
	if c := r.Claims("shop"); !slices.Contains(c, "NGINX state directory /var/lib/coalmine/shop") {
		t.Errorf("claims = %q, want the given state directory", c)
	}
}

func TestALBRouterValidate(t *testing.T) {
	alb := func(r *Rollout) {
		r.Spec.Listen = ""
		r.Spec.Stable.Endpoints = nil
		r.Spec.Canary.Endpoints = nil
		r.Spec.TrafficRouting.Router.ALB = &ALBRouter{
			ListenerARN:          "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2",
			StableTargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-stable/73e2d6bc24d8a067",
			CanaryTargetGroupARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-canary/2453ed029918f21f",
		}
	}
	route := func(name string, m StringMatch) HeaderRoute {
		return HeaderRoute{Name: name, Match: []HeaderMatch{{HeaderName: "X-Beta", HeaderValue: m}}}
	}
	tests := []struct {
		name   string
		modify func(r *Rollout)
		want   []string
	}{
		{"valid", alb, nil},
		{"exact and prefix header routes", func(r *Rollout) {
			alb(r)
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{route("beta", StringMatch{Exact: ptr("yes")}), route("tenant", StringMatch{Prefix: ptr("acme-")})}
		}, nil},
		{"regex header route", func(r *Rollout) {
			alb(r)
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{route("beta", StringMatch{Regex: ptr("^y.s$")})}
		}, []string{"spec.trafficRouting.headerRoutes[0].match[0].headerValue.regex: the alb router matches header values exactly or by prefix, not by regex"}},
		{"regex in a step", func(r *Rollout) {
			alb(r)
			h := route("beta", StringMatch{Regex: ptr("a+")})
			r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps, Step{SetHeaderRoute: &h})
		}, []string{"spec.strategy.canary.steps[3].setHeaderRoute.match[0].headerValue.regex: the alb router matches header values exactly or by prefix"}},
		{"wildcard in an exact value", func(r *Rollout) {
			alb(r)
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{route("beta", StringMatch{Exact: ptr("a*b")})}
		}, []string{`spec.trafficRouting.headerRoutes[0].match[0].headerValue.exact: the alb router cannot match a literal * or ?`}},
		{"route name not a tag value", func(r *Rollout) {
			alb(r)
			r.Spec.TrafficRouting.HeaderRoutes = []HeaderRoute{route("beta!", StringMatch{Exact: ptr("1")})}
		}, []string{`spec.trafficRouting.headerRoutes[0].name: the alb router tags the route's rule with its name`}},
		{"mirror step", func(r *Rollout) {
			alb(r)
			r.Spec.Strategy.Canary.Steps = append(r.Spec.Strategy.Canary.Steps, Step{SetMirrorRoute: &MirrorRoute{Name: "m", Match: []RequestMatch{{Path: &StringMatch{Prefix: ptr("/")}}}}})
		}, []string{"spec.strategy.canary.steps[3].setMirrorRoute: the alb router cannot mirror requests"}},
		{"rule of another listener", func(r *Rollout) {
			alb(r)
			r.Spec.TrafficRouting.Router.ALB.RuleARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/0000000000000000/9683b2d02a6cabee"
		}, []string{`spec.trafficRouting.router.alb.ruleARN: rule "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/0000000000000000/9683b2d02a6cabee" is not a rule of listener`}},
		{"rule of the listener", func(r *Rollout) {
			alb(r)
			r.Spec.TrafficRouting.Router.ALB.RuleARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener-rule/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
		}, nil},
		{"user header", func(r *Rollout) { alb(r); r.Spec.TrafficRouting.Assignment.UserHeader = "X-User" },
			[]string{"spec.trafficRouting.assignment.userHeader: the alb router cannot keep a user on one version by a header's value"}},
		{"endpoints", func(r *Rollout) { alb(r); r.Spec.Stable.Endpoints = []string{"http://10.0.0.1:80"} },
			[]string{"spec.stable.endpoints: the alb router sends to the targets its platform keeps"}},
		{"arns", func(r *Rollout) {
			alb(r)
			a := r.Spec.TrafficRouting.Router.ALB
			a.RuleARN = a.ListenerARN
			a.CanaryTargetGroupARN = a.StableTargetGroupARN
			a.StickinessDuration = Duration(8 * 24 * time.Hour)
		}, []string{
			`spec.trafficRouting.router.alb.ruleARN: "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/web/50dc6c495c0c9188/f2f7dc8efc522ab2" is not an ELBv2 ARN of the right kind`,
			"spec.trafficRouting.router.alb.canaryTargetGroupARN: the canary target group must differ from the stable one",
			"spec.trafficRouting.router.alb.stickinessDuration: the ALB keeps target-group stickiness for whole seconds from 1s to 168h",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRollout()
			tt.modify(&r)
			r.SetDefaults()
			assertErrors(t, r.Validate(), tt.want)
		})
	}
}
