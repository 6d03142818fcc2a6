// Package lease elects one leader among coalmine replicas through the
// store (issue 12, docs/architecture.md "High availability"). The lease is
// a record renewed by compare-and-swap; a replica takes it over once it
// has expired. Taking it over increments an epoch, kept in a record of its
// own, whose version the leader asserts in every batch it commits
// (store.Check): a leader that lost its lease, paused or partitioned, can
// no longer write anything, even before it notices. Safety rests only on
// the store's compare-and-swap; clocks decide how soon a dead leader is
// replaced, never whether two leaders can both write.
//
// Decide is pure; Elector is the thin loop that reads and writes the
// store.
package lease

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/coalmine-dev/coalmine/internal/store"
)

// Records of the lease, in the store collection Collection.
const (
	Collection = "leases"
	// LeaseKey holds State; it changes at every renewal.
	LeaseKey = "controller"
	// EpochKey changes only when leadership changes; its version is the
	// fencing token.
	EpochKey = "controller-epoch"
)

// State is the lease record.
type State struct {
	Holder    string    `json:"holder"`
	Epoch     uint64    `json:"epoch"`
	RenewedAt time.Time `json:"renewedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// Action is what Decide asks the elector to do.
type Action int

const (
	// Wait: another replica holds a valid lease.
	Wait Action = iota
	// Renew: this replica holds the lease; extend it.
	Renew
	// Acquire: the lease is free or expired; take it with the next epoch.
	Acquire
)

func (a Action) String() string {
	return [...]string{"wait", "renew", "acquire"}[a]
}

// Decide says what replica me does with the lease cur (nil: never taken)
// at now. A lease expires at ExpiresAt as seen by now's clock; replicas'
// clocks need only agree within a fraction of the lease time, and even
// when they do not, the epoch fence keeps a second leader from writing.
func Decide(cur *State, me string, now time.Time) Action {
	switch {
	case cur == nil || cur.Holder == "":
		return Acquire
	case cur.Holder == me && now.Before(cur.ExpiresAt):
		return Renew
	case !now.Before(cur.ExpiresAt):
		return Acquire
	}
	return Wait
}

// Next returns the lease me writes for action at now, lasting ttl.
func Next(cur *State, action Action, me string, now time.Time, ttl time.Duration) State {
	next := State{Holder: me, RenewedAt: now, ExpiresAt: now.Add(ttl)}
	if cur != nil {
		next.Epoch = cur.Epoch
	}
	if action == Acquire {
		next.Epoch++
	}
	return next
}

// Fence is what a leader asserts in its batches: the epoch record at the
// version it had when this leader took the lease.
func Fence(epochVersion uint64) store.Check {
	return store.Check{Collection: Collection, Key: EpochKey, Version: epochVersion}
}

func decodeState(r store.Record) (*State, error) {
	var s State
	if err := json.Unmarshal(r.Data, &s); err != nil {
		return nil, fmt.Errorf("read lease %s/%s: %w", Collection, LeaseKey, err)
	}
	return &s, nil
}
