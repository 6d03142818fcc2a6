package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/cluster"
	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/rollout"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/teleshare"
)

// replicaSet is what a replica sharing a PostgreSQL store runs beside the
// proxy and the admin API (docs/architecture.md "High availability"): an
// elector, a heartbeat, the change feed, and the switch between leading
// (the controller, the notifier and the telemetry merger run) and
// following (the controller re-reads what the leader wrote).
type replicaSet struct {
	a      *App
	cfg    Config
	log    *slog.Logger
	shared store.Store // unfenced: elections, heartbeats, telemetry
	fenced *lease.FencedStore
	feed   store.ChangeFeed

	id       string
	adminURL string
	elector  *lease.Elector
	members  *cluster.Membership
	// merger keeps what it imported across leaderships, so a replica that
	// leads again imports only what happened in between.
	merger *teleshare.Merger

	leading atomic.Bool
	// loaded is set once this replica, leading, has loaded its files.
	loaded atomic.Bool
	// started is set once the replica served what the store holds.
	started atomic.Bool
	// fence is the epoch this replica leads under (roles goroutine only).
	fence store.Check
	// files are the -f files' objects, which this replica loads when it
	// takes over (SIGHUP replaces them).
	filesMu   sync.Mutex
	rollouts  []spec.Rollout
	templates []spec.AnalysisTemplate
	fencedCh  chan struct{} // a write was refused by a newer epoch
	mergeNow  chan struct{} // another replica published its telemetry
	// membersChanged: a heartbeat record changed (the change feed).
	membersChanged chan struct{}
	roleCh         chan lease.Status
	followCh       chan store.Change

	// replicas is the membership as last read; ReplicaRoutes and the
	// forwarding of commands read it.
	replicas  atomic.Pointer[[]model.Replica]
	electErr  atomic.Pointer[error]
	stop      context.CancelFunc
	done      sync.WaitGroup
	startedAt time.Time
}

// Intervals of a replica set. A dead leader is replaced within the lease
// time plus one renewal (6 s); a replica is shown as gone after three
// missed heartbeats.
const (
	heartbeatInterval = time.Second
	// takeoverTimeout bounds re-reading every rollout and loading the
	// files when this replica is elected (about a second for 1,000
	// rollouts); a store that hangs longer makes it follow again.
	takeoverTimeout = time.Minute
	forwardedHeader = "X-Coalmine-Forwarded-By"
	// abortBroadcastHeader marks an abort a replica sends to every other
	// while no leader can save it: apply it locally, send it nowhere.
	abortBroadcastHeader = "X-Coalmine-Abort-From"
)

func newReplicaSet(a *App, cfg Config, shared store.Store, fenced *lease.FencedStore) (*replicaSet, error) {
	id := cfg.ReplicaID
	if id == "" {
		id = defaultReplicaID(a.AdminAddr())
	}
	adminURL := cfg.AdvertiseAdmin
	if adminURL == "" {
		adminURL = advertisedAdmin(a.AdminAddr())
	}
	r := &replicaSet{a: a, cfg: cfg, rollouts: cfg.Rollouts, templates: cfg.Templates, log: cfg.Logger, shared: shared, fenced: fenced, id: id, adminURL: adminURL,
		fencedCh: make(chan struct{}, 1), mergeNow: make(chan struct{}, 1), membersChanged: make(chan struct{}, 1), roleCh: make(chan lease.Status, 1), followCh: make(chan store.Change, 1024),
		startedAt: time.Now()}
	if f, ok := shared.(store.ChangeFeed); ok {
		r.feed = f
	}
	r.elector = &lease.Elector{Store: shared, ID: id, TTL: cfg.LeaseTTL, OnLead: func(st lease.Status) { fenced.Extend(st.ExpiresAt) }}
	r.merger = &teleshare.Merger{Store: shared, ID: id, Registry: a.Telemetry, Logger: cfg.Logger}
	r.members = &cluster.Membership{Store: shared, Self: r.self, Interval: heartbeatInterval, Logger: cfg.Logger}
	fenced.Logger = cfg.Logger
	fenced.OnFenced = func() {
		select {
		case r.fencedCh <- struct{}{}:
		default:
		}
	}
	return r, nil
}

// defaultReplicaID names a replica by its host and admin port, unique
// among replicas as long as two on one host have different admin ports.
func defaultReplicaID(adminAddr string) string {
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(adminAddr)
	return host + "-" + port
}

// servedRoutes is what this process's data plane routes each rollout with,
// as its replica record reports it.
func servedRoutes(c *rollout.Controller) map[string]model.ReplicaRoute {
	routes := map[string]model.ReplicaRoute{}
	for _, s := range c.Served() {
		routes[s.Rollout] = model.ReplicaRoute{Revision: s.Revision, StateVersion: s.StateVersion, Weight: s.Weight}
	}
	return routes
}

// advertisedAdmin is the admin URL other replicas reach this one at: the
// bound address, with the host name for a wildcard address.
func advertisedAdmin(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// self is this replica's heartbeat record.
func (r *replicaSet) self() model.Replica {
	routes := servedRoutes(r.a.Controller)
	return model.Replica{ID: r.id, Admin: r.adminURL, Version: r.cfg.BuildVersion, RouteRevision: cluster.RouteRevision(routes), Routes: routes,
		StartedAt: r.startedAt, Leader: r.leading.Load()}
}

// start runs the replica's background work; stopReplicas ends it.
func (r *replicaSet) start() {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	r.run(ctx, func(ctx context.Context) {
		r.elector.Run(ctx, r.notifyRole, func(err error) {
			if prev := r.electErr.Swap(&err); prev == nil {
				r.log.Error("cannot reach the store for the leader election; a leader steps down when its lease runs out", "err", err)
			}
		})
	})
	r.run(ctx, r.members.Run)
	r.run(ctx, r.watchMembers)
	r.run(ctx, r.dispatchChanges)
	r.run(ctx, r.roles)
	r.run(ctx, r.deliverAborts)
	r.run(ctx, (&teleshare.Publisher{Store: r.shared, ID: r.id, Registry: r.a.Telemetry, Logger: r.log, Interval: publishInterval}).Run)
}

// notifyRole hands the elector's latest decision to the role switch
// without ever blocking the elector (which must keep renewing while a
// takeover runs): an older decision not yet taken is replaced.
func (r *replicaSet) notifyRole(st lease.Status) {
	for {
		select {
		case r.roleCh <- st:
			return
		default:
			select {
			case <-r.roleCh:
			default:
			}
		}
	}
}

func (r *replicaSet) run(ctx context.Context, fn func(context.Context)) {
	r.done.Add(1)
	go func() { defer r.done.Done(); fn(ctx) }()
}

// shutdown stops the background work and removes this replica's records,
// so that the others see it leave at once rather than after missed
// heartbeats. The lease is not released: it runs out, as after a crash.
func (r *replicaSet) shutdown(ctx context.Context) {
	r.stop()
	r.done.Wait()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = r.members.Remove(cctx)
	_ = teleshare.Remove(cctx, r.shared, r.id)
}

// roles switches between following and leading as the elector decides.
func (r *replicaSet) roles(ctx context.Context) {
	var stopRole context.CancelFunc
	var roleDone sync.WaitGroup
	end := func() {
		if stopRole != nil {
			stopRole()
			roleDone.Wait()
			stopRole = nil
		}
	}
	startRole := func(fn func(context.Context)) {
		rctx, cancel := context.WithCancel(ctx)
		stopRole = cancel
		roleDone.Add(1)
		go func() { defer roleDone.Done(); fn(rctx) }()
	}
	startRole(r.follow)
	defer end()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.fencedCh:
			r.elector.Resign()
			if r.leading.Load() {
				r.log.Error("this replica stops leading: its lease ran out or another replica holds it")
				end()
				r.stepDown()
				startRole(r.follow)
			}
		case st := <-r.roleCh:
			switch {
			case st.Leader && (!r.leading.Load() || st.Fence != r.fence):
				end()
				if r.leading.Load() {
					r.stepDown() // led under an older epoch: start afresh
				}
				tctx, cancel := context.WithTimeout(ctx, takeoverTimeout)
				err := r.takeOver(tctx, st)
				cancel()
				if err != nil {
					// Let the lease run out for another replica to take;
					// this one campaigns again after that.
					r.elector.StepAside(2 * lease.DefaultTTL)
					r.log.Error("taking over as leader failed; this replica follows and lets another lead", "err", err, "campaignsAgainIn", 2*lease.DefaultTTL)
					r.stepDown()
					startRole(r.follow)
					continue
				}
				startRole(r.lead)
			case !st.Leader && r.leading.Load():
				r.log.Warn("this replica lost the lease; it stops leading and follows", "holder", st.Holder, "epoch", st.Epoch)
				end()
				r.stepDown()
				startRole(r.follow)
			}
		}
	}
}

// takeOver makes this replica the leader: its writes carry the new fence,
// its entries are re-read (the last leader may have written until its
// lease ran out), and the configuration files are loaded as at a start.
func (r *replicaSet) takeOver(ctx context.Context, st lease.Status) error {
	// A refusal signalled in an earlier term is not about this one.
	select {
	case <-r.fencedCh:
	default:
	}
	// Notifications start from the stored cursors, as at a process start;
	// the takeover's Load sets every rollout's channels on the new one.
	r.a.notifiers.replace(notify.New(r.a.notifyCfg))
	r.fenced.Lead(st.Fence, st.ExpiresAt)
	r.fence = st.Fence
	r.leading.Store(true)
	r.log.Info("this replica leads now", "replica", r.id, "epoch", st.Epoch)
	if err := r.a.Controller.Refresh(ctx); err != nil {
		return err
	}
	r.filesMu.Lock()
	rollouts, templates := r.rollouts, r.templates
	r.filesMu.Unlock()
	if err := r.a.Controller.Load(ctx, rollouts, templates, true); err != nil {
		return fmt.Errorf("load the configuration files: %w", err)
	}
	r.loaded.Store(true)
	r.members.Poke()
	return nil
}

// starting says why this replica does not serve what the store holds
// yet, or nil once it does: it has read every rollout, and a leader (this
// replica, with its files loaded, or another) exists.
func (r *replicaSet) starting() error {
	if r.started.Load() {
		// Once serving, a replica stays ready through elections and
		// database outages (degraded says what is missing): taking every
		// replica out of a load balancer at once is never the answer.
		return nil
	}
	switch {
	case !r.a.Controller.Synced():
		return errors.New("starting: reading the rollouts from the store")
	case r.leading.Load() && !r.loaded.Load():
		return errors.New("starting: this replica was elected leader and is loading its files")
	case !r.leading.Load() && r.leader() == "" && r.electErr.Load() == nil:
		return errors.New("starting: waiting for a replica to be elected leader")
	}
	r.started.Store(true)
	return nil
}

// setFiles keeps the re-read -f files for the next takeover, and reports
// whether this replica leads, so they apply now.
func (r *replicaSet) setFiles(rollouts []spec.Rollout, templates []spec.AnalysisTemplate) bool {
	r.filesMu.Lock()
	r.rollouts, r.templates = rollouts, templates
	r.filesMu.Unlock()
	if !r.leading.Load() {
		r.log.Info("the files are kept for when this replica leads; the leader's files are in effect", "replica", r.id)
		return false
	}
	return true
}

func (r *replicaSet) stepDown() {
	r.fenced.Follow()
	r.leading.Store(false)
	r.loaded.Store(false)
	r.a.Controller.StepDown()
	r.members.Poke()
}

// lead runs what only the leader runs, until ctx ends.
func (r *replicaSet) lead(ctx context.Context) {
	var wg sync.WaitGroup
	for _, fn := range []func(context.Context){
		r.a.Controller.Run,
		func(ctx context.Context) {
			if err := r.a.notifiers.current().Run(ctx); err != nil && ctx.Err() == nil {
				r.log.Error("notification dispatcher stopped", "err", err)
			}
		},
		r.mergeTelemetry,
		r.prune,
	} {
		wg.Add(1)
		go func() { defer wg.Done(); fn(ctx) }()
	}
	wg.Wait()
}

// mergeTelemetry adds the other replicas' traffic to this (the leader's)
// registry as soon as one publishes (the change feed says so), at most
// every mergeSpacing, and at least every second (the feed is only a
// hint). A replica publishes every second, so the leader's picture lags by
// about a second instead of two.
func (r *replicaSet) mergeTelemetry(ctx context.Context) {
	t := time.NewTicker(teleshare.DefaultInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.mergeNow:
		}
		mctx, cancel := context.WithTimeout(ctx, teleshare.DefaultInterval)
		_, err := r.merger.Merge(mctx)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			r.log.Error("merging the other replicas' telemetry failed; the analysis sees only this replica's traffic until it works again", "err", err)
		case err == nil && failing:
			failing = false
			r.log.Info("merging the other replicas' telemetry works again")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(mergeSpacing):
		}
	}
}

// publishInterval is how often a replica publishes its telemetry: the
// leader merges it as soon as it lands, so the analysis sees a follower's
// traffic about half a second late (a judge needs a few seconds of a
// canary's traffic to decide, so this is a large share of a fast
// rollback). The price is a write of the replica's record twice a second
// (docs/benchmarks.md gives its size).
const publishInterval = 500 * time.Millisecond

// mergeSpacing keeps merges triggered by several replicas publishing at
// once from running back to back.
const mergeSpacing = 200 * time.Millisecond

// prune forgets replicas gone for an hour, now and then.
func (r *replicaSet) prune(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A replica gone for an hour takes its telemetry record
			// along (a live one's must stay: deleting it would import
			// its traffic twice).
			if list, err := r.members.List(ctx); err == nil {
				for _, rep := range list {
					if rep.Gone && time.Since(rep.LastHeartbeat) > time.Hour {
						_ = teleshare.Remove(ctx, r.shared, rep.ID)
					}
				}
			}
			_ = r.members.Prune(ctx, time.Hour)
		}
	}
}

// follow re-reads what the leader writes, until ctx ends.
func (r *replicaSet) follow(ctx context.Context) {
	// Changes queued while leading are stale; the first re-read covers them.
	for {
		select {
		case <-r.followCh:
			continue
		default:
		}
		break
	}
	r.a.Controller.Follow(ctx, r.followCh)
}

// dispatchChanges hands the change feed to whoever needs it: a follower's
// controller re-reads rollouts; the leader wakes rollouts waiting for the
// replicas to route with a new weight; everyone re-reads the membership
// when a heartbeat changes.
func (r *replicaSet) dispatchChanges(ctx context.Context) {
	if r.feed == nil {
		return
	}
	for ch := range r.feed.Changes(ctx) {
		if ch.Collection == teleshare.Collection && r.leading.Load() {
			select {
			case r.mergeNow <- struct{}{}:
			default:
			}
			continue
		}
		if ch.Resync || ch.Collection == cluster.Collection {
			// Re-read on the members' goroutine, gathering bursts: this
			// one must keep handing rollout changes to the follower.
			select {
			case r.membersChanged <- struct{}{}:
			default:
			}
		}
		if !r.leading.Load() {
			select {
			case r.followCh <- ch:
			default:
				// The follower is behind; its periodic re-read catches up.
			}
		}
	}
}

// watchMembers re-reads the membership every heartbeat interval (the
// feed only hastens it).
func (r *replicaSet) watchMembers(ctx context.Context) {
	t := time.NewTicker(heartbeatInterval)
	defer t.Stop()
	for {
		r.refreshMembers(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.membersChanged:
			if r.leading.Load() {
				r.refreshMembers(ctx)
				r.a.Controller.WakeWeightWaiters()
			}
			// A follower only shows the list; the next tick will do.
			select {
			case <-ctx.Done():
				return
			case <-time.After(membersGather):
			}
		}
	}
}

// membersGather spaces the re-reads of the replica list that heartbeats
// trigger, so a burst of them costs one read.
const membersGather = 20 * time.Millisecond

func (r *replicaSet) refreshMembers(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, heartbeatInterval)
	defer cancel()
	list, err := r.members.List(rctx)
	if err != nil {
		return
	}
	r.replicas.Store(&list)
	if r.electErr.Load() != nil {
		if _, err := r.shared.Get(rctx, lease.Collection, lease.LeaseKey); err == nil || errors.Is(err, store.ErrNotFound) {
			r.electErr.Store(nil)
		}
	}
}

// replicaRoutes is rollout.Config.ReplicaRoutes: what every other live
// replica routes the rollout with.
func (r *replicaSet) replicaRoutes(name string) []rollout.ReplicaRoute {
	p := r.replicas.Load()
	if p == nil {
		return nil
	}
	var out []rollout.ReplicaRoute
	for _, rep := range *p {
		if rep.ID == r.id || rep.Gone {
			continue
		}
		rt, ok := rep.Routes[name]
		out = append(out, rollout.ReplicaRoute{Replica: rep.ID, Known: ok, StateVersion: rt.StateVersion, Weight: rt.Weight})
	}
	return out
}

// leader is the admin URL of the replica that leads, or "".
func (r *replicaSet) leader() string {
	if p := r.replicas.Load(); p != nil {
		for _, rep := range *p {
			if rep.Leader && !rep.Gone && rep.ID != r.id {
				return rep.Admin
			}
		}
	}
	return ""
}

// degraded is rollout.Config.Degraded.
func (r *replicaSet) degraded() string {
	if p := r.electErr.Load(); p != nil {
		return fmt.Sprintf("the store is unreachable from this replica (%v): it keeps routing with the last state it read, and rollouts advance only while a replica that reaches the store leads", *p)
	}
	if r.leading.Load() || r.leader() != "" {
		return ""
	}
	ttl := r.elector.TTL
	if ttl <= 0 {
		ttl = lease.DefaultTTL
	}
	return "no replica leads right now (an election takes up to " + (ttl + lease.DefaultRenew).String() + "); rollouts advance again once one does"
}

// ready adds what keeps a replica from working fully to /readyz.
func (r *replicaSet) ready() error {
	var errs []error
	if !r.leading.Load() {
		if err := r.a.Controller.FollowError(); err != nil {
			errs = append(errs, fmt.Errorf("cannot read the store, so this replica routes with the last state it read: %w", err))
		}
	}
	if d := r.degraded(); d != "" {
		errs = append(errs, errors.New(d))
	}
	return errors.Join(errs...)
}

// forward sends the commands (every /api/ request that is not a read) a
// follower receives to the leader, so that a command sent to any replica
// takes effect once; reads are answered from this replica's own copy.
//
// Abort is the emergency button, and must reach the data plane even when
// no leader can save it (the store is unreachable, or no replica leads
// for the seconds of an election): then the replica aborts in its own data
// plane, sends the abort to every other replica it knows, which do the
// same, and each hands it to the leader once there is one
// (deliverAborts). Requests are authenticated by the API handler (next)
// of each replica that carries them out, never by this wrapper.
func (r *replicaSet) forward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		read := req.Method == http.MethodGet || req.Method == http.MethodHead
		// The dashboard's charts read the traffic series, which only the
		// leader holds for all replicas (a follower's are its own).
		series := read && strings.HasSuffix(req.URL.Path, "/series") && req.Header.Get(forwardedHeader) == ""
		if r.leading.Load() || !strings.HasPrefix(req.URL.Path, "/api/") || (read && !series) {
			next.ServeHTTP(w, req)
			return
		}
		if series {
			if leader := r.leader(); leader != "" {
				r.proxyTo(w, req, leader, nil)
				return
			}
			next.ServeHTTP(w, req) // no leader: this replica's own traffic is better than nothing
			return
		}
		abort := req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/abort")
		if abort {
			// An abort may be carried out here after an attempt to
			// forward it read its body: keep the (small) body to replay.
			body, err := io.ReadAll(io.LimitReader(req.Body, maxAbortBody))
			if err != nil {
				writeError(w, http.StatusBadRequest, "read the request body: "+err.Error())
				return
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		if abort && req.Header.Get(abortBroadcastHeader) != "" {
			next.ServeHTTP(w, req) // a peer's abort without a leader: apply it here only
			return
		}
		if by := req.Header.Get(forwardedHeader); by != "" {
			if abort {
				// Sent here as to the leader, but this replica does not
				// lead (any more): every data plane must have it now.
				r.abortEverywhere(w, req, next)
				return
			}
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("replica %s forwarded this command here, but this replica does not lead (leadership is changing); send it again in a few seconds", by))
			return
		}
		leader := r.leader()
		if abort && (leader == "" || r.electErr.Load() != nil) {
			r.abortEverywhere(w, req, next)
			return
		}
		if leader == "" {
			msg := "no replica leads right now (an election takes a few seconds), so the command cannot be carried out; send it again in a few seconds"
			if p := r.electErr.Load(); p != nil {
				msg = fmt.Sprintf("this replica cannot reach the store (%v), so it cannot tell which replica leads nor forward the command there; send it to another replica, or to this one again once it reaches the store", *p)
			}
			writeError(w, http.StatusServiceUnavailable, msg)
			return
		}
		var onFail func(http.ResponseWriter, *http.Request)
		if abort {
			onFail = func(w http.ResponseWriter, req *http.Request) { r.abortEverywhere(w, req, next) }
		}
		r.proxyTo(w, req, leader, onFail)
	})
}

// proxyTo sends req to the leader's admin API as it came (its token
// included: the leader authenticates it). onFail, when set, answers
// instead when the leader cannot be reached.
func (r *replicaSet) proxyTo(w http.ResponseWriter, req *http.Request, leader string, onFail func(http.ResponseWriter, *http.Request)) {
	target, err := url.Parse(leader)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the leader's admin URL %q is not valid: %v", leader, err))
		return
	}
	transport := leaderTransport
	if onFail != nil {
		transport = abortTransport // the emergency button waits the least
	}
	proxy := &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(forwardedHeader, r.id)
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			if onFail != nil {
				onFail(w, req)
				return
			}
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the leader at %s cannot be reached to carry out the request (%v); send it again in a few seconds", leader, err))
		},
	}
	proxy.ServeHTTP(w, req)
}

// abortEverywhere aborts in this replica's data plane (next: the API, which
// authenticates the request) and sends the same request to every other
// replica known, at once and in parallel, so that every data plane stops
// sending users to the canary without waiting for the store.
func (r *replicaSet) abortEverywhere(w http.ResponseWriter, req *http.Request, next http.Handler) {
	if req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			req.Body = body
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, req)
	if rec.status >= 300 {
		return // refused here (a bad token, an unknown rollout): not sent on
	}
	var peers []string
	if p := r.replicas.Load(); p != nil {
		for _, rep := range *p {
			if rep.ID != r.id && !rep.Gone {
				peers = append(peers, rep.Admin)
			}
		}
	}
	var wg sync.WaitGroup
	var reached atomic.Int32
	for _, peer := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			out, err := http.NewRequestWithContext(ctx, http.MethodPost, peer+req.URL.Path, nil)
			if err != nil {
				return
			}
			if auth := req.Header.Get("Authorization"); auth != "" {
				out.Header.Set("Authorization", auth)
			}
			out.Header.Set(abortBroadcastHeader, r.id)
			resp, err := peerClient.Do(out)
			if err != nil {
				r.log.Warn("could not send the abort to a replica", "replica", peer, "err", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode < 300 {
				reached.Add(1)
			}
		}()
	}
	wg.Wait()
	r.log.Warn("abort applied without a leader to save it: in effect in this replica's data plane and sent to the others; it is saved once a replica leads",
		"path", req.URL.Path, "replicasReached", reached.Load(), "replicasKnown", len(peers))
}

// statusRecorder remembers the status code written through it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

var peerClient = &http.Client{Timeout: time.Second}

// leaderTransport carries requests forwarded to the leader. A leader that
// is frozen (paused, its machine hung) still has its kernel accept
// connections, so without a deadline on the answer a forwarded command
// would hang; after forwardTimeout it fails (an abort then goes to every
// replica's data plane instead).
var leaderTransport = &http.Transport{
	DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
	ResponseHeaderTimeout: forwardTimeout,
	MaxIdleConnsPerHost:   8,
	IdleConnTimeout:       time.Minute,
}

// abortTransport carries aborts to the leader: after a second without an
// answer the abort goes to every replica's data plane instead.
var abortTransport = &http.Transport{
	DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
	ResponseHeaderTimeout: time.Second,
	MaxIdleConnsPerHost:   8,
	IdleConnTimeout:       time.Minute,
}

// maxAbortBody bounds the body of an abort kept for a replay (an abort
// has none, or a few bytes of JSON).
const maxAbortBody = 64 << 10

// forwardTimeout bounds the leader's answer to a forwarded request; every
// command's own work (one commit) takes milliseconds.
const forwardTimeout = 3 * time.Second

// deliverAborts hands the aborts this replica applied without the store
// to the leader, every second, until the leader has answered for each.
func (r *replicaSet) deliverAborts(ctx context.Context) {
	// handed: when each abort was last handed to a leader; it is sent
	// again if the store still lacks it 10 s later (that leader died).
	handed := map[string]time.Time{}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.leading.Load() {
			continue // the controller saves its own (Reconcile retries)
		}
		leader := r.leader()
		if leader == "" {
			continue
		}
		pending := r.a.Controller.UnsavedAborts()
		for name := range handed {
			if !slices.Contains(pending, name) {
				delete(handed, name)
			}
		}
		for _, name := range pending {
			if at, ok := handed[name]; ok && time.Since(at) < 10*time.Second {
				continue
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, leader+"/api/v1/rollouts/"+url.PathEscape(name)+"/abort", nil)
			if err != nil {
				continue
			}
			if r.cfg.Token != "" {
				req.Header.Set("Authorization", "Bearer "+r.cfg.Token)
			}
			req.Header.Set(forwardedHeader, r.id)
			resp, err := peerClient.Do(req)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				continue
			}
			// The abort stays in effect here until a re-read shows the
			// store has it (or the rollout moved on), never on the word
			// of an answer alone.
			handed[name] = time.Now()
			if resp.StatusCode >= 300 {
				r.log.Error("the leader refused the abort this replica applied without the store; it stays in effect on this replica until the rollout moves on",
					"rollout", name, "leader", leader, "answer", resp.StatusCode)
				continue
			}
			r.log.Info("handed the leader the abort this replica applied without the store", "rollout", name, "leader", leader)
		}
	}
}

// writeError answers with the admin API's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(api.ErrorBody{Error: msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
