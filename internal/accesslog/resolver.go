package accesslog

import (
	"sync/atomic"

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
