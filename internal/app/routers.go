package app

import (
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/router/alb"
	"github.com/coalmine-dev/coalmine/internal/router/gateway"
	"github.com/coalmine-dev/coalmine/internal/router/haproxy"
	"github.com/coalmine-dev/coalmine/internal/router/istio"
	"github.com/coalmine-dev/coalmine/internal/router/nginx"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// newRouterDriver builds the driver of a rollout's load balancer. A kind
// without a driver is an error, never a fallback to another router.
func newRouterDriver(rollout string, r spec.Router) (router.Driver, error) {
	switch r.Kind() {
	case spec.RouterHAProxy:
		return haproxy.New(rollout, *r.HAProxy)
	case spec.RouterNGINX:
		return nginx.New(rollout, *r.NGINX)
	case spec.RouterGateway:
		return gateway.New(rollout, *r.GatewayAPI)
	case spec.RouterIstio:
		return istio.New(rollout, *r.Istio)
	case spec.RouterALB:
		return alb.New(rollout, *r.ALB)
	}
	return nil, fmt.Errorf("no driver for router %q", r.Kind())
}
