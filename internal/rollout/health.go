package rollout

import (
	"context"
	"fmt"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// healthChange is an endpoint health transition reported by the data plane.
type healthChange struct {
	rollout, version, url, reason string
	role                          spec.Role
	healthy                       bool
	// router is set for a change of the rollout's load balancer rather
	// than of one endpoint.
	router string
}

// RouterHealth records that the load balancer carrying a rollout stopped
// (ok false) or resumed routing as the rollout's state says, as an event,
// and wakes the rollout. Like EndpointHealth it never blocks.
func (c *Controller) RouterHealth(rollout, router string, ok bool, reason string) {
	select {
	case c.health <- healthChange{rollout: rollout, router: router, healthy: ok, reason: reason}:
	default:
		c.log.Warn("router health event dropped: too many waiting", "rollout", rollout, "router", router, "ok", ok)
	}
}

// EndpointHealth records an endpoint health transition as an event and
// wakes the rollout (a setWeight step may be waiting for a healthy canary).
// The data plane calls it from its health checkers; it never blocks: the
// change is queued for the controller's own goroutine, and dropped with a
// log line if thousands are already waiting.
func (c *Controller) EndpointHealth(rollout string, role spec.Role, version, url string, healthy bool, reason string) {
	select {
	case c.health <- healthChange{rollout: rollout, role: role, version: version, url: url, healthy: healthy, reason: reason}:
	default:
		c.log.Warn("endpoint health event dropped: too many waiting", "rollout", rollout, "endpoint", url, "healthy", healthy)
	}
}

func (c *Controller) recordHealth(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-c.health:
			if err := c.appendHealthEvent(ctx, h); err != nil {
				c.log.Warn("record endpoint health event", "rollout", h.rollout, "err", err)
			}
			c.queue.Add(h.rollout, c.cfg.Now())
		}
	}
}

func (c *Controller) appendHealthEvent(ctx context.Context, h healthChange) error {
	e, err := c.entry(h.rollout)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.removed {
		return nil
	}
	next := e.st
	next.UpdatedAt = c.cfg.Now()
	if h.router != "" {
		ev := EventDraft{Type: EventRouterDown, Details: map[string]any{"router": h.router, "reason": h.reason},
			Message: fmt.Sprintf("the %s router does not route as the rollout says, so no step completes until it does (retried every second): %s", h.router, h.reason)}
		if h.healthy {
			ev.Type, ev.Message = EventRouterUp, fmt.Sprintf("the %s router routes as the rollout says again", h.router)
		}
		return c.commit(ctx, e, next, []EventDraft{ev}, nil)
	}
	typ, state := EventEndpointDown, "unhealthy"
	if h.healthy {
		typ, state = EventEndpointUp, "healthy"
	}
	return c.commit(ctx, e, next, []EventDraft{{
		Type:    typ,
		Message: fmt.Sprintf("%s endpoint %s of %s is %s: %s", h.role, h.url, h.version, state, h.reason),
		Details: map[string]any{"role": string(h.role), "version": h.version, "endpoint": h.url, "reason": h.reason},
	}}, nil)
}
