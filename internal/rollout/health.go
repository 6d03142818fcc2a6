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
	typ, state := EventEndpointDown, "unhealthy"
	if h.healthy {
		typ, state = EventEndpointUp, "healthy"
	}
	next := e.st
	next.UpdatedAt = c.cfg.Now()
	return c.commit(ctx, e, next, []EventDraft{{
		Type:    typ,
		Message: fmt.Sprintf("%s endpoint %s of %s is %s: %s", h.role, h.url, h.version, state, h.reason),
		Details: map[string]any{"role": string(h.role), "version": h.version, "endpoint": h.url, "reason": h.reason},
	}}, nil)
}
