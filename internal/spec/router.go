package spec

import "strings"

// Router names the load balancer that carries a rollout's traffic. Without
// one (the default) coalmine's own proxy listens and routes; with one, the
// rollout moves the weights and routes of a load balancer the team already
// runs, and coalmine listens on nothing for it. At most one field is set.
type Router struct {
	// HAProxy drives an HAProxy through its runtime API (no reloads).
	HAProxy *HAProxyRouter `yaml:"haproxy,omitempty" json:"haproxy,omitempty"`
	// NGINX drives an open-source NGINX by writing include files and
	// reloading it when the routing's structure changes, and by swapping
	// weight files, with no reload, when only the weight does.
	NGINX *NGINXRouter `yaml:"nginx,omitempty" json:"nginx,omitempty"`
	// ALB drives an AWS Application Load Balancer listener rule's weighted
	// forward action.
	ALB *ALBRouter `yaml:"alb,omitempty" json:"alb,omitempty"`
	// GatewayAPI patches a Kubernetes Gateway API HTTPRoute's backendRefs.
	GatewayAPI *GatewayAPIRouter `yaml:"gatewayAPI,omitempty" json:"gatewayAPI,omitempty"`
	// Istio patches an Istio VirtualService's route weights.
	Istio *IstioRouter `yaml:"istio,omitempty" json:"istio,omitempty"`
}

// Router kinds, as Kind reports them.
const (
	RouterBuiltin = "builtin"
	RouterHAProxy = "haproxy"
	RouterNGINX   = "nginx"
	RouterALB     = "alb"
	RouterGateway = "gatewayAPI"
	RouterIstio   = "istio"
)

// Kind is the router's name: builtin, haproxy or nginx.
func (r Router) Kind() string {
	switch {
	case r.HAProxy != nil:
		return RouterHAProxy
	case r.NGINX != nil:
		return RouterNGINX
	case r.ALB != nil:
		return RouterALB
	case r.GatewayAPI != nil:
		return RouterGateway
	case r.Istio != nil:
		return RouterIstio
	}
	return RouterBuiltin
}

// count is how many routers are set (a rollout has at most one).
func (r Router) count() int {
	n := 0
	for _, set := range []bool{r.HAProxy != nil, r.NGINX != nil, r.ALB != nil, r.GatewayAPI != nil, r.Istio != nil} {
		if set {
			n++
		}
	}
	return n
}

// UsesEndpoints reports whether the router sends to the endpoints the
// rollout lists (coalmine's proxy, HAProxy, NGINX), rather than to targets
// its platform keeps (ALB target groups, Kubernetes Services).
func (r Router) UsesEndpoints() bool {
	switch r.Kind() {
	case RouterALB, RouterGateway, RouterIstio:
		return false
	}
	return true
}

// External reports whether another load balancer carries the traffic.
func (r Router) External() bool { return r.Kind() != RouterBuiltin }

// HAProxyRouter is an HAProxy that coalmine drives through its runtime API
// (the stats socket at level admin). The user's haproxy.cfg declares the
// two backends and the map the frontend consults (docs/routers.md gives
// the lines); coalmine changes map entries and server addresses at run
// time, so nothing is reloaded.
type HAProxyRouter struct {
	// RuntimeAPI is the stats socket: unix:///run/haproxy/admin.sock or
	// tcp://127.0.0.1:9999. Required.
	RuntimeAPI string `yaml:"runtimeAPI" json:"runtimeAPI"`
	// StableBackend names the backend that serves the stable version.
	// Default NAME_stable, NAME being the rollout's.
	StableBackend string `yaml:"stableBackend,omitempty" json:"stableBackend,omitempty"`
	// CanaryBackend names the backend that serves the canary version.
	// Default NAME_canary.
	CanaryBackend string `yaml:"canaryBackend,omitempty" json:"canaryBackend,omitempty"`
	// Map is the path of the map file the frontend looks the weight and
	// the header routes up in, as haproxy.cfg names it. Default
	// /etc/haproxy/coalmine.map.
	Map string `yaml:"map,omitempty" json:"map,omitempty"`
	// Timeout bounds one runtime API exchange. Default 2s.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// NGINXRouter is an open-source NGINX (no Plus API) that coalmine drives
// by rendering include files and reloading NGINX after `nginx -t` accepts
// them, and by swapping weight files, with no reload, for a weight change.
type NGINXRouter struct {
	// IncludeFile is the file coalmine writes; the user's http block
	// includes it. Required. coalmine writes the location include beside
	// it (its name without .conf, with .location), which the proxying
	// location includes.
	IncludeFile string `yaml:"includeFile" json:"includeFile"`
	// TestCommand checks the configuration before a reload. Default
	// ["nginx", "-t"].
	TestCommand []string `yaml:"testCommand,omitempty" json:"testCommand,omitempty"`
	// ReloadCommand reloads NGINX. Default ["nginx", "-s", "reload"].
	ReloadCommand []string `yaml:"reloadCommand,omitempty" json:"reloadCommand,omitempty"`
	// StatusAddress is where the rendered file makes NGINX answer which
	// generation and weight it routes with, so coalmine reads back what is
	// applied rather than assuming a change took. Default 127.0.0.1:7079.
	StatusAddress string `yaml:"statusAddress,omitempty" json:"statusAddress,omitempty"`
	// StateDir is the directory of the weight files NGINX's workers check
	// on every request, so a weight change needs no reload. Default:
	// beside IncludeFile, its name without .conf and with .d
	// (/etc/nginx/coalmine/shop.d for /etc/nginx/coalmine/shop.conf).
	StateDir string `yaml:"stateDir,omitempty" json:"stateDir,omitempty"`
}

// BackendNames returns the stable and canary backend names, defaults
// applied for rollout.
func (h HAProxyRouter) BackendNames(rollout string) (stable, canary string) {
	stable, canary = h.StableBackend, h.CanaryBackend
	if stable == "" {
		stable = rollout + "_stable"
	}
	if canary == "" {
		canary = rollout + "_canary"
	}
	return stable, canary
}

// Claims names what of its load balancer the router takes for rollout, so
// two rollouts that would overwrite each other's routing are refused.
//
// The backend (HAProxy) and upstream (NGINX) names are claimed whatever
// load balancer holds them: they are what an access-log line names, so
// two rollouts sharing one could not be told apart in the telemetry.
func (r Router) Claims(rollout string) []string {
	logName := func(n string) string { return "the backend name " + n + " (access-log lines name it)" }
	switch {
	case r.HAProxy != nil:
		s, c := r.HAProxy.BackendNames(rollout)
		return []string{"HAProxy backend " + s + " at " + r.HAProxy.RuntimeAPI, "HAProxy backend " + c + " at " + r.HAProxy.RuntimeAPI, logName(s), logName(c)}
	case r.NGINX != nil:
		// NGINX names upstreams after the rollout, '-' becoming '_'.
		id := strings.ReplaceAll(rollout, "-", "_")
		state := r.NGINX.StateDir
		if state == "" {
			state = strings.TrimSuffix(r.NGINX.IncludeFile, ".conf") + ".d"
		}
		return []string{"NGINX include file " + r.NGINX.IncludeFile, "NGINX state directory " + state, logName(id + "_stable"), logName(id + "_canary")}
	case r.GatewayAPI != nil:
		// Two rollouts may share an HTTPRoute with different Services;
		// the same Service's weights in the same route are one rollout's.
		g := r.GatewayAPI
		route := "HTTPRoute " + orDefaultNamespace(g.Namespace) + "/" + g.HTTPRoute + cluster(g.Kubeconfig, g.Context)
		return []string{"Service " + g.StableService + " in " + route, "Service " + g.CanaryService + " in " + route}
	case r.Istio != nil:
		i := r.Istio
		vs := "VirtualService " + orDefaultNamespace(i.Namespace) + "/" + i.VirtualService + cluster(i.Kubeconfig, i.Context)
		routes := i.Routes
		if len(routes) == 0 {
			routes = []string{""}
		}
		var out []string
		for _, rt := range routes {
			name := "the only http route"
			if rt != "" {
				name = "http route " + rt
			}
			out = append(out, name+" of "+vs)
		}
		return out
	}
	return nil
}

func orDefaultNamespace(ns string) string {
	if ns == "" {
		return "default"
	}
	return ns
}

// cluster tells clusters apart in claims: the same names in two clusters
// are two objects.
func cluster(kubeconfig, context string) string {
	if kubeconfig == "" && context == "" {
		return ""
	}
	return " (kubeconfig " + kubeconfig + ", context " + context + ")"
}
