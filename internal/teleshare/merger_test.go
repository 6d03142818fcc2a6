package teleshare

import (
	"sync"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// clock is a fake time source moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func newClock() *clock { return &clock{t: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// replica is one process's registry with its clock.
type replica struct {
	id, incarnation string
	reg             *telemetry.Registry
	clk             *clock
}

func newReplica(id string, clk *clock) *replica {
	return &replica{id: id, incarnation: id + "-1", reg: telemetry.NewRegistry(telemetry.Options{Now: clk.Now}), clk: clk}
}

// serve records n requests to a version: one in ten a 500, latencies
// spread over a few milliseconds.
func (r *replica) serve(rollout string, role spec.Role, version string, n int) {
	v := r.reg.Rollout(rollout).Version(role, version)
	for i := range n {
		code := 200
		if i%10 == 9 {
			code = 500
		}
		v.Observe(code, time.Duration(1+i%5)*time.Millisecond)
	}
}

func (r *replica) report() Report {
	return Snapshot(r.reg, r.id, r.incarnation, r.clk.Now())
}

// requests is the leader's since-revision count for a version.
func requests(reg *telemetry.Registry, rollout string, role spec.Role, version string) int64 {
	rs, ok := reg.Lookup(rollout)
	if !ok {
		return 0
	}
	for _, v := range rs.Versions() {
		if v.Role() == role && v.Version() == version {
			return v.Summary(0).Requests
		}
	}
	return 0
}

// routes creates the versions the leader's proxy would: those it routes.
func routes(r *replica, rollout string) {
	r.reg.Rollout(rollout).Version(canary, "v2")
	r.reg.Rollout(rollout).Version(stable, "v1")
}

// setup returns a leader registry and a merger on it, and a follower, both
// at revision 1 of rollout "shop".
func setup(t *testing.T) (*clock, *replica, *Merger, *replica) {
	t.Helper()
	clk := newClock()
	leader, follower := newReplica("a", clk), newReplica("b", clk)
	leader.reg.Rollout("shop").StartRevision(1)
	follower.reg.Rollout("shop").StartRevision(1)
	routes(leader, "shop")
	return clk, leader, &Merger{ID: "a", Registry: leader.reg, Now: clk.Now}, follower
}

const canary, stable = spec.RoleCanary, spec.RoleStable

func TestFirstSightThenDeltas(t *testing.T) {
	clk, leader, m, follower := setup(t)
	leader.serve("shop", canary, "v2", 5)
	follower.serve("shop", canary, "v2", 30)
	follower.serve("shop", stable, "v1", 70)

	// First sight: the whole since-revision total of the follower.
	res := m.Step([]Report{follower.report()})
	if res.Imported != 2 || res.Requests != 100 {
		t.Errorf("first step: %+v; want 2 deltas, 100 requests", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 35 {
		t.Errorf("leader canary = %d, want 5 own + 30", got)
	}
	if got := requests(leader.reg, "shop", stable, "v1"); got != 70 {
		t.Errorf("leader stable = %d, want 70", got)
	}
	// The same report again adds nothing.
	if res := m.Step([]Report{follower.report()}); res.Imported != 0 {
		t.Errorf("repeated report imported %+v", res)
	}
	// Then only what is new.
	clk.Advance(time.Second)
	follower.serve("shop", canary, "v2", 4)
	res = m.Step([]Report{follower.report()})
	if res.Imported != 1 || res.Requests != 4 {
		t.Errorf("second step: %+v; want 1 delta, 4 requests", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 39 {
		t.Errorf("leader canary = %d, want 39", got)
	}
	// Errors and latencies came along.
	s := leader.reg.Rollout("shop").Version(canary, "v2").Summary(0)
	if s.Errors != 3 || s.Histogram.Count() != 39 {
		t.Errorf("leader canary: %d errors, %d latencies; want 3, 39", s.Errors, s.Histogram.Count())
	}
}

func TestOwnRecordIsSkipped(t *testing.T) {
	_, leader, m, _ := setup(t)
	leader.serve("shop", canary, "v2", 5)
	if res := m.Step([]Report{leader.report()}); res.Imported != 0 {
		t.Errorf("own report imported: %+v", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 5 {
		t.Errorf("leader canary = %d, want its own 5", got)
	}
}

func TestRestartIsANewSource(t *testing.T) {
	_, leader, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 50)
	m.Step([]Report{follower.report()})

	// The follower restarts: fewer requests, a new incarnation. They are
	// new traffic, not counters going backwards.
	restarted := newReplica("b", follower.clk)
	restarted.incarnation = "b-2"
	restarted.reg.Rollout("shop").StartRevision(1)
	restarted.serve("shop", canary, "v2", 8)
	res := m.Step([]Report{restarted.report()})
	if res.Requests != 8 || res.Reset != 0 {
		t.Errorf("after restart: %+v; want 8 requests imported, no reset", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 58 {
		t.Errorf("leader canary = %d, want 58", got)
	}
}

func TestCountersGoingBackwardsBecomeTheBaseline(t *testing.T) {
	_, leader, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 50)
	m.Step([]Report{follower.report()})

	// Same incarnation, lower counters: the version was removed and
	// created again on the follower. Nothing is imported...
	follower.reg.Rollout("shop").RemoveVersion(canary, "v2")
	follower.serve("shop", canary, "v2", 3)
	res := m.Step([]Report{follower.report()})
	if res.Reset != 1 || res.Imported != 0 {
		t.Errorf("backwards: %+v; want one reset, nothing imported", res)
	}
	// ...and later deltas count from the new baseline.
	follower.serve("shop", canary, "v2", 6)
	if res := m.Step([]Report{follower.report()}); res.Requests != 6 {
		t.Errorf("after the reset: %+v; want 6 requests", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 56 {
		t.Errorf("leader canary = %d, want 56", got)
	}
}

func TestOnlyTheLeadersRevisionIsImported(t *testing.T) {
	clk, leader, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 10)
	m.Step([]Report{follower.report()})

	// The leader starts revision 2; the follower still serves revision 1
	// for a moment: that traffic belongs to a revision that is over.
	clk.Advance(time.Second)
	leader.reg.Rollout("shop").StartRevision(2)
	follower.serve("shop", canary, "v2", 7)
	res := m.Step([]Report{follower.report()})
	if res.Refused != 1 || res.Imported != 0 {
		t.Errorf("old revision: %+v; want one delta refused", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 0 {
		t.Errorf("leader canary in revision 2 = %d, want 0", got)
	}
	// The follower follows: its revision 2 is new, imported in full.
	clk.Advance(time.Second)
	follower.reg.Rollout("shop").StartRevision(2)
	follower.serve("shop", canary, "v2", 4)
	if res := m.Step([]Report{follower.report()}); res.Requests != 4 {
		t.Errorf("new revision: %+v; want 4 requests", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 4 {
		t.Errorf("leader canary in revision 2 = %d, want 4", got)
	}
}

func TestFollowerAheadIsNotCountedTwice(t *testing.T) {
	clk, leader, m, follower := setup(t)
	// The follower is in revision 2 before the leader (a leader still
	// loading): its counts become the baseline, not imported.
	follower.reg.Rollout("shop").StartRevision(2)
	follower.serve("shop", canary, "v2", 10)
	if res := m.Step([]Report{follower.report()}); res.Refused != 1 {
		t.Errorf("ahead: %+v; want one delta refused", res)
	}
	clk.Advance(time.Second)
	leader.reg.Rollout("shop").StartRevision(2)
	follower.serve("shop", canary, "v2", 3)
	m.Step([]Report{follower.report()})
	m.Step([]Report{follower.report()})
	if got := requests(leader.reg, "shop", canary, "v2"); got != 3 {
		t.Errorf("leader canary = %d, want the 3 served after the leader started revision 2", got)
	}
}

func TestARestartedWindowOfTheSameRevisionIsNew(t *testing.T) {
	clk, leader, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 40)
	m.Step([]Report{follower.report()})

	// A completion restarts the window and keeps the revision, on the
	// leader first, then on the follower.
	clk.Advance(time.Second)
	leader.reg.Rollout("shop").StartRevision(1)
	clk.Advance(time.Second)
	follower.reg.Rollout("shop").StartRevision(1)
	follower.serve("shop", canary, "v2", 2)
	res := m.Step([]Report{follower.report()})
	if res.Requests != 2 || res.Reset != 0 {
		t.Errorf("new window: %+v; want 2 requests, no reset", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 2 {
		t.Errorf("leader canary = %d, want 2", got)
	}
}

func TestAVersionRemovedHereIsNotBroughtBack(t *testing.T) {
	clk, leader, m, follower := setup(t)
	follower.serve("shop", stable, "v1", 40)
	m.Step([]Report{follower.report()})

	// A completion: the leader restarts the window of revision 1 and
	// forgets the old stable v1; the follower has not caught up and still
	// reports v1 in revision 1.
	clk.Advance(time.Second)
	leader.reg.Rollout("shop").StartRevision(1)
	leader.reg.Rollout("shop").RemoveVersion(stable, "v1")
	follower.serve("shop", stable, "v1", 5)
	if res := m.Step([]Report{follower.report()}); res.Refused != 1 || res.Imported != 0 {
		t.Errorf("old stable after completion: %+v; want one delta refused", res)
	}
	for _, v := range leader.reg.Rollout("shop").Versions() {
		if v.Role() == stable && v.Version() == "v1" {
			t.Errorf("the merger brought the removed stable v1 back")
		}
	}
}

func TestStaleReportsAreSkippedAndResumed(t *testing.T) {
	clk, leader, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 10)
	m.Step([]Report{follower.report()})

	follower.serve("shop", canary, "v2", 5)
	stale := follower.report()
	clk.Advance(MaxReportAge + time.Second)
	res := m.Step([]Report{stale})
	if len(res.Stale) != 1 || res.Stale[0] != "b" || res.Imported != 0 {
		t.Errorf("stale: %+v; want replica b stale, nothing imported", res)
	}
	// The replica comes back (same process): only what is new since the
	// last import, not its whole revision again.
	if res := m.Step([]Report{follower.report()}); res.Requests != 5 {
		t.Errorf("back: %+v; want the 5 new requests", res)
	}
	if got := requests(leader.reg, "shop", canary, "v2"); got != 15 {
		t.Errorf("leader canary = %d, want 15", got)
	}
}

func TestRemovedReplicaIsForgotten(t *testing.T) {
	_, _, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 10)
	m.Step([]Report{follower.report()})
	m.Step(nil)
	if len(m.sources) != 0 {
		t.Errorf("%d sources remembered after the record went away", len(m.sources))
	}
}

func TestUnreadableRecordKeepsWhatWasMerged(t *testing.T) {
	_, leader, m, follower := setup(t)
	follower.serve("shop", canary, "v2", 10)
	m.Step([]Report{follower.report()})
	m.Step([]Report{{Replica: "b", unreadable: true}})
	follower.serve("shop", canary, "v2", 1)
	m.Step([]Report{follower.report()})
	if got := requests(leader.reg, "shop", canary, "v2"); got != 11 {
		t.Errorf("leader canary = %d, want 11 (an unreadable record must not reset the baseline)", got)
	}
}

func TestUnknownRolloutWaits(t *testing.T) {
	clk := newClock()
	leader, follower := newReplica("a", clk), newReplica("b", clk)
	m := &Merger{ID: "a", Registry: leader.reg, Now: clk.Now}
	follower.serve("cart", canary, "v2", 9)
	m.Step([]Report{follower.report()})
	if _, ok := leader.reg.Lookup("cart"); ok {
		t.Errorf("the merger created a rollout the leader does not serve")
	}
	// Once the leader serves it, the whole revision comes in.
	routes(leader, "cart")
	m.Step([]Report{follower.report()})
	if got := requests(leader.reg, "cart", canary, "v2"); got != 9 {
		t.Errorf("leader canary = %d, want 9", got)
	}
}

// TestLeadershipMoves: a leads, then b, then a again. Every leader's
// registry ends with everybody's traffic, nothing twice.
func TestLeadershipMoves(t *testing.T) {
	clk := newClock()
	a, b := newReplica("a", clk), newReplica("b", clk)
	routes(a, "shop")
	routes(b, "shop")
	ma := &Merger{ID: "a", Registry: a.reg, Now: clk.Now}
	mb := &Merger{ID: "b", Registry: b.reg, Now: clk.Now}

	a.serve("shop", canary, "v2", 10)
	b.serve("shop", canary, "v2", 20)
	ma.Step([]Report{a.report(), b.report()}) // a leads
	if got := requests(a.reg, "shop", canary, "v2"); got != 30 {
		t.Fatalf("a leading = %d, want 30", got)
	}
	// a's report carries only its own 10, so b as leader does not count
	// b's 20 twice.
	clk.Advance(time.Second)
	a.serve("shop", canary, "v2", 1)
	b.serve("shop", canary, "v2", 2)
	mb.Step([]Report{a.report(), b.report()})
	if got := requests(b.reg, "shop", canary, "v2"); got != 33 {
		t.Errorf("b leading = %d, want 33", got)
	}
	// a leads again with the same Merger: only what happened meanwhile.
	clk.Advance(time.Second)
	b.serve("shop", canary, "v2", 4)
	ma.Step([]Report{a.report(), b.report()})
	if got := requests(a.reg, "shop", canary, "v2"); got != 37 {
		t.Errorf("a leading again = %d, want 37", got)
	}
}
