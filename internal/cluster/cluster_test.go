package cluster_test

import (
	"slices"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/cluster"
	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/model"
)

var t0 = time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)

func TestIsGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		last time.Time
		want bool
	}{
		{"just beat", t0, false},
		{"one beat late", t0.Add(-2 * time.Second), false},
		{"exactly at the limit", t0.Add(-3 * time.Second), false},
		{"past the limit", t0.Add(-3*time.Second - time.Millisecond), true},
		{"clock ahead of ours", t0.Add(time.Minute), false},
		{"never beat", time.Time{}, true},
	} {
		if got := cluster.IsGone(tc.last, t0, 3*time.Second); got != tc.want {
			t.Errorf("%s: IsGone = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestIsLeader(t *testing.T) {
	held := &lease.State{Holder: "a", Epoch: 2, ExpiresAt: t0.Add(5 * time.Second)}
	for _, tc := range []struct {
		name  string
		r     model.Replica
		lease *lease.State
		now   time.Time
		want  bool
	}{
		{"holder of a valid lease", model.Replica{ID: "a"}, held, t0, true},
		{"another replica", model.Replica{ID: "b"}, held, t0, false},
		{"no lease record", model.Replica{ID: "a"}, nil, t0, false},
		{"lease without holder", model.Replica{ID: ""}, &lease.State{ExpiresAt: t0.Add(time.Hour)}, t0, false},
		{"expired lease", model.Replica{ID: "a"}, held, t0.Add(5 * time.Second), false},
		{"holder gone", model.Replica{ID: "a", Gone: true}, held, t0, false},
	} {
		if got := cluster.IsLeader(tc.r, tc.lease, tc.now); got != tc.want {
			t.Errorf("%s: IsLeader = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAnnotate(t *testing.T) {
	in := []model.Replica{
		{ID: "c", LastHeartbeat: t0.Add(-10 * time.Second)},
		{ID: "a", LastHeartbeat: t0, Leader: true, Gone: true}, // stale flags are recomputed
		{ID: "b", LastHeartbeat: t0.Add(-time.Second)},
	}
	l := &lease.State{Holder: "b", ExpiresAt: t0.Add(4 * time.Second)}
	got := cluster.Annotate(in, l, t0, 3*time.Second)
	type flags struct {
		id           string
		leader, gone bool
	}
	var gotFlags []flags
	for _, r := range got {
		gotFlags = append(gotFlags, flags{r.ID, r.Leader, r.Gone})
	}
	want := []flags{{"a", false, false}, {"b", true, false}, {"c", false, true}}
	if !slices.Equal(gotFlags, want) {
		t.Errorf("Annotate = %+v, want %+v", gotFlags, want)
	}
	if in[0].ID != "c" || !in[1].Gone {
		t.Errorf("Annotate changed its argument: %+v", in)
	}
}

func TestPruneDue(t *testing.T) {
	const goneAfter, olderThan = 3 * time.Second, time.Hour
	for _, tc := range []struct {
		name string
		last time.Time
		want bool
	}{
		{"live", t0, false},
		{"gone for a minute", t0.Add(-time.Minute), false},
		{"gone for exactly the limit", t0.Add(-goneAfter - olderThan), false},
		{"gone for longer", t0.Add(-goneAfter - olderThan - time.Second), true},
	} {
		if got := cluster.PruneDue(tc.last, t0, goneAfter, olderThan); got != tc.want {
			t.Errorf("%s: PruneDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRouteRevision(t *testing.T) {
	if got := cluster.RouteRevision(nil); got != 0 {
		t.Errorf("no routes: %d, want 0", got)
	}
	routes := map[string]model.ReplicaRoute{
		"checkout": {Revision: 3, StateVersion: 17, Weight: 500},
		"search":   {Revision: 1, StateVersion: 4},
	}
	if got := cluster.RouteRevision(routes); got != 21 {
		t.Errorf("RouteRevision = %d, want 21", got)
	}
}

func TestLagging(t *testing.T) {
	want := model.ReplicaRoute{Revision: 3, StateVersion: 17, Weight: 1000}
	replicas := []model.Replica{
		{ID: "d", Routes: map[string]model.ReplicaRoute{"checkout": {Revision: 3, StateVersion: 16, Weight: 500}}},  // old weight
		{ID: "a", Routes: map[string]model.ReplicaRoute{"checkout": {Revision: 3, StateVersion: 17, Weight: 1000}}}, // up to date
		{ID: "b", Routes: map[string]model.ReplicaRoute{"checkout": {Revision: 3, StateVersion: 19, Weight: 1000}}}, // a later version, same routing
		{ID: "c", Routes: map[string]model.ReplicaRoute{"search": {Revision: 1}}},                                   // does not route it yet
		{ID: "e", Routes: map[string]model.ReplicaRoute{"checkout": {Revision: 2, Weight: 1000}}},                   // old revision
		{ID: "f", Gone: true}, // gone: not waited for
	}
	if got := cluster.Lagging(replicas, "checkout", want); !slices.Equal(got, []string{"c", "d", "e"}) {
		t.Errorf("Lagging = %v, want [c d e]", got)
	}
}
