package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/coalmine-dev/coalmine/internal/api"
	"github.com/coalmine-dev/coalmine/internal/app"
	"github.com/coalmine-dev/coalmine/internal/cli"
	"github.com/coalmine-dev/coalmine/internal/config"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store/postgres"
)

type serveOptions struct {
	files             []string
	admin             string
	dataDir           string
	store             string
	tokenFile         string
	readOnlyAnonymous bool
	logFormat         string
	logLevel          string
	drainTimeout      time.Duration
	pprofAddr         string
	allowAPICommands  bool
	listenOverrides   []string
	accessLogs        []string
	replicaID         string
	advertiseAdmin    string
}

func newServeCmd() *cobra.Command {
	o := serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve -f PATH... [--admin ADDR] [--data-dir DIR | --store URL]",
		Short: "Run the proxy, the rollouts and the admin API",
		Long: `Serve loads rollouts from the given files or directories, starts one
data-plane listener per rollout (spec.listen) that splits traffic between
the stable and the canary version, and serves the admin API, /metrics and
the health endpoints on --admin.

State (weights, revisions, events) survives restarts. It lives in an
embedded store in --data-dir, or, with --store postgres://..., in a
PostgreSQL database: coalmine creates its tables there at the first start
and upgrades them when a newer coalmine starts (the user in the URL needs
to be able to create tables; a database it owns is simplest).

Several replicas can share one database (docs/ha.md): every replica serves
the proxy listeners, the admin API and the dashboard; one of them, elected
through the database, runs the controller, and the others route with what
it decides. A command sent to any replica is forwarded to the leader.
Replicas on one machine keep their listeners apart with --listen-override,
and each needs its own --admin. Give every replica the same -f files and
token.

The admin API binds to loopback by default; binding it elsewhere needs a
token (--token-file or COALMINE_TOKEN), which every /api/ call must send as
"Authorization: Bearer TOKEN".

AnalysisTemplates with command metrics run programs on this server with its
privileges: they are accepted from the -f files, and through the API only
with --allow-command-provider.

Signals: SIGTERM or SIGINT stop accepting connections and let in-flight
requests finish (up to --drain-timeout); SIGHUP reloads the -f files with the
same validation as lint, keeping the running configuration if they are invalid.`,
		Example: `  coalmine serve -f rollout.yaml
  coalmine serve -f deploy/ --admin 127.0.0.1:7070 --data-dir /var/lib/coalmine
  COALMINE_STORE='postgres://coalmine:PASSWORD@db.internal:5432/coalmine?sslmode=verify-full' coalmine serve -f deploy/
  COALMINE_TOKEN=$(cat /etc/coalmine/token) coalmine serve -f deploy/ --admin 0.0.0.0:7070`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(o.files) == 0 {
				return usageErr(errors.New("serve needs at least one -f PATH (a YAML file or a directory of them)"))
			}
			// Read here, not as the flag's default: help would print a
			// default, and this URL may hold a password.
			if !cmd.Flags().Changed("store") {
				o.store = os.Getenv("COALMINE_STORE")
			}
			return runServe(cmd.Context(), o, cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "filename", "f", nil, "YAML file or directory with Rollout and AnalysisTemplate documents (repeatable)")
	f.StringVar(&o.admin, "admin", "127.0.0.1:7070", "address of the admin API, /metrics and the dashboard")
	f.StringVar(&o.dataDir, "data-dir", envOr("COALMINE_DATA_DIR", ".coalmine"), "directory of the embedded store (env COALMINE_DATA_DIR)")
	f.StringVar(&o.store, "store", "", "keep the state in PostgreSQL: postgres://user:password@host:5432/database?sslmode=... (env COALMINE_STORE; default: the embedded store in --data-dir)")
	f.StringVar(&o.tokenFile, "token-file", "", "file holding the admin API bearer token (else env COALMINE_TOKEN)")
	f.BoolVar(&o.readOnlyAnonymous, "read-only-anonymous", false, "allow reads without the token")
	f.StringVar(&o.logFormat, "log-format", "", "text or json (default: text on a terminal, json otherwise)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "how long SIGTERM waits for in-flight requests")
	f.BoolVar(&o.allowAPICommands, "allow-command-provider", false, "accept AnalysisTemplates with command metrics through the API (apply), not only from -f files: whoever can apply then runs programs on this server")
	f.StringArrayVar(&o.listenOverrides, "listen-override", nil, "NAME=HOST:PORT: serve rollout NAME on this address on this server instead of its spec.listen, for replicas that share a machine (repeatable)")
	f.StringArrayVar(&o.accessLogs, "access-log", nil, "udp://HOST:PORT or unix:///PATH: receive HAProxy's or NGINX's access logs over syslog here, as the telemetry of the rollouts they carry (spec.trafficRouting.router; docs/routers.md gives the log formats) (repeatable)")
	f.StringVar(&o.replicaID, "replica-id", "", "with --store: this replica's name among those sharing the database (default: host name and admin port)")
	f.StringVar(&o.advertiseAdmin, "advertise-admin", "", "with --store: the admin URL other replicas reach this one at, to forward commands to the leader (default: http:// and the --admin address, the host name for 0.0.0.0)")
	f.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go's net/http/pprof profiles on this loopback address (for performance work)")
	_ = f.MarkHidden("pprof-addr")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newLogger(format, level string, w *os.File) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr(fmt.Errorf("--log-level %q: use debug, info, warn or error", level))
	}
	if format == "" {
		format = "json"
		if fi, err := w.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "text"
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr(fmt.Errorf("--log-format %q: use text or json", format))
}

func readToken(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv("COALMINE_TOKEN")), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageErr(fmt.Errorf("read --token-file: %w", err))
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", usageErr(fmt.Errorf("--token-file %s is empty", file))
	}
	return tok, nil
}

// loadConfig loads and validates the -f files, resolving secrets.
func loadConfig(files []string) (*config.Bundle, error) {
	b, err := config.Load(files...)
	if err == nil {
		err = config.ResolveSecrets(b, os.LookupEnv, os.ReadFile)
	}
	return b, err
}

func runServe(ctx context.Context, o serveOptions, stderr io.Writer) error {
	logger, err := newLogger(o.logFormat, o.logLevel, os.Stderr)
	if err != nil {
		return err
	}
	if o.store != "" && !postgres.IsURL(o.store) {
		return usageErr(app.BadStoreURL(o.store))
	}
	bundle, err := loadConfig(o.files)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return cli.Exit(cli.ExitUsage, errors.New("configuration is invalid; nothing was started"))
	}
	logWarnings(logger, bundle.Warnings)
	token, err := readToken(o.tokenFile)
	if err != nil {
		return err
	}
	if err := api.CheckBind(o.admin, token); err != nil {
		return usageErr(err)
	}
	// Catch signals before anything is served: a SIGHUP that arrives while
	// the admin API is already up but the loop below not yet running would
	// otherwise kill the process (the default action).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	overrides, err := parseListenOverrides(o.listenOverrides)
	if err != nil {
		return usageErr(err)
	}
	a, err := app.Start(ctx, app.Config{
		Rollouts: bundle.Rollouts, Templates: bundle.Templates, Admin: o.admin, DataDir: o.dataDir, Store: o.store,
		Token: token, ReadOnlyAnonymous: o.readOnlyAnonymous, Logger: logger, AllowAPICommands: o.allowAPICommands,
		ListenOverrides: overrides, AccessLogs: o.accessLogs, ReplicaID: o.replicaID, AdvertiseAdmin: o.advertiseAdmin, BuildVersion: cli.Version,
	})
	if err != nil {
		return err
	}
	for _, r := range bundle.Rollouts {
		canary := "none"
		if r.Spec.Canary != nil {
			canary = r.Spec.Canary.Version
		}
		listen := r.Spec.Listen
		if addr, ok := overrides[r.Metadata.Name]; ok {
			listen = addr + " (--listen-override; spec.listen is " + r.Spec.Listen + ")"
		}
		if rt := r.Spec.TrafficRouting.Router; rt.External() {
			logger.Info("serving rollout", "rollout", r.Metadata.Name, "router", rt.Kind(), "stable", r.Spec.Stable.Version, "canary", canary)
			continue
		}
		logger.Info("serving rollout", "rollout", r.Metadata.Name, "listen", listen, "stable", r.Spec.Stable.Version, "canary", canary)
	}
	if o.store != "" {
		logger.Info("state in PostgreSQL", "store", postgres.Redact(o.store))
	} else {
		logger.Info("state in the embedded store", "data-dir", o.dataDir)
	}
	logger.Info("admin API listening", "addr", a.AdminAddr(), "auth", token != "")
	if o.pprofAddr != "" {
		if err := servePprof(o.pprofAddr); err != nil {
			_ = a.Shutdown(context.Background())
			return err
		}
		logger.Info("pprof listening", "addr", o.pprofAddr)
	}

	for {
		select {
		case err := <-a.AdminDone():
			_ = a.Shutdown(context.Background())
			return fmt.Errorf("admin API stopped: %w", err)
		case <-ctx.Done():
			return drain(logger, a, o.drainTimeout)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload(ctx, logger, a, o.files)
				continue
			}
			logger.Info("draining", "signal", sig.String(), "timeout", o.drainTimeout)
			return drain(logger, a, o.drainTimeout)
		}
	}
}

// logWarnings logs what lint would warn about, one line each, so a
// difference from Argo's behaviour is visible where serve runs too.
func logWarnings(logger *slog.Logger, warnings config.Errors) {
	for _, w := range warnings {
		logger.Warn("configuration warning", "at", w.Warning())
	}
}

// reload re-reads the -f files; an invalid configuration is rejected and
// the running one stays.
func reload(ctx context.Context, logger *slog.Logger, a *app.App, files []string) {
	b, err := loadConfig(files)
	if err != nil {
		logger.Error("reload rejected: the running configuration stays", "err", err)
		return
	}
	if err := a.Reload(ctx, b.Rollouts, b.Templates); err != nil {
		logger.Error("reload failed", "err", err)
		return
	}
	logWarnings(logger, b.Warnings)
	logger.Info("configuration reloaded", "rollouts", len(b.Rollouts))
}

func drain(logger *slog.Logger, a *app.App, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		logger.Warn("drain ended before every request finished", "err", err)
	} else {
		logger.Info("drained; bye")
	}
	return nil
}

// parseListenOverrides reads --listen-override NAME=HOST:PORT flags.
// NAME need not be in the -f files: a rollout applied through the API is
// overridden too.
func parseListenOverrides(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		name, addr, ok := strings.Cut(f, "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("--listen-override %q: write NAME=HOST:PORT, such as checkout=127.0.0.1:8081", f)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("--listen-override: rollout %q is given twice", name)
		}
		if err := spec.CheckListenAddress(addr); err != nil {
			return nil, fmt.Errorf("--listen-override %s: %w", f, err)
		}
		out[name] = addr
	}
	return out, nil
}
