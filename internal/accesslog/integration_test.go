package accesslog

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/telemetry"
)

// Traffic of the integration tests: the stable upstream answers every
// 10th request with 500, the canary every 4th with 503 after 20 ms each,
// a third backend has no server (HAProxy or NGINX answers 503 itself), and
// some requests are answered by the load balancer without any backend.
const (
	stableRequests  = 200
	canaryRequests  = 100
	noSrvRequests   = 5
	localRequests   = 10
	canaryDelay     = 20 * time.Millisecond
	integrationWait = 30 * time.Second
)

// target is one receiver with its own telemetry, as a coalmine process
// would have.
type target struct {
	r                     *Receiver
	stable, canary, noSrv *telemetry.VersionStats
	// garbage is the number of garbage datagrams sent to the receiver.
	garbage uint64
}

func newTarget(t *testing.T, addr string, names [3]string) *target {
	t.Helper()
	rs := telemetry.NewRegistry(telemetry.Options{}).Rollout("shop")
	tg := &target{
		stable: rs.Version(spec.RoleStable, "v1"),
		canary: rs.Version(spec.RoleCanary, "v2"),
		noSrv:  rs.Version(spec.RoleCanary, "v3"),
	}
	table := &Table{}
	table.Set(map[string]*telemetry.VersionStats{names[0]: tg.stable, names[1]: tg.canary, names[2]: tg.noSrv})
	r, err := Listen(context.Background(), addr, table, Options{SocketMode: 0o666})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	tg.r = r
	return tg
}

// check waits until the receiver has every line, then compares what was
// recorded with what the client saw.
func (tg *target) check(t *testing.T, stable, canary, noSrv, local map[int]int64) {
	t.Helper()
	total := func(m map[int]int64) (n uint64) {
		for _, c := range m {
			n += uint64(c)
		}
		return n
	}
	want := total(stable) + total(canary) + total(noSrv)
	deadline := time.Now().Add(integrationWait)
	for {
		c := tg.r.Counts()
		if c.Recorded >= want && c.UnknownBackend >= total(local) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: counts %+v after %v; want %d recorded, %d unknown_backend", tg.r.Addr(), c, integrationWait, want, total(local))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := tg.r.Counts(); c.Recorded != want || c.UnknownBackend != total(local) || c.Malformed != tg.garbage || c.ReadErrors != 0 {
		t.Errorf("%s: counts %+v; want %d recorded, %d unknown_backend, %d malformed", tg.r.Addr(), c, want, total(local), tg.garbage)
	}
	for _, v := range []struct {
		name string
		vs   *telemetry.VersionStats
		seen map[int]int64
	}{{"stable", tg.stable, stable}, {"canary", tg.canary, canary}, {"no-server", tg.noSrv, noSrv}} {
		if got := codes(v.vs); !maps.Equal(got, v.seen) {
			t.Errorf("%s: %s recorded codes %v, the client saw %v", tg.r.Addr(), v.name, got, v.seen)
		}
	}
	// The canary's upstream waits 20 ms before answering: its recorded
	// latency cannot be shorter (HAProxy logs whole milliseconds, the 1 %
	// grid rounds down at most 1 %).
	if s := tg.canary.Summary(0); s.P50 < 0.99*float64(canaryDelay.Milliseconds()) {
		t.Errorf("%s: canary p50 %.1f ms, want at least %v", tg.r.Addr(), s.P50, canaryDelay)
	}
	t.Logf("%s: %+v; stable %v, canary %v (p50 %.1f ms), no server %v", tg.r.Addr(), tg.r.Counts(),
		codes(tg.stable), codes(tg.canary), tg.canary.Summary(0).P50, codes(tg.noSrv))
}

// socketDir returns a directory for unix sockets that a load balancer's
// unprivileged workers (NGINX's run as nobody when started by root) can
// reach; t.TempDir's directories are 0700.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "coalmine-accesslog-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A real HAProxy 2.6 with option httplog logs every request to two
// receivers, one over UDP and one over a unix datagram socket; each
// records per version exactly the status codes the client saw, the unix
// one after a storm of garbage.
func TestHAProxy(t *testing.T) {
	haproxy := requireBinary(t, "haproxy", "haproxy")
	stableUp := startUpstream(t, "v1", 10, http.StatusInternalServerError, 0)
	canaryUp := startUpstream(t, "v2", 4, http.StatusServiceUnavailable, canaryDelay)
	names := [3]string{"shop_stable", "shop_canary", "shop_preview"}
	udp := newTarget(t, "udp://127.0.0.1:0", names)
	unix := newTarget(t, "unix://"+filepath.Join(socketDir(t), "haproxy.sock"), names)

	port := freePort(t)
	cfg := fmt.Sprintf(`global
    log %s local0
    log %s local0

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend shop
    bind 127.0.0.1:%d
    http-request deny if { path_beg /deny }
    use_backend shop_canary if { req.hdr(x-canary) -m found }
    use_backend shop_preview if { req.hdr(x-preview) -m found }
    default_backend shop_stable

backend shop_stable
    server s1 %s

backend shop_canary
    server s1 %s

backend shop_preview
    server s1 127.0.0.1:1 disabled
`, udp.r.Addr()[len("udp://"):], unix.r.Addr()[len("unix://"):], port, hostPort(stableUp.Server), hostPort(canaryUp.Server))
	cfgPath := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, fmt.Sprintf("127.0.0.1:%d", port), haproxy, "-db", "-f", cfgPath)

	// A storm of garbage first: counted, and the receiver keeps working.
	unix.garbage = 5000
	send(t, unix.r.Addr(), garbage(int(unix.garbage)))
	waitFor(t, "the garbage to be counted", func() bool { return unix.r.Counts().Malformed == unix.garbage })

	client := &http.Client{Timeout: 10 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	stable := tally(t, client, base+"/", "", stableRequests)
	canary := tally(t, client, base+"/", "X-Canary", canaryRequests)
	noSrv := tally(t, client, base+"/", "X-Preview", noSrvRequests)
	local := tally(t, client, base+"/deny", "", localRequests)
	if stable[500] != stableRequests/10 || canary[503] != canaryRequests/4 || noSrv[503] != noSrvRequests || local[403] != localRequests {
		t.Fatalf("the client saw stable %v, canary %v, no server %v, denied %v: the setup is wrong", stable, canary, noSrv, local)
	}
	udp.check(t, stable, canary, noSrv, local)
	unix.check(t, stable, canary, noSrv, local)
}

// A real NGINX with the documented JSON log_format logs every request to
// two receivers, over UDP and over a unix datagram socket.
func TestNGINX(t *testing.T) {
	nginx := requireBinary(t, "nginx", "nginx-light")
	stableUp := startUpstream(t, "v1", 10, http.StatusInternalServerError, 0)
	canaryUp := startUpstream(t, "v2", 4, http.StatusServiceUnavailable, canaryDelay)
	names := [3]string{"shop_stable", "shop_canary", "shop_preview"}
	udp := newTarget(t, "udp://127.0.0.1:0", names)
	unix := newTarget(t, "unix://"+filepath.Join(socketDir(t), "nginx.sock"), names)

	prefix := t.TempDir()
	port := freePort(t)
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    client_body_temp_path %[1]s/tmp;
    proxy_temp_path %[1]s/tmp;
    fastcgi_temp_path %[1]s/tmp;
    uwsgi_temp_path %[1]s/tmp;
    scgi_temp_path %[1]s/tmp;

    log_format coalmine escape=json '{"upstream":"$proxy_host","status":$status,"request_time":$request_time,"upstream_status":"$upstream_status"}';
    access_log syslog:server=%[2]s coalmine;
    access_log syslog:server=unix:%[3]s,tag=shop coalmine;

    upstream shop_stable { server %[4]s; }
    upstream shop_canary { server %[5]s; }
    upstream shop_preview { server 127.0.0.1:1 down; }

    map "$http_x_canary:$http_x_preview" $coalmine_shop_upstream {
        default shop_stable;
        "1:" shop_canary;
        ":1" shop_preview;
    }

    server {
        listen 127.0.0.1:%[6]d;
        location / { proxy_pass http://$coalmine_shop_upstream; }
        location /deny { return 403; }
    }
}
`, prefix, udp.r.Addr()[len("udp://"):], unix.r.Addr()[len("unix://"):], hostPort(stableUp.Server), hostPort(canaryUp.Server), port)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	startProcess(t, fmt.Sprintf("127.0.0.1:%d", port), nginx, "-p", prefix, "-c", confPath)

	client := &http.Client{Timeout: 10 * time.Second}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	stable := tally(t, client, base+"/", "", stableRequests)
	canary := tally(t, client, base+"/", "X-Canary", canaryRequests)
	noSrv := tally(t, client, base+"/", "X-Preview", noSrvRequests)
	local := tally(t, client, base+"/deny", "", localRequests)
	if stable[500] != stableRequests/10 || canary[503] != canaryRequests/4 || noSrv[502] != noSrvRequests || local[403] != localRequests {
		t.Fatalf("the client saw stable %v, canary %v, no server %v, denied %v: the setup is wrong", stable, canary, noSrv, local)
	}
	udp.check(t, stable, canary, noSrv, local)
	unix.check(t, stable, canary, noSrv, local)
}
