// Package cluster is the replica registry of issue 12 (docs/architecture.md
// "High availability"): every `coalmine serve` sharing a store keeps a
// heartbeat record of its own in the collection Collection, saying who it
// is, where its admin API listens and which routing it serves. Reading the
// records back, with the lease record, tells who leads, who is live and
// who is gone.
//
// The decisions (gone, leader, prune, which replicas lag a routing change)
// are pure functions of the records and a clock; Membership is the thin
// loop that writes this replica's record and reads everyone's.
package cluster

import (
	"slices"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/model"
)

// Collection holds one record per replica, keyed by replica id: the JSON
// of model.Replica without Leader and Gone, which depend on who reads and
// when.
const Collection = "replicas"

// Defaults. Three missed heartbeats make a replica gone: one late beat (a
// GC pause, a slow commit) must not flap it.
const (
	DefaultInterval = time.Second
	// GoneAfterBeats times the interval is the default GoneAfter.
	GoneAfterBeats = 3
)

// IsGone reports whether a replica whose last heartbeat is last counts as
// gone at now. A heartbeat from the future (a replica whose clock runs
// ahead) is live.
func IsGone(last, now time.Time, goneAfter time.Duration) bool {
	return now.Sub(last) > goneAfter
}

// IsLeader reports whether replica r leads at now according to the lease
// record l (nil: nobody ever took it). A replica leads while it holds an
// unexpired lease and is itself live: a gone holder's lease is about to
// expire, and calling it leader would point operators at a dead process.
func IsLeader(r model.Replica, l *lease.State, now time.Time) bool {
	return l != nil && l.Holder != "" && l.Holder == r.ID && now.Before(l.ExpiresAt) && !r.Gone
}

// Annotate returns the replicas sorted by id, with Gone and Leader worked
// out at now. It does not change its argument.
func Annotate(replicas []model.Replica, l *lease.State, now time.Time, goneAfter time.Duration) []model.Replica {
	out := slices.Clone(replicas)
	slices.SortFunc(out, func(a, b model.Replica) int { return strings.Compare(a.ID, b.ID) })
	for i := range out {
		out[i].Gone = IsGone(out[i].LastHeartbeat, now, goneAfter)
		out[i].Leader = IsLeader(out[i], l, now)
	}
	return out
}

// PruneDue reports whether the record of a replica last heard from at last
// has been gone for longer than olderThan at now, so that it can be
// deleted: it became gone at last+goneAfter.
func PruneDue(last, now time.Time, goneAfter, olderThan time.Duration) bool {
	return now.Sub(last) > goneAfter+olderThan
}

// RouteRevision is the model.Replica.RouteRevision of a replica routing
// with routes: the sum of the rollout-state versions. Store versions only
// grow, so the sum grows with every routing change applied, and replicas
// that applied the same changes report the same number.
func RouteRevision(routes map[string]model.ReplicaRoute) uint64 {
	var sum uint64
	for _, r := range routes {
		sum += r.StateVersion
	}
	return sum
}

// Lagging returns, sorted, the ids of the live replicas that do not yet
// route rollout with want's revision and weight; the leader completes a
// setWeight step only when none is left. Gone replicas are skipped: they
// serve no traffic anyone can see, and waiting for them would stall every
// rollout on one dead process.
func Lagging(replicas []model.Replica, rollout string, want model.ReplicaRoute) []string {
	var ids []string
	for _, r := range replicas {
		if r.Gone {
			continue
		}
		got, ok := r.Routes[rollout]
		if !ok || got.Revision != want.Revision || got.Weight != want.Weight {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}
