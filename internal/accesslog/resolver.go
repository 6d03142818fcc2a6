package accesslog

import (
	"sync/atomic"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Resolver attributes a line to a version: it maps the backend (HAProxy)
// or upstream (NGINX) a line names to the statistics to record into, or
// nil when the name is none of coalmine's (the line is counted as
// unknown_backend). The receiver calls it once per line from its reading
// goroutine, so it must be fast and safe for concurrent use.
type Resolver interface {
	Resolve(name string) *telemetry.VersionStats
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(name string) *telemetry.VersionStats

// Resolve calls f.
func (f ResolverFunc) Resolve(name string) *telemetry.VersionStats { return f(name) }

// Table is a Resolver over a map the caller replaces whole when routing
// changes (a promotion makes the stable backend serve another version): a
// lock-free read per line, a copy per change. The zero Table resolves
// nothing.
type Table struct {
	m atomic.Pointer[map[string]*telemetry.VersionStats]
}

// Set replaces the table. It keeps its own copy, so the caller may reuse m.
func (t *Table) Set(m map[string]*telemetry.VersionStats) {
	c := make(map[string]*telemetry.VersionStats, len(m))
	for k, v := range m {
		c[k] = v
	}
	t.m.Store(&c)
}

// Resolve implements Resolver.
func (t *Table) Resolve(name string) *telemetry.VersionStats {
	if m := t.m.Load(); m != nil {
		return (*m)[name]
	}
	return nil
}

// Routes builds the map a Table is Set with for one rollout from the
// backends a router names (router.Driver.Backends: backend → role) and the
// version each role serves now: a backend records into that version. A
// role without a version (no canary yet) leaves its backend out, so its
// lines count as unknown_backend. Merge the maps of several rollouts
// sharing one receiver; their backend names are distinct.
func Routes(rs *telemetry.RolloutStats, backends map[string]spec.Role, versions map[spec.Role]string) map[string]*telemetry.VersionStats {
	m := make(map[string]*telemetry.VersionStats, len(backends))
	for name, role := range backends {
		if v, ok := versions[role]; ok && v != "" {
			m[name] = rs.Version(role, v)
		}
	}
	return m
}
