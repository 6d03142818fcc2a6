package telemetry

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// RolloutStats holds the telemetry of one rollout: one VersionStats per
// (role, version) and the rollout-wide mirror drop counters. It is safe for
// concurrent use; Version lookups are lock-free.
type RolloutStats struct {
	reg  *Registry
	name string

	mirrorDropped [numDropReasons]atomic.Uint64
	rejected      [numRejectReasons]atomic.Uint64
	// connections is the listener's open client connections (a gauge the
	// proxy keeps); acceptErrors counts failed accepts (descriptors
	// exhausted and the like), after which the listener backs off.
	connections  atomic.Int64
	acceptErrors atomic.Uint64

	versions atomic.Pointer[versionSet]

	mu       sync.Mutex // serialises version-set changes and revisions; guards the fields below
	revision int64
	revStart time.Time
	// retired holds the proxy-error counts of removed versions per role, so
	// coalmine_proxy_errors_total{rollout,role,kind} never goes down.
	retired map[spec.Role]*[numErrorKinds]uint64
}

type versionKey struct {
	role    spec.Role
	version string
}

// versionSet is immutable once published.
type versionSet struct {
	byKey map[versionKey]*VersionStats
	list  []*VersionStats // creation order
}

func newRolloutStats(r *Registry, name string, now time.Time) *RolloutStats {
	rs := &RolloutStats{reg: r, name: name, revStart: now}
	rs.versions.Store(&versionSet{byKey: map[versionKey]*VersionStats{}})
	return rs
}

// Name returns the rollout's name.
func (rs *RolloutStats) Name() string { return rs.name }

// Revision returns the revision last passed to StartRevision (0 before the
// first call) and when it started (the rollout's creation before that).
func (rs *RolloutStats) Revision() (revision int64, started time.Time) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.revision, rs.revStart
}

// Version returns the statistics of one version in one role, creating them
// on first use. The role is normally spec.RoleStable or spec.RoleCanary; a
// version that changes role (a promoted canary) gets new statistics under
// the new role, as its Prometheus labels change too.
func (rs *RolloutStats) Version(role spec.Role, version string) *VersionStats {
	k := versionKey{role, version}
	if v, ok := rs.versions.Load().byKey[k]; ok {
		return v
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := rs.versions.Load()
	if v, ok := old.byKey[k]; ok {
		return v
	}
	v := newVersionStats(rs, role, version, rs.revStart, rs.reg.now())
	next := &versionSet{
		byKey: make(map[versionKey]*VersionStats, len(old.byKey)+1),
		list:  make([]*VersionStats, 0, len(old.list)+1),
	}
	for key, vs := range old.byKey {
		next.byKey[key] = vs
	}
	next.byKey[k] = v
	next.list = append(append(next.list, old.list...), v)
	rs.versions.Store(next)
	return v
}

// RemoveVersion forgets one version, releasing its memory once the proxy no
// longer holds it; call it when a version is no longer routed (the old
// stable after a promotion), or statistics accumulate over revisions. Its
// proxy errors stay in the per-role totals. A later Version call for the
// same key starts from zero, which Prometheus reads as a counter reset.
func (rs *RolloutStats) RemoveVersion(role spec.Role, version string) {
	k := versionKey{role, version}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	old := rs.versions.Load()
	v, ok := old.byKey[k]
	if !ok {
		return
	}
	next := &versionSet{
		byKey: make(map[versionKey]*VersionStats, len(old.byKey)),
		list:  make([]*VersionStats, 0, len(old.list)),
	}
	for key, vs := range old.byKey {
		if key != k {
			next.byKey[key] = vs
		}
	}
	for _, vs := range old.list {
		if vs != v {
			next.list = append(next.list, vs)
		}
	}
	if rs.retired == nil {
		rs.retired = map[spec.Role]*[numErrorKinds]uint64{}
	}
	acc := rs.retired[role]
	if acc == nil {
		acc = new([numErrorKinds]uint64)
		rs.retired[role] = acc
	}
	for i := range v.proxyErrors {
		acc[i] += v.proxyErrors[i].Load()
	}
	rs.versions.Store(next)
}

// Versions returns the rollout's versions in creation order.
func (rs *RolloutStats) Versions() []*VersionStats {
	return append([]*VersionStats(nil), rs.versions.Load().list...)
}

// StartRevision starts the since-revision window of every version at the
// current time: Summary(0) counts from here. Sliding windows are clamped to
// the revision start too. Cumulative counters (the Prometheus exposition)
// are not touched and stay monotonic.
func (rs *RolloutStats) StartRevision(revision int64) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	now := rs.reg.now()
	rs.revision = revision
	rs.revStart = now
	for _, v := range rs.versions.Load().list {
		v.startRevision(now.UnixNano())
	}
}

// MirrorDropped counts a mirrored request that was not sent. Lock-free.
func (rs *RolloutStats) MirrorDropped(reason DropReason) {
	rs.mirrorDropped[reason.index()].Add(1)
}

// ClientRejected counts a request (or connection) coalmine answered itself
// because of the client, never charged to a version. Lock-free.
func (rs *RolloutStats) ClientRejected(reason RejectReason) {
	rs.rejected[reason.index()].Add(1)
}

// Rejected returns how many requests were rejected for reason.
func (rs *RolloutStats) Rejected(reason RejectReason) uint64 {
	return rs.rejected[reason.index()].Load()
}

// ConnectionOpened and ConnectionClosed keep the open client connection
// gauge. Lock-free.
func (rs *RolloutStats) ConnectionOpened() { rs.connections.Add(1) }

// ConnectionClosed: see ConnectionOpened.
func (rs *RolloutStats) ConnectionClosed() { rs.connections.Add(-1) }

// Connections returns the open client connections.
func (rs *RolloutStats) Connections() int64 { return rs.connections.Load() }

// AcceptError counts a failed accept on the rollout's listener.
func (rs *RolloutStats) AcceptError() { rs.acceptErrors.Add(1) }

// proxyErrorTotals returns the proxy errors per role, including those of
// removed versions.
func (rs *RolloutStats) proxyErrorTotals() map[spec.Role]*[numErrorKinds]uint64 {
	out := map[spec.Role]*[numErrorKinds]uint64{}
	rs.mu.Lock()
	for role, acc := range rs.retired {
		c := *acc
		out[role] = &c
	}
	set := rs.versions.Load()
	rs.mu.Unlock()
	for _, v := range set.list {
		acc := out[v.role]
		if acc == nil {
			acc = new([numErrorKinds]uint64)
			out[v.role] = acc
		}
		for i := range v.proxyErrors {
			acc[i] += v.proxyErrors[i].Load()
		}
	}
	return out
}
