package apitest

import (
	"context"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Replicas is three replicas as a server lists them at now, sorted by id:
// "serve-a" a live follower, "serve-b" the leader, "serve-c" gone for 47 s
// (its last heartbeat still reports an older weight of checkout).
func Replicas(now time.Time) []model.Replica {
	routes := func(checkoutVersion uint64, checkoutWeight spec.Weight) map[string]model.ReplicaRoute {
		return map[string]model.ReplicaRoute{
			"checkout": {Revision: 3, StateVersion: checkoutVersion, Weight: checkoutWeight},
			"payments": {Revision: 2, StateVersion: 9},
			"search":   {Revision: 1, StateVersion: 4},
		}
	}
	started := now.Add(-26 * time.Hour)
	return []model.Replica{
		{ID: "serve-a", Admin: "http://10.0.0.11:7070", Version: "v0.9.0", RouteRevision: 31, Routes: routes(18, 100),
			StartedAt: started, LastHeartbeat: now.Add(-1200 * time.Millisecond)},
		{ID: "serve-b", Leader: true, Admin: "http://10.0.0.12:7070", Version: "v0.9.0", RouteRevision: 31, Routes: routes(18, 100),
			StartedAt: started.Add(time.Minute), LastHeartbeat: now.Add(-400 * time.Millisecond)},
		{ID: "serve-c", Admin: "http://10.0.0.13:7070", Version: "v0.8.2", RouteRevision: 29, Routes: routes(16, 0),
			StartedAt: started.Add(-72 * time.Hour), LastHeartbeat: now.Add(-47 * time.Second), Gone: true},
	}
}

// ReplicasAt returns an api.Config.Replicas that lists Replicas(now()).
func ReplicasAt(now func() time.Time) func(context.Context) ([]model.Replica, error) {
	return func(context.Context) ([]model.Replica, error) { return Replicas(now()), nil }
}
