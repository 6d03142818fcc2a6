// Package gateway drives a Kubernetes Gateway API HTTPRoute: coalmine sets
// the weights of the backendRefs to the stable and canary Services, adds
// its own rules for header routes, and records the routing generation in
// an annotation, all in one JSON patch guarded by the route's
// resourceVersion.
package gateway

import (
	"context"
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/router/kube"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// AnnotationGeneration holds, on the HTTPRoute, the routing generation
// coalmine last wrote, in the same patch as the weights, so reading it
// back proves the route carries that routing.
const AnnotationGeneration = "coalmine.dev/generation"

// HTTPRoutes is the resource coalmine patches (gateway.networking.k8s.io/v1).
var HTTPRoutes = schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}

// DefaultNamespace is the namespace when the router names none.
const DefaultNamespace = "default"

// Driver drives one rollout's HTTPRoute. It implements router.Driver.
type Driver struct {
	client dynamic.Interface
	route  kube.Object
	want   Want
}

var _ router.Driver = (*Driver)(nil)

// New returns the driver of rollout on the HTTPRoute cfg names, with a
// client of the cluster cfg's kubeconfig and context (or the pod's
// service account) find.
func New(rollout string, cfg spec.GatewayAPIRouter) (*Driver, error) {
	if err := check(cfg); err != nil {
		return nil, err
	}
	c, _, err := kube.NewClient(kube.Connection{Kubeconfig: cfg.Kubeconfig, Context: cfg.Context})
	if err != nil {
		return nil, fmt.Errorf("gatewayAPI router: %w", err)
	}
	return NewWithClient(rollout, cfg, c)
}

func check(cfg spec.GatewayAPIRouter) error {
	switch {
	case cfg.HTTPRoute == "":
		return fmt.Errorf("gatewayAPI router: httpRoute is required")
	case cfg.StableService == "" || cfg.CanaryService == "":
		return fmt.Errorf("gatewayAPI router: stableService and canaryService are required")
	case cfg.StableService == cfg.CanaryService:
		return fmt.Errorf("gatewayAPI router: stableService and canaryService must differ")
	}
	return nil
}

// NewWithClient is New with a given client.
func NewWithClient(rollout string, cfg spec.GatewayAPIRouter, c dynamic.Interface) (*Driver, error) {
	if err := check(cfg); err != nil {
		return nil, err
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return &Driver{
		client: c,
		route:  kube.Object{Client: c, GVR: HTTPRoutes, Kind: "HTTPRoute", Namespace: ns, Name: cfg.HTTPRoute},
		want:   Want{Namespace: ns, StableService: cfg.StableService, CanaryService: cfg.CanaryService, Owner: kube.Label(rollout)},
	}, nil
}

// Apply sets the weights, header-route rules and generation of d on the
// HTTPRoute in one patch; it sends nothing when the route has them all.
// The change is in effect in the API once Apply returns; how fast the
// Gateway's data plane follows is the implementation's business.
func (d *Driver) Apply(ctx context.Context, des router.Desired) error {
	if len(des.MirrorRoutes) > 0 {
		return fmt.Errorf("gatewayAPI router: mirror routes: %w (lint refuses setMirrorRoute steps for it)", router.ErrUnsupported)
	}
	if des.UserHeader != "" {
		return fmt.Errorf("gatewayAPI router: keeping users by header %s: %w (lint refuses assignment.userHeader for it)", des.UserHeader, router.ErrUnsupported)
	}
	w := d.want
	w.Generation = des.Generation
	w.Weight = des.Weight
	if des.Canary == nil {
		w.Weight = 0
	}
	w.HeaderRoutes = des.HeaderRoutes
	_, err := d.route.Change(ctx, func(obj map[string]any) ([]kube.Op, error) { return Plan(obj, w) })
	if err != nil {
		return fmt.Errorf("gatewayAPI router: %w", err)
	}
	return nil
}

// Observe reads the weights and generation back from the HTTPRoute, and
// whether the canary Service has a ready endpoint (its EndpointSlices).
func (d *Driver) Observe(ctx context.Context) (router.Applied, error) {
	u, err := d.route.Get(ctx)
	if err != nil {
		return router.Applied{}, fmt.Errorf("gatewayAPI router: %w", err)
	}
	o, err := Read(u.Object, d.want)
	if err != nil {
		return router.Applied{}, fmt.Errorf("gatewayAPI router: %s: %w", d.route, err)
	}
	ready, err := kube.ServiceReady(ctx, d.client, d.want.Namespace, d.want.CanaryService)
	if err != nil {
		return router.Applied{}, fmt.Errorf("gatewayAPI router: canary Service %q: %w", d.want.CanaryService, err)
	}
	return router.Applied{Generation: o.Generation, Weight: o.Weight, CanaryAvailable: ready}, nil
}

// Check reads the HTTPRoute and says whether coalmine can route by it.
func (d *Driver) Check(ctx context.Context) error {
	u, err := d.route.Get(ctx)
	if err != nil {
		return fmt.Errorf("gatewayAPI router: %w", err)
	}
	if _, err := Plan(u.Object, d.want); err != nil {
		return fmt.Errorf("gatewayAPI router: %s: %w", d.route, err)
	}
	return nil
}

// Remove sends all traffic to stable, deletes coalmine's rules and its
// annotation. The canary backendRef stays, at weight 0.
func (d *Driver) Remove(ctx context.Context) error {
	w := d.want
	w.Remove = true
	_, err := d.route.Change(ctx, func(obj map[string]any) ([]kube.Op, error) { return Plan(obj, w) })
	if err != nil {
		return fmt.Errorf("gatewayAPI router: %w", err)
	}
	return nil
}

// Backends is empty: the Gateway's access logs are not coalmine's input.
func (d *Driver) Backends() map[string]spec.Role { return nil }
