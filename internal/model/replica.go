package model

import (
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Replica is one `coalmine serve` process sharing the store (issue 12):
// what it registered in its heartbeat record, with Leader and Gone worked
// out by the server that answers GET /api/v1/replicas.
type Replica struct {
	ID     string `json:"id"`
	Leader bool   `json:"leader"`
	// Admin is the replica's admin URL, e.g. http://127.0.0.1:7070.
	Admin string `json:"admin"`
	// Version is the build version of its binary.
	Version string `json:"version"`
	// RouteRevision is the sum of the rollout-state versions it routes
	// with: it grows with every routing change the replica applies, so a
	// replica below the others has not applied the latest changes yet.
	RouteRevision uint64                  `json:"routeRevision"`
	Routes        map[string]ReplicaRoute `json:"routes,omitempty"`
	StartedAt     time.Time               `json:"startedAt"`
	LastHeartbeat time.Time               `json:"lastHeartbeat"`
	// Gone is true once the replica has missed its heartbeats for longer
	// than the server's limit (3 s by default): it stopped, crashed or
	// cannot reach the store.
	Gone bool `json:"gone"`
}

// ReplicaRoute is what one replica's data plane routes a rollout with.
type ReplicaRoute struct {
	Revision int64 `json:"revision"`
	// StateVersion is the store version of the rollout-state record it
	// serves.
	StateVersion uint64 `json:"stateVersion"`
	// Weight is the canary weight its proxy routes with, in basis points.
	Weight spec.Weight `json:"weight"`
}
