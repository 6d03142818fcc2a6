// Package api serves coalmine's admin HTTP API (SPEC §6.2): health and
// readiness probes, /metrics, and under /api/v1/ the JSON API of rollouts
// and analysis templates, with a Server-Sent Events stream per rollout.
//
// Every command goes through model.Commands, the same service layer the
// CLI and the dashboard use, so the API adds only HTTP concerns: routing,
// authentication, strict request decoding, and the mapping of errors to
// status codes, which lives in one place (errors.go).
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// DefaultMaxBodyBytes caps request bodies when Config.MaxBodyBytes is zero.
const DefaultMaxBodyBytes int64 = 1 << 20

// Config configures the admin API handler.
type Config struct {
	// Commands is the rollout service layer. Required.
	Commands model.Commands
	// Metrics serves GET /metrics (the Prometheus exposition). When nil,
	// /metrics answers 404.
	Metrics http.Handler
	// Ready reports whether the process is ready to serve; a non-nil error
	// makes GET /readyz answer 503 with the error as the reason. Nil means
	// always ready.
	Ready func() error
	// Degraded reports what works less than fully while the process still
	// serves (a replica that cannot reach the shared store routes on with
	// what it has): GET /readyz answers 200 and says it. Nil means nothing.
	Degraded func() error
	// Token is the bearer token every /api/ request must present
	// (Authorization: Bearer <token>). Empty disables authentication, which
	// is only safe on a loopback address; see CheckBind.
	Token string
	// ReadOnlyAnonymous lets requests without a token read (GET and HEAD)
	// the API and /metrics while writes still need the token
	// (--read-only-anonymous).
	ReadOnlyAnonymous bool
	// Logger receives internal errors and rejected requests. Nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; larger bodies get 413. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// KeepAlive is the interval of the comment lines a watch stream sends
	// while nothing happens, so that proxies and clients do not close an
	// idle connection. Zero means DefaultKeepAlive (15s).
	KeepAlive time.Duration
	// Series serves GET /api/v1/rollouts/{name}/series: a rollout's traffic
	// per version in steps of step from since (zero: as far back as
	// known), with the canary weight over time. Its errors map like the
	// commands' (model.ErrNotFound → 404). When nil, the route answers 404.
	Series func(ctx context.Context, name string, since time.Time, step time.Duration) (model.Series, error)
	// Replicas serves GET /api/v1/replicas: every coalmine serve process
	// registered in the store, sorted by id, with who leads and who is gone
	// (internal/cluster). An error answers 503: the store is the only
	// thing it can fail on. When nil, the route answers 404.
	Replicas func(ctx context.Context) ([]model.Replica, error)
	// UI serves the dashboard's static files at GET / and GET /ui/...
	// (internal/web). They are public: the page holds no data, and every
	// data call it makes is an /api/ request under the usual rules (the
	// token, read-only anonymous access, the Host and cross-origin checks).
	// When nil, those paths answer 404.
	UI http.Handler
}

// server holds the validated configuration; it is immutable after New, so
// its handlers are safe for concurrent use.
type server struct {
	cmds      model.Commands
	ready     func() error
	degraded  func() error
	log       *slog.Logger
	maxBody   int64
	keepAlive time.Duration
	mux       *http.ServeMux
	series    func(ctx context.Context, name string, since time.Time, step time.Duration) (model.Series, error)
	replicas  func(ctx context.Context) ([]model.Replica, error)
	auth      authPolicy
	// rejectLog lets one "request rejected" line through per interval: a
	// flood of unauthenticated requests must not flood the log.
	rejectLog *logThrottle
	// storeLog does the same for store failures of reads polled by every
	// open dashboard (the replica list).
	storeLog *logThrottle
	crossOrg *http.CrossOriginProtection
}

// New returns the admin API handler. It panics when cfg.Commands is nil,
// which is a wiring mistake rather than a runtime condition.
//
// Routes:
//
//	GET    /healthz                               200 "ok" while the process runs
//	GET    /readyz                                200 "ok", or 503 with the reason
//	GET    /metrics                               Prometheus exposition (cfg.Metrics)
//	GET    /api/v1/rollouts                       {"items": [View...]}
//	GET    /api/v1/rollouts/{name}                View
//	PUT    /api/v1/rollouts/{name}                Rollout document → View (create or update)
//	POST   /api/v1/rollouts/{name}/promote        optional {"full": true} → View
//	POST   /api/v1/rollouts/{name}/abort          empty or {} → View
//	POST   /api/v1/rollouts/{name}/retry          empty or {} → View
//	POST   /api/v1/rollouts/{name}/pause          empty or {} → View
//	POST   /api/v1/rollouts/{name}/resume         empty or {} → View
//	POST   /api/v1/rollouts/{name}/undo           optional {"toRevision": N} → View
//	PUT    /api/v1/rollouts/{name}/weight         {"percent": 2.5} → View
//	PUT    /api/v1/rollouts/{name}/canary         {"version": "v2", "endpoints": ["http://..."]} → View
//	GET    /api/v1/rollouts/{name}/analysisruns   {"items": [AnalysisRunStatus...]}
//	GET    /api/v1/rollouts/{name}/events         ?after=SEQ&limit=N → {"items": [Event...]}
//	GET    /api/v1/rollouts/{name}/watch          Server-Sent Events (see watch)
//	GET    /api/v1/rollouts/{name}/series         ?since=RFC3339&step=1s → model.Series (cfg.Series)
//	GET    /api/v1/replicas                       [Replica...] (cfg.Replicas)
//	GET    /api/v1/analysistemplates              {"items": [AnalysisTemplate...]}
//	GET    /api/v1/analysistemplates/{name}       AnalysisTemplate
//	PUT    /api/v1/analysistemplates/{name}       AnalysisTemplate document → AnalysisTemplate
//	DELETE /api/v1/analysistemplates/{name}       204; 409 while a rollout uses it
//	GET    /  and  /ui/...                        the dashboard's static files (cfg.UI)
//
// A PUT document may leave out apiVersion, kind and metadata.name, which
// the path implies; given, they must agree with it. A command that does not
// apply to the rollout's state answers 409 with the reason.
//
// Unknown paths answer 404 and known paths with another method 405 (with an
// Allow header), both as JSON errors.
func New(cfg Config) http.Handler {
	if cfg.Commands == nil {
		panic("api.New: Config.Commands is nil")
	}
	s := &server{
		cmds:      cfg.Commands,
		ready:     cfg.Ready,
		degraded:  cfg.Degraded,
		log:       cfg.Logger,
		maxBody:   cfg.MaxBodyBytes,
		keepAlive: cfg.KeepAlive,
		mux:       http.NewServeMux(),
		series:    cfg.Series,
		replicas:  cfg.Replicas,
		auth:      authPolicy{token: cfg.Token, readOnlyAnonymous: cfg.ReadOnlyAnonymous, publicUI: cfg.UI != nil},
		rejectLog: &logThrottle{interval: 10 * time.Second},
		storeLog:  &logThrottle{interval: time.Minute},
		crossOrg:  http.NewCrossOriginProtection(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.keepAlive <= 0 {
		s.keepAlive = DefaultKeepAlive
	}

	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	s.mux.HandleFunc("GET /api/v1/rollouts", s.listRollouts)
	s.mux.HandleFunc("GET /api/v1/rollouts/{name}", s.getRollout)
	s.mux.HandleFunc("PUT /api/v1/rollouts/{name}", s.applyRollout)
	s.mux.HandleFunc("POST /api/v1/rollouts/{name}/promote", s.promote)
	s.mux.HandleFunc("POST /api/v1/rollouts/{name}/abort", s.command(s.cmds.Abort))
	s.mux.HandleFunc("POST /api/v1/rollouts/{name}/retry", s.command(s.cmds.Retry))
	s.mux.HandleFunc("POST /api/v1/rollouts/{name}/pause", s.command(s.cmds.Pause))
	s.mux.HandleFunc("POST /api/v1/rollouts/{name}/resume", s.command(s.cmds.Resume))
	s.mux.HandleFunc("POST /api/v1/rollouts/{name}/undo", s.undo)
	s.mux.HandleFunc("PUT /api/v1/rollouts/{name}/weight", s.setWeight)
	s.mux.HandleFunc("PUT /api/v1/rollouts/{name}/canary", s.setCanary)
	s.mux.HandleFunc("GET /api/v1/rollouts/{name}/analysisruns", s.analysisRuns)
	s.mux.HandleFunc("GET /api/v1/rollouts/{name}/events", s.events)
	s.mux.HandleFunc("GET /api/v1/rollouts/{name}/watch", s.watch)
	if cfg.Series != nil {
		s.mux.HandleFunc("GET /api/v1/rollouts/{name}/series", s.seriesHandler)
	}
	if cfg.Replicas != nil {
		s.mux.HandleFunc("GET /api/v1/replicas", s.listReplicas)
	}
	s.mux.HandleFunc("GET /api/v1/analysistemplates", s.listTemplates)
	s.mux.HandleFunc("GET /api/v1/analysistemplates/{name}", s.getTemplate)
	s.mux.HandleFunc("PUT /api/v1/analysistemplates/{name}", s.applyTemplate)
	s.mux.HandleFunc("DELETE /api/v1/analysistemplates/{name}", s.deleteTemplate)
	if cfg.UI != nil {
		s.mux.Handle("GET /{$}", cfg.UI)
		s.mux.Handle("GET /ui/", cfg.UI)
	}
	return s
}

// ServeHTTP applies, in order: panic recovery, the security headers, the
// cross-origin and Host checks, authentication, the body limit, and
// finally routing.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.recoverPanic(w, r)

	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")

	if err := s.checkBrowser(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.auth.check(r); err != nil {
		if ok, suppressed := s.rejectLog.allow(time.Now()); ok {
			s.log.Warn("admin API request rejected", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error(),
				"suppressedSinceLast", suppressed)
		}
		s.writeError(w, r, err)
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	}

	// ServeMux answers unmatched requests with plain-text 404/405 bodies;
	// find out first so those become JSON errors like every other error.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unmatched(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// unmatched lets ServeMux decide between 404, 405 (and its Allow header) or
// a redirect to the clean path, and renders errors as JSON.
func (s *server) unmatched(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		s.writeError(w, r, &httpError{status: http.StatusMethodNotAllowed,
			msg: "method " + r.Method + " is not allowed on " + r.URL.Path + "; allowed: " + rec.header.Get("Allow")})
	case rec.status >= 300 && rec.status < 400 && rec.header.Get("Location") != "":
		w.Header().Set("Location", rec.header.Get("Location"))
		w.WriteHeader(rec.status)
	default:
		s.writeError(w, r, &httpError{status: http.StatusNotFound, msg: "no such endpoint: " + r.Method + " " + r.URL.Path})
	}
}

// statusRecorder captures the status and headers of ServeMux's own
// not-found, method-not-allowed and redirect handlers; it drops the body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header { return r.header }

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return len(b), nil
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (s *server) recoverPanic(w http.ResponseWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.Error("admin API handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
	s.writeError(w, r, errPanic)
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.degraded != nil {
		if err := s.degraded(); err != nil {
			_, _ = w.Write([]byte("ok, degraded: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(); err != nil {
			s.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, msg: "not ready: " + err.Error()})
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.degraded != nil {
		if err := s.degraded(); err != nil {
			_, _ = w.Write([]byte("ok, degraded: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}
