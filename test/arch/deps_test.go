// Package arch keeps the dependency direction of DESIGN.md honest: pure
// packages stay pure, the data plane never learns about rollouts, and the
// client side never links the server.
package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/coalmine-dev/coalmine/internal/"

// allowed lists, per package, the only internal packages it may depend on
// (directly or not).
var allowed = map[string][]string{
	"spec":      {},
	"model":     {"spec"},
	"route":     {"spec"},
	"telemetry": {"spec"},
	"config":    {"spec"},
	"store":     {},
	"lease":     {"store"},
	// teleshare moves telemetry between replicas through the store; it
	// never reaches the controller or the proxy.
	"teleshare": {"spec", "store", "telemetry"},
	// cluster reads the lease record to say who leads; it never runs the
	// controller.
	"cluster": {"spec", "model", "store", "lease"},
	"proxy":   {"spec", "route", "telemetry"},
	// router drives load balancers coalmine does not run: it is told the
	// routing (route tables) and never reaches the store or controller.
	"router": {"spec", "model", "route"},
	// rollout runs analysis (pure bookkeeping and judges) and asks
	// providers through their interface only.
	"rollout":  {"spec", "model", "route", "store", "analysis", "analysis/judge", "analysis/stats", "provider"},
	"analysis": {"spec", "model", "provider", "analysis/judge", "analysis/stats"},
	"api":      {"spec", "model"},
	"client":   {"spec", "model"},
	// cli reads YAML for `apply` with the same loader as `lint` and
	// `serve`, so a bad file gets file:line:col before it is sent.
	"cli":    {"spec", "model", "client", "config"},
	"notify": {"spec", "model", "store", "config"},
	// web serves the dashboard's files and builds series from telemetry;
	// it never reaches the controller except through the API.
	"web": {"spec", "model", "telemetry"},
	// the HAProxy driver speaks the runtime API; it knows the Driver
	// contract and the spec, nothing of the controller (model and route
	// come with the router package, for its External adapter).
	"router/haproxy": {"spec", "router", "model", "route"},
	// accesslog records HAProxy's and NGINX's access-log lines into
	// telemetry; which backend is which version is the caller's Resolver.
	"accesslog": {"spec", "telemetry"},
	// The NGINX router renders the routing it is given and runs NGINX's
	// commands; it knows nothing of rollouts beyond router.Desired.
	"router/nginx": {"spec", "router", "model", "route"},
	// kube is the Kubernetes API access the Gateway API and Istio drivers
	// share; it knows nothing of rollouts (kubetest, its test double, is
	// its sub-package).
	"router/kube": {},
	// The Gateway API and Istio routers patch one object each through
	// router/kube.
	"router/gateway": {"spec", "router", "model", "route", "router/kube"},
	"router/istio":   {"spec", "router", "model", "route", "router/kube"},
	// the ALB driver speaks the ELBv2 API through the AWS SDK; like the
	// other drivers it knows only the Driver contract and the spec.
	"router/alb": {"spec", "router", "model", "route"},
	// the CloudWatch provider answers one query through the AWS SDK; it
	// knows the provider interface and the spec only.
	"provider/cloudwatch": {"spec", "provider"},
}

func TestDependencyDirection(t *testing.T) {
	for pkg, ok := range allowed {
		out, err := exec.Command("go", "list", "-deps", "../../internal/"+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		permitted := map[string]bool{pkg: true}
		for _, p := range ok {
			permitted[p] = true
		}
		for _, dep := range strings.Fields(string(out)) {
			name, found := strings.CutPrefix(dep, module)
			if !found {
				continue
			}
			// A package's own sub-packages (notify/slack) are part of it.
			if !permitted[name] && !strings.HasPrefix(name, pkg+"/") {
				t.Errorf("internal/%s depends on internal/%s; allowed: %v", pkg, name, ok)
			}
		}
	}
}
