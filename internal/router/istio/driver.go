// Package istio drives an Istio VirtualService: coalmine sets the weights
// of the stable and canary destinations of the http routes it is given,
// adds its own http routes for header and mirror routes before them, and
// records the routing generation in an annotation, all in one JSON patch
// guarded by the VirtualService's resourceVersion.
package istio

import (
	"context"
	"fmt"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/router/kube"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// Resources coalmine reads or patches (networking.istio.io/v1, served
// since Istio 1.22).
var (
	VirtualServices  = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	DestinationRules = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}
)

// DefaultNamespace is the namespace when the router names none.
const DefaultNamespace = "default"

// Driver drives one rollout's VirtualService. It implements router.Driver.
type Driver struct {
	client    dynamic.Interface
	vs        kube.Object
	namespace string
	want      Want
}

var _ router.Driver = (*Driver)(nil)

// New returns the driver of rollout on the VirtualService cfg names.
func New(rollout string, cfg spec.IstioRouter) (*Driver, error) {
	if _, _, err := destinations(cfg); err != nil {
		return nil, err
	}
	c, _, err := kube.NewClient(kube.Connection{Kubeconfig: cfg.Kubeconfig, Context: cfg.Context})
	if err != nil {
		return nil, fmt.Errorf("istio router: %w", err)
	}
	return NewWithClient(rollout, cfg, c)
}

func destinations(cfg spec.IstioRouter) (Destination, Destination, error) {
	switch {
	case cfg.VirtualService == "":
		return Destination{}, Destination{}, fmt.Errorf("istio router: virtualService is required")
	case cfg.StableHost != "" && cfg.CanaryHost != "" && cfg.StableHost != cfg.CanaryHost:
		return Destination{Host: cfg.StableHost}, Destination{Host: cfg.CanaryHost}, nil
	case cfg.Host != "" && cfg.StableSubset != "" && cfg.CanarySubset != "" && cfg.StableSubset != cfg.CanarySubset:
		return Destination{Host: cfg.Host, Subset: cfg.StableSubset}, Destination{Host: cfg.Host, Subset: cfg.CanarySubset}, nil
	}
	return Destination{}, Destination{}, fmt.Errorf("istio router: name two different versions, by stableHost and canaryHost or by host with stableSubset and canarySubset")
}

// NewWithClient is New with a given client.
func NewWithClient(rollout string, cfg spec.IstioRouter, c dynamic.Interface) (*Driver, error) {
	stable, canary, err := destinations(cfg)
	if err != nil {
		return nil, err
	}
	ns := cfg.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	return &Driver{
		client:    c,
		vs:        kube.Object{Client: c, GVR: VirtualServices, Kind: "VirtualService", Namespace: ns, Name: cfg.VirtualService},
		namespace: ns,
		want:      Want{Routes: append([]string(nil), cfg.Routes...), Stable: stable, Canary: canary, Owner: kube.Label(rollout)},
	}, nil
}

// Apply sets the weights, coalmine's routes and its annotations on the
// VirtualService in one patch; it sends nothing when all is there.
func (d *Driver) Apply(ctx context.Context, des router.Desired) error {
	if des.UserHeader != "" {
		return fmt.Errorf("istio router: keeping users by header %s: %w (lint refuses assignment.userHeader for it)", des.UserHeader, router.ErrUnsupported)
	}
	w := d.want
	w.Generation, w.Weight = des.Generation, des.Weight
	if des.Canary == nil {
		w.Weight = 0
	}
	w.HeaderRoutes, w.MirrorRoutes = des.HeaderRoutes, des.MirrorRoutes
	if _, err := d.vs.Change(ctx, func(obj map[string]any) ([]kube.Op, error) { return Plan(obj, w) }); err != nil {
		return fmt.Errorf("istio router: %w", err)
	}
	return nil
}

// Observe reads the weights and generation back, and whether the canary
// has a ready endpoint: the canary host Service's EndpointSlices, or, for
// subsets, a Ready pod with the labels of the canary subset in the
// host's DestinationRule.
func (d *Driver) Observe(ctx context.Context) (router.Applied, error) {
	u, err := d.vs.Get(ctx)
	if err != nil {
		return router.Applied{}, fmt.Errorf("istio router: %w", err)
	}
	o, err := Read(u.Object, d.want)
	if err != nil {
		return router.Applied{}, fmt.Errorf("istio router: %s: %w", d.vs, err)
	}
	ready, err := d.canaryReady(ctx)
	if err != nil {
		return router.Applied{}, fmt.Errorf("istio router: canary %s: %w", d.want.Canary, err)
	}
	return router.Applied{Generation: o.Generation, Weight: o.Weight, CanaryAvailable: ready}, nil
}

// service splits a destination host (name, name.namespace or the FQDN
// name.namespace.svc.cluster.local) into the Service's name and namespace.
func (d *Driver) service(host string) (name, namespace string) {
	parts := strings.Split(host, ".")
	if len(parts) >= 2 {
		return parts[0], parts[1]
	}
	return parts[0], d.namespace
}

func (d *Driver) canaryReady(ctx context.Context) (bool, error) {
	c := d.want.Canary
	if c.Subset == "" {
		name, ns := d.service(c.Host)
		return kube.ServiceReady(ctx, d.client, ns, name)
	}
	labels, err := d.subsetLabels(ctx)
	if err != nil {
		return false, err
	}
	_, ns := d.service(c.Host)
	return kube.PodsReady(ctx, d.client, ns, labels)
}

// subsetLabels finds the canary subset's labels in the DestinationRule
// of the host, in the VirtualService's namespace.
func (d *Driver) subsetLabels(ctx context.Context) (map[string]string, error) {
	drs, err := kube.List(ctx, d.client, DestinationRules, d.namespace)
	if err != nil {
		return nil, err
	}
	name, ns := d.service(d.want.Canary.Host)
	for _, dr := range drs {
		host, _, _ := unstructured.NestedString(dr.Object, "spec", "host")
		if hn, hns := d.service(host); hn != name || hns != ns {
			continue
		}
		subsets, _, _ := unstructured.NestedSlice(dr.Object, "spec", "subsets")
		for _, s := range subsets {
			m, _ := s.(map[string]any)
			if m["name"] != d.want.Canary.Subset {
				continue
			}
			labels, _, _ := unstructured.NestedStringMap(m, "labels")
			if len(labels) == 0 {
				return nil, fmt.Errorf("subset %q of DestinationRule %s has no labels to find its pods by", d.want.Canary.Subset, dr.GetName())
			}
			return labels, nil
		}
	}
	return nil, fmt.Errorf("no DestinationRule in namespace %q for host %q defines subset %q", d.namespace, d.want.Canary.Host, d.want.Canary.Subset)
}

// Check reads the VirtualService and says whether coalmine can route by it.
func (d *Driver) Check(ctx context.Context) error {
	u, err := d.vs.Get(ctx)
	if err != nil {
		return fmt.Errorf("istio router: %w", err)
	}
	if _, err := Plan(u.Object, d.want); err != nil {
		return fmt.Errorf("istio router: %s: %w", d.vs, err)
	}
	return nil
}

// Remove sends all traffic to stable and deletes coalmine's routes and
// annotations. The canary destination stays, at weight 0.
func (d *Driver) Remove(ctx context.Context) error {
	w := d.want
	w.Remove = true
	if _, err := d.vs.Change(ctx, func(obj map[string]any) ([]kube.Op, error) { return Plan(obj, w) }); err != nil {
		return fmt.Errorf("istio router: %w", err)
	}
	return nil
}

// Backends is empty: the mesh's access logs are not coalmine's input.
func (d *Driver) Backends() map[string]spec.Role { return nil }
