// Package router is what coalmine asks of a load balancer it does not run
// itself (HAProxy, NGINX): one Driver per rollout, told the whole desired
// routing at once and asked what is really applied. The controller never
// talks to a product by name; the adapter in this package turns its
// routing tables into Desired states and a Driver's answers into what the
// controller observes.
package router

import (
	"context"
	"errors"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Target is one version as the load balancer must serve it.
type Target struct {
	Version string
	// Endpoints are the version's upstream URLs (http://host:port), as
	// the rollout spec lists them.
	Endpoints []string
}

// Desired is the complete routing of one rollout at one moment. Apply is
// given the whole of it every time, so a driver never has to remember
// what it applied before to know what to change.
type Desired struct {
	Rollout string
	// Revision salts user stickiness, so each release starts with a
	// different first share of users (as the built-in proxy does).
	Revision int64
	// Generation identifies this routing; a driver stores it in the load
	// balancer so Observe can prove the load balancer routes with it.
	Generation uint64
	// Weight is the canary's share in basis points (0..10000). It is 0
	// when there is no canary.
	Weight spec.Weight
	Stable Target
	// Canary is nil when the rollout has no canary.
	Canary *Target
	// UserHeader names the request header whose value keeps a user on one
	// version while the weight rises ("" when the rollout has none).
	UserHeader string
	// HeaderRoutes send matching requests to one version whatever the
	// weight, first match first, as the built-in proxy does.
	HeaderRoutes []spec.HeaderRoute
	// MirrorRoutes copy matching stable requests to the canary. A driver
	// that cannot mirror refuses a non-empty list with ErrUnsupported (lint
	// has said so already).
	MirrorRoutes []spec.MirrorRoute
}

// Applied is what the load balancer routes with, read back from it.
type Applied struct {
	// Generation is the Desired.Generation the load balancer holds; 0
	// when it holds none (new, or restarted without coalmine's state).
	Generation uint64
	// Weight is the canary share the load balancer applies, basis points.
	Weight spec.Weight
	// CanaryAvailable reports whether the canary has a server that can
	// take traffic (for the load balancer's own health checks).
	CanaryAvailable bool
}

// Driver moves one rollout's traffic on one load balancer. Methods may be
// called from several goroutines, never at once for one Driver (the adapter
// serialises them). Every method honours ctx.
type Driver interface {
	// Apply makes the load balancer route as d says. It is idempotent and
	// returns only once the change is in effect or has failed; on failure
	// the load balancer keeps routing as before (never half-applied where
	// the product allows it).
	Apply(ctx context.Context, d Desired) error
	// Observe reads back what the load balancer routes with now.
	Observe(ctx context.Context) (Applied, error)
	// Check reports whether the load balancer is reachable and configured
	// as the driver needs (the error says what to fix).
	Check(ctx context.Context) error
	// Remove stops coalmine's routing of the rollout: all traffic goes to
	// stable, coalmine's entries are deleted where the product allows.
	Remove(ctx context.Context) error
	// Backends names the backends or upstreams whose access-log lines
	// belong to this rollout, with the role each serves, so the
	// access-log receiver can attribute a line to a version.
	Backends() map[string]spec.Role
}

// ErrUnsupported is wrapped by a driver asked for something its load
// balancer cannot do (the error names the router and the feature).
var ErrUnsupported = errors.New("not supported by this router")
