// Package app assembles a running coalmine from its parts: the store, the
// telemetry registry, the proxy, the rollout manager and the admin API. It
// is the composition root shared by `coalmine serve` and `coalmine demo`, so
// both run exactly the same components.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coalmine-dev/coalmine/internal/accesslog"
	"github.com/coalmine-dev/coalmine/internal/analysis/judge"
	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/cluster"
	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/lease"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/notify"
	"github.com/coalmine-dev/coalmine/internal/provider/builtin"
	cwprovider "github.com/coalmine-dev/coalmine/internal/provider/cloudwatch"
	"github.com/coalmine-dev/coalmine/internal/provider/command"
	promprovider "github.com/coalmine-dev/coalmine/internal/provider/prometheus"
	"github.com/coalmine-dev/coalmine/internal/provider/web"
	"github.com/coalmine-dev/coalmine/internal/proxy"
	"github.com/coalmine-dev/coalmine/internal/rollout"
	"github.com/coalmine-dev/coalmine/internal/route"
	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
	"github.com/coalmine-dev/coalmine/internal/store/postgres"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
	dashboard "github.com/coalmine-dev/coalmine/internal/web"
)

// Config says what to run.
type Config struct {
	Rollouts  []spec.Rollout
	Templates []spec.AnalysisTemplate
	Admin     string // admin listen address
	// Store is the URL of a shared PostgreSQL store (postgres://...); when
	// empty, the embedded bbolt store in DataDir is used.
	Store             string
	DataDir           string
	Token             string
	ReadOnlyAnonymous bool
	Logger            *slog.Logger
	// AllowAPICommands accepts AnalysisTemplates with command metrics
	// through the API, not only from the files.
	AllowAPICommands bool
	// ListenOverrides serves a rollout (by name) on another address than
	// its spec.listen on this server (serve --listen-override), so replicas
	// sharing a machine keep their listeners apart.
	ListenOverrides map[string]string

	// With a shared store (PostgreSQL), this process is one replica of
	// several: ReplicaID names it (default: host name and admin port),
	// AdvertiseAdmin is the admin URL the others reach it at (default:
	// the bound admin address), LeaseTTL is how long the leader's lease
	// lasts without renewal (0: lease.DefaultTTL).
	ReplicaID      string
	AdvertiseAdmin string
	LeaseTTL       time.Duration
	// BuildVersion is this binary's version, shown in the replica list.
	BuildVersion string
	// AccessLogs are the syslog addresses (udp://host:port, unix:///path)
	// where HAProxy and NGINX send their access logs, from which the
	// rollouts they carry get their per-version telemetry.
	AccessLogs []string
}

// App is a running coalmine. Stop it with Shutdown.
type App struct {
	Proxy      *proxy.Proxy
	Controller *rollout.Controller
	Telemetry  *telemetry.Registry

	log       *slog.Logger
	store     store.Store
	admin     *http.Server
	adminLn   net.Listener
	adminDone chan error
	stopTele  context.CancelFunc
	teleDone  chan struct{}
	stopCtl   context.CancelFunc
	ctlDone   chan struct{}
	// External drives the load balancers of rollouts coalmine's proxy
	// does not carry (spec.trafficRouting.router).
	External *router.External
	stopExt  context.CancelFunc
	extDone  chan struct{}
	// accessLogs receive the load balancers' access logs.
	accessLogs []*accesslog.Receiver

	notifier   *notify.Dispatcher
	notifiers  *notifiers
	notifyCfg  notify.Config
	stopNotify context.CancelFunc
	notifyDone chan struct{}

	// replicas is set when the store is shared with other replicas.
	replicas     *replicaSet
	buildVersion string
	startedAt    time.Time
}

// Start opens the store, starts every rollout's listener and the admin API.
// On error everything already started is stopped again.
func Start(ctx context.Context, cfg Config) (a *App, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := api.CheckBind(cfg.Admin, cfg.Token); err != nil {
		return nil, err
	}
	// The admin address is bound first: when it is taken, start-up fails at
	// once, before any rollout's state is read, changed or served.
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, fmt.Errorf("listen on admin address %s: %w (is another coalmine serve running? choose another with --admin)", cfg.Admin, err)
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		adminLn.Close()
		return nil, err
	}
	a = &App{log: cfg.Logger, store: st, adminLn: adminLn, adminDone: make(chan error, 1), teleDone: make(chan struct{}),
		buildVersion: cfg.BuildVersion, startedAt: time.Now().UTC()}
	defer func() {
		if err != nil {
			a.Shutdown(context.Background()) //nolint:errcheck
		}
	}()

	a.Telemetry = telemetry.NewRegistry(telemetry.Options{Logger: cfg.Logger})
	teleCtx, stopTele := context.WithCancel(context.Background())
	a.stopTele = stopTele
	go func() { defer close(a.teleDone); a.Telemetry.Run(teleCtx) }()

	a.Proxy = proxy.New(proxy.Options{Logger: cfg.Logger, Telemetry: a.Telemetry,
		OnEndpointHealth: func(name string, role spec.Role, version, url string, healthy bool, reason string) {
			a.Controller.EndpointHealth(name, role, version, url, healthy, reason)
		}})
	// With a shared store, only the leader writes, and each of its writes
	// carries its fence (lease.FencedStore); elections, heartbeats and
	// telemetry reports use the store directly.
	ctlStore := st
	var fenced *lease.FencedStore
	if shared(st) {
		fenced = &lease.FencedStore{Store: st}
		ctlStore = fenced
	}
	a.notifyCfg = notify.Config{Store: ctlStore, Logger: cfg.Logger}
	a.notifier = notify.New(a.notifyCfg)
	a.notifiers = newNotifiers(a.notifier)
	if fenced == nil {
		notifyCtx, stopNotify := context.WithCancel(context.Background())
		a.stopNotify, a.notifyDone = stopNotify, make(chan struct{})
		go func() {
			defer close(a.notifyDone)
			if err := a.notifier.Run(notifyCtx); err != nil {
				cfg.Logger.Error("notification dispatcher stopped", "err", err)
			}
		}()
	}
	builtinProvider, err := builtin.New(builtin.Config{Telemetry: a.Telemetry, Logger: cfg.Logger})
	if err != nil {
		return a, err
	}
	if fenced != nil {
		if a.replicas, err = newReplicaSet(a, cfg, st, fenced); err != nil {
			return a, err
		}
	}
	// Only the process that runs the controller drives load balancers:
	// with replicas, followers leave them to the leader.
	var ctl atomic.Pointer[rollout.Controller]
	a.External = router.NewExternal(router.ExternalConfig{New: newRouterDriver, Logger: cfg.Logger,
		Active: func() bool { return a.replicas == nil || a.replicas.leading.Load() },
		OnChange: func(name, kind string, ok bool, reason string) {
			if c := ctl.Load(); c != nil {
				c.RouterHealth(name, kind, ok, reason)
			}
		}})
	extCtx, stopExt := context.WithCancel(context.Background())
	a.stopExt, a.extDone = stopExt, make(chan struct{})
	go func() { defer close(a.extDone); a.External.Run(extCtx) }()
	for _, addr := range cfg.AccessLogs {
		rcv, err := accesslog.Listen(extCtx, addr, accesslog.ResolverFunc(a.accessLogVersion), accesslog.Options{})
		if err != nil {
			return a, fmt.Errorf("--access-log: %w", err)
		}
		a.accessLogs = append(a.accessLogs, rcv)
		cfg.Logger.Info("receiving access logs", "address", rcv.Addr())
	}
	ctlCfg := rollout.Config{
		Providers: rollout.Providers{
			Builtin:    builtinProvider,
			Prometheus: promprovider.New(promprovider.Config{}),
			Web:        web.New(web.Config{}),
			Command:    command.New(command.Config{}),
			CloudWatch: cwprovider.New(cwprovider.Config{}),
		},
		Judges: judge.New,
		ResolveArgSecret: func(from spec.ArgValueFrom) (string, error) {
			return config.ResolveSecret(from.Secret(config.SecretsDir(os.LookupEnv)))
		},
		Router:       routerAdapter{a.Proxy, cfg.ListenOverrides, a.External},
		Store:        ctlStore,
		Notifier:     a.notifiers,
		Logger:       cfg.Logger,
		Check:        checkConfig,
		CheckSecrets: checkSecrets,
		OnRevision: func(name string, rev int64, stable, canary string) {
			rs := a.Telemetry.Rollout(name)
			rs.StartRevision(rev)
			// Versions no longer routed would otherwise keep their memory
			// and their series on /metrics forever.
			for _, v := range rs.Versions() {
				if (v.Role() == spec.RoleStable && v.Version() != stable) || (v.Role() == spec.RoleCanary && v.Version() != canary) {
					rs.RemoveVersion(v.Role(), v.Version())
				}
			}
		},
		AllowAPICommands: cfg.AllowAPICommands,
	}
	if rs := a.replicas; rs != nil {
		// A reconcile on PostgreSQL waits for network round trips and a
		// commit, not for CPU: more of them at once keep a thousand
		// rollouts on time (docs/benchmarks.md).
		ctlCfg.Workers = 16
		ctlCfg.ReplicaID, ctlCfg.ReplicaRoutes, ctlCfg.Degraded = rs.id, rs.replicaRoutes, rs.degraded
		ctlCfg.OnRouted = rs.members.Poke
	}
	a.Controller = rollout.New(ctlCfg)
	ctl.Store(a.Controller)
	if a.replicas == nil {
		if err := a.Controller.Load(ctx, cfg.Rollouts, cfg.Templates, true); err != nil {
			return a, err
		}
		ctlCtx, stopCtl := context.WithCancel(context.Background())
		a.stopCtl, a.ctlDone = stopCtl, make(chan struct{})
		go func() { defer close(a.ctlDone); a.Controller.Run(ctlCtx) }()
	} else {
		// The elector decides whether this replica loads the files and
		// runs the controller (it leads) or follows the one that does.
		a.replicas.start()
	}

	reg := prometheus.NewRegistry()
	for _, rcv := range a.accessLogs {
		reg.MustRegister(rcv.Collector())
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		a.Telemetry.Collector(), rollout.NewCollector(a.Controller), a.notifiers)
	// With replicas, only the leader's request series hold everybody's
	// traffic (it imports the others'); this gauge says which one it is,
	// so a query can keep the leader's series only.
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "coalmine_replica_leader",
		Help: "1 while this process leads (runs the controller and holds every replica's traffic in its series), 0 while it follows.",
	}, func() float64 {
		if a.replicas == nil || a.replicas.leading.Load() {
			return 1
		}
		return 0
	}))
	var handler http.Handler = api.New(api.Config{
		Commands:          a.Controller,
		Metrics:           promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelError)}),
		Ready:             a.ready,
		Degraded:          a.degraded,
		Token:             cfg.Token,
		ReadOnlyAnonymous: cfg.ReadOnlyAnonymous,
		Logger:            cfg.Logger,
		Series:            dashboard.SeriesSource{Commands: a.Controller, Telemetry: a.Telemetry}.Series,
		UI:                dashboard.Handler(),
		Replicas:          a.listReplicas,
	})
	if a.replicas != nil {
		handler = a.replicas.forward(handler)
	}
	a.admin = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	a.admin.RegisterOnShutdown(a.Controller.CloseWatches)
	go func() { a.adminDone <- a.admin.Serve(a.adminLn) }()
	return a, nil
}

// openStore opens the store cfg names.
func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	switch {
	case cfg.Store == "":
		return bolt.Open(cfg.DataDir)
	case postgres.IsURL(cfg.Store):
		s, err := postgres.Open(ctx, cfg.Store)
		if err != nil {
			return nil, err
		}
		s.SetLogger(cfg.Logger)
		if err := s.HoldShared(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	return nil, BadStoreURL(cfg.Store)
}

// shared reports whether other processes may use st too (the PostgreSQL
// store): then this process is one replica of several.
func shared(st store.Store) bool {
	_, ok := st.(store.ChangeFeed)
	return ok
}

// listReplicas is GET /api/v1/replicas: the replicas sharing the store,
// or this process alone on the embedded store.
func (a *App) listReplicas(ctx context.Context) ([]model.Replica, error) {
	if a.replicas != nil {
		return a.replicas.members.List(ctx)
	}
	routes := servedRoutes(a.Controller)
	now := time.Now().UTC()
	return []model.Replica{{ID: defaultReplicaID(a.AdminAddr()), Leader: true, Admin: advertisedAdmin(a.AdminAddr()), Version: a.buildVersion,
		RouteRevision: cluster.RouteRevision(routes), Routes: routes, StartedAt: a.startedAt, LastHeartbeat: now}}, nil
}

// BadStoreURL is the error for a --store value that names no store
// coalmine knows.
func BadStoreURL(url string) error {
	return fmt.Errorf("--store %s is not a PostgreSQL URL: give postgres://user:password@host:5432/database (or postgresql://...), or leave --store out to keep the state in --data-dir", postgres.Redact(url))
}

// ready reports what keeps this process from serving: a store that cannot
// write, a listener that is not bound or cannot accept connections
// (descriptors exhausted, say).
func (a *App) ready() error {
	var out []error
	// A replica sharing the store routes on without it: what the store
	// keeps it from doing is reported by degraded, with 200.
	if err := a.Controller.StoreError(); err != nil && a.replicas == nil {
		out = append(out, fmt.Errorf("the store cannot write, so no command can be kept: %w", err))
	}
	if a.replicas != nil {
		if err := a.replicas.starting(); err != nil {
			out = append(out, err)
		}
	}
	errs := a.Proxy.ListenerErrors()
	names := make([]string, 0, len(errs))
	for name := range errs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, fmt.Errorf("rollout %q: %w", name, errs[name]))
	}
	return errors.Join(out...)
}

// degraded reports what works less than fully while the process serves
// on: for a replica sharing the store, what the store's absence or an
// election keeps from working; for every process, the load balancers that
// do not route as their rollouts say (coalmine is not in their request
// path, so they do not make it unready).
func (a *App) degraded() error {
	var out []error
	if a.replicas != nil {
		if err := a.Controller.StoreError(); err != nil {
			out = append(out, fmt.Errorf("the store cannot write, so no command can be kept: %w", err))
		}
		if err := a.replicas.ready(); err != nil {
			out = append(out, err)
		}
	}
	errs := a.External.Errors()
	names := make([]string, 0, len(errs))
	for name := range errs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, fmt.Errorf("rollout %q: %w", name, errs[name]))
	}
	return errors.Join(out...)
}

// AdminAddr is the address the admin API listens on.
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// AdminDone reports the admin server stopping on its own.
func (a *App) AdminDone() <-chan error { return a.adminDone }

// Reload applies the rollouts and templates of re-read configuration
// files (SIGHUP); file rollouts no longer in them are removed.
func (a *App) Reload(ctx context.Context, rollouts []spec.Rollout, templates []spec.AnalysisTemplate) error {
	// A replica that follows keeps the files for when it leads; the
	// leader's files are the ones in effect.
	if a.replicas == nil || a.replicas.setFiles(rollouts, templates) {
		if err := a.Controller.Load(ctx, rollouts, templates, false); err != nil {
			return err
		}
	}
	// Certificates are files outside the spec: a renewed pair at the same
	// paths is picked up here (SPEC §2: "reloaded on SIGHUP").
	return a.Proxy.ReloadCertificates()
}

// Shutdown drains the proxy (in-flight requests finish until ctx ends),
// stops the admin API and background work, and closes the store.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.Proxy != nil {
		errs = append(errs, a.Proxy.Shutdown(ctx))
	}
	if a.admin != nil {
		errs = append(errs, a.admin.Shutdown(ctx))
	} else if a.adminLn != nil {
		a.adminLn.Close() // bound, never served: start-up failed after it
	}
	if a.replicas != nil {
		a.replicas.shutdown(ctx)
	}
	if a.stopCtl != nil {
		a.stopCtl()
		<-a.ctlDone
	}
	if a.stopNotify != nil {
		a.stopNotify()
		<-a.notifyDone
	}
	if a.stopExt != nil {
		a.stopExt()
		<-a.extDone
	}
	for _, rcv := range a.accessLogs {
		errs = append(errs, rcv.Close())
	}
	if a.stopTele != nil {
		a.stopTele()
		<-a.teleDone
	}
	errs = append(errs, a.store.Close())
	return errors.Join(errs...)
}

// accessLogVersion attributes an access-log line to the version its
// backend (HAProxy) or upstream (NGINX) serves now; nil for names no
// rollout's router uses (the line is counted and skipped).
func (a *App) accessLogVersion(backend string) *telemetry.VersionStats {
	ref, ok := a.External.Backend(backend)
	if !ok || ref.Version == "" {
		return nil
	}
	return a.Telemetry.Rollout(ref.Rollout).Version(ref.Role, ref.Version)
}

// routerAdapter lets the rollout layer use the proxy without the proxy
// knowing about rollouts, and sends the rollouts another load balancer
// carries (spec.trafficRouting.router) to their drivers instead.
type routerAdapter struct {
	p *proxy.Proxy
	// listen overrides spec.listen by rollout name on this server.
	listen map[string]string
	ext    *router.External
}

var _ rollout.Router = routerAdapter{}

func (r routerAdapter) Apply(ctx context.Context, ro *spec.Rollout, t *route.Table) error {
	name := ro.Metadata.Name
	if ro.Spec.TrafficRouting.Router.External() {
		// A rollout moved from coalmine's proxy to a load balancer stops
		// listening here.
		if err := r.p.Remove(ctx, name); err != nil && !errors.Is(err, proxy.ErrUnknownRollout) {
			return err
		}
		return r.ext.Apply(ctx, ro, t)
	}
	if r.ext.Has(name) {
		if err := r.ext.Remove(ctx, name); err != nil {
			return fmt.Errorf("hand rollout %q back from its load balancer: %w", name, err)
		}
	}
	if addr, ok := r.listen[name]; ok && addr != ro.Spec.Listen {
		c := *ro
		c.Spec.Listen = addr
		ro = &c
	}
	return r.p.Apply(ctx, ro, t)
}

func (r routerAdapter) Remove(ctx context.Context, name string) error {
	if r.ext.Has(name) {
		return r.ext.Remove(ctx, name)
	}
	return r.p.Remove(ctx, name)
}

func (r routerAdapter) SetTable(name string, t *route.Table) error {
	if r.ext.Has(name) {
		return r.ext.SetTable(name, t)
	}
	return r.p.SetTable(name, t)
}

func (r routerAdapter) CheckListen(name, addr string) error {
	if addr == "" {
		return nil // another load balancer listens (lint requires listen otherwise)
	}
	if o, ok := r.listen[name]; ok {
		addr = o
	}
	return r.p.CheckListen(name, addr)
}

// ListenError says why a rollout is not served as its state says: its
// listener is not bound, or its load balancer cannot be reached or does not
// hold the routing. Either way no step may complete.
func (r routerAdapter) ListenError(name string) error {
	if r.ext.Has(name) {
		return r.ext.ServeError(name)
	}
	return r.p.ListenError(name)
}

func (r routerAdapter) Observed(name string) (uint64, spec.Weight, bool, error) {
	if r.ext.Has(name) {
		return r.ext.Observed(name)
	}
	return r.p.Observed(name)
}

func (r routerAdapter) Endpoints(name string) ([]model.EndpointStatus, error) {
	if r.ext.Has(name) {
		return r.ext.Endpoints(name)
	}
	eps, err := r.p.Endpoints(name)
	if err != nil {
		return nil, err
	}
	out := make([]model.EndpointStatus, len(eps))
	for i, e := range eps {
		out[i] = model.EndpointStatus{Role: e.Role, Version: e.Version, URL: e.URL, Healthy: e.Healthy, Ejected: e.Ejected, InFlight: e.InFlight}
	}
	return out, nil
}

// checkConfig validates applied objects exactly as `coalmine lint` does,
// as field errors the API returns with 400.
func checkConfig(rollouts []spec.Rollout, templates []spec.AnalysisTemplate) error {
	return fieldErrors(config.Check(rollouts, templates))
}

// checkSecrets checks that an applied rollout's secret references resolve
// on this server.
func checkSecrets(r spec.Rollout) error {
	return fieldErrors(config.ResolveRolloutSecrets(r))
}

func fieldErrors(errs config.Errors) error {
	if len(errs) == 0 {
		return nil
	}
	out := make(spec.FieldErrors, len(errs))
	for i, e := range errs {
		out[i] = spec.FieldError{Path: e.Path, Msg: e.Msg}
	}
	return out
}
