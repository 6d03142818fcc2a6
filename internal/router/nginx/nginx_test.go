package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// nginxBinary finds NGINX, or skips the test (fails it in CI, where
// COALMINE_REQUIRE_INTEGRATION=1 says NGINX must be there).
func nginxBinary(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/nginx")
	}
	if err != nil {
		msg := "nginx is not installed (apt-get install nginx-light): the NGINX router's integration tests need a real NGINX"
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(msg + " (COALMINE_REQUIRE_INTEGRATION=1)")
		}
		t.Skip(msg)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// nginxEnv is an NGINX the test runs in its own directory, without root,
// in front of two Go upstreams that answer with their version.
type nginxEnv struct {
	t       *testing.T
	dir     string
	base    []string // nginx -p -c -e, the start of every command
	listen  string
	cfg     spec.NGINXRouter
	stable  string
	canary  string
	syslog  net.PacketConn
	client  *http.Client
	mu      sync.Mutex
	cmd     *exec.Cmd
	stopped chan struct{}
}

func newNginxEnv(t *testing.T) *nginxEnv {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	// When the test runs as root, NGINX's workers run as nobody: like the
	// workers of a real NGINX, they must reach the weight files.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"coalmine", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	syslog, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syslog.Close() })
	version := func(v string) *httptest.Server {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, v)
		}))
		t.Cleanup(s.Close)
		return s
	}
	e := &nginxEnv{
		t:      t,
		dir:    dir,
		listen: freeAddr(t),
		stable: version("stable").URL,
		canary: version("canary").URL,
		syslog: syslog,
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	t.Cleanup(e.client.CloseIdleConnections)
	conf := filepath.Join(dir, "nginx.conf")
	text, err := ConfigExample(ExampleOptions{
		Rollout:     "shop",
		IncludeFile: filepath.Join(dir, "coalmine", "shop.conf"),
		Listen:      e.listen,
		Syslog:      syslog.LocalAddr().String(),
		PidFile:     filepath.Join(dir, "nginx.pid"),
		ErrorLog:    filepath.Join(dir, "error.log"),
		TempDir:     filepath.Join(dir, "tmp"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	e.base = []string{bin, "-p", dir + "/", "-c", conf, "-e", filepath.Join(dir, "error.log")}
	e.cfg = spec.NGINXRouter{
		IncludeFile:   filepath.Join(dir, "coalmine", "shop.conf"),
		TestCommand:   append(append([]string(nil), e.base...), "-t"),
		ReloadCommand: append(append([]string(nil), e.base...), "-s", "reload"),
		StatusAddress: freeAddr(t),
	}
	return e
}

func (e *nginxEnv) driver() *Driver {
	e.t.Helper()
	d, err := New("shop", e.cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// desired is the rollout "shop" at weight w: user header X-User-Id,
// X-Canary: always to the canary.
func (e *nginxEnv) desired(gen uint64, w spec.Weight) router.Desired {
	return router.Desired{
		Rollout:    "shop",
		Revision:   3,
		Generation: gen,
		Weight:     w,
		Stable:     router.Target{Version: "v1", Endpoints: []string{e.stable}},
		Canary:     &router.Target{Version: "v2", Endpoints: []string{e.canary}},
		UserHeader: "X-User-Id",
		HeaderRoutes: []spec.HeaderRoute{{Name: "testers", Match: []spec.HeaderMatch{
			{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: str("always")}},
		}}},
	}
}

// bootstrap writes the first include file through the driver before NGINX
// runs (as a user's first apply does: NGINX cannot start without it), then
// starts NGINX and applies d.
func (e *nginxEnv) bootstrap(drv *Driver, d router.Desired) {
	e.t.Helper()
	err := drv.Apply(e.ctx(), d)
	if err == nil || !strings.Contains(err.Error(), "written and tested") {
		e.t.Fatalf("apply before NGINX runs: err = %v, want the reload to fail and the file to stay", err)
	}
	e.start()
	if err := drv.Apply(e.ctx(), d); err != nil {
		e.t.Fatal(err)
	}
}

func (e *nginxEnv) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	e.t.Cleanup(cancel)
	return ctx
}

// start runs NGINX in the foreground, in its own process group so the
// test can kill the master and its workers at once.
func (e *nginxEnv) start() {
	e.t.Helper()
	cmd := exec.Command(e.base[0], append(e.base[1:], "-g", "daemon off;")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { cmd.Wait(); close(stopped) }()
	e.mu.Lock()
	e.cmd, e.stopped = cmd, stopped
	e.mu.Unlock()
	e.t.Cleanup(e.kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-stopped:
			log, _ := os.ReadFile(filepath.Join(e.dir, "error.log"))
			e.t.Fatalf("nginx exited: %s%s", out.String(), log)
		default:
		}
		if c, err := net.Dial("tcp", e.listen); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatal("nginx does not listen after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill stops NGINX hard: SIGKILL to its master and workers.
func (e *nginxEnv) kill() {
	e.mu.Lock()
	cmd, stopped := e.cmd, e.stopped
	e.cmd = nil
	e.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-stopped
	// The workers are in the group too; wait until none holds the port.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.Dial("tcp", e.listen)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// get sends one request through NGINX and returns the version that
// answered.
func (e *nginxEnv) get(client *http.Client, header ...string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+e.listen+"/", nil)
	if err != nil {
		return "", err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, body)
	}
	return string(body), nil
}

// versionsOf sends one request per user key, from a few goroutines, and
// returns the version each key got.
func (e *nginxEnv) versionsOf(keys []string) []string {
	e.t.Helper()
	out := make([]string, len(keys))
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(keys); i += 4 {
				v, err := e.get(e.client, "X-User-Id", keys[i])
				if err != nil {
					errs <- err
					return
				}
				out[i] = v
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	return out
}

func share(vs []string) float64 {
	n := 0
	for _, v := range vs {
		if v == "canary" {
			n++
		}
	}
	return 100 * float64(n) / float64(len(vs))
}

func TestNGINXUsersStickAndRisingWeightMovesNoCanaryUserBack(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	e.bootstrap(drv, e.desired(1, 1000))

	keys := make([]string, 20000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	first := e.versionsOf(keys)
	if s := share(first); s < 9 || s > 11 {
		t.Errorf("canary share at 10%% = %.2f%%, want 10 ± 1", s)
	} else {
		t.Logf("canary share at 10%%: %.2f%% of %d users", s, len(keys))
	}
	second := e.versionsOf(keys)
	moved := 0
	for i := range keys {
		if first[i] != second[i] {
			moved++
		}
	}
	t.Logf("users moved by a second pass at 10%%: %d", moved)
	if moved != 0 {
		t.Errorf("%d users changed version between two passes at one weight", moved)
	}

	if err := drv.Apply(e.ctx(), e.desired(2, 3000)); err != nil {
		t.Fatal(err)
	}
	third := e.versionsOf(keys)
	back := 0
	for i := range keys {
		if first[i] == "canary" && third[i] != "canary" {
			back++
		}
	}
	s := share(third)
	t.Logf("canary share at 30%%: %.2f%%; canary users moved back to stable: %d", s, back)
	if back != 0 {
		t.Errorf("raising the weight to 30%% moved %d canary users back to stable", back)
	}
	if s < 29 || s > 31 {
		t.Errorf("canary share at 30%% = %.2f%%, want 30 ± 1", s)
	}

	// A new revision salts the split anew: another tenth of the users
	// goes first.
	if err := drv.Apply(e.ctx(), func() router.Desired { d := e.desired(3, 1000); d.Revision++; return d }()); err != nil {
		t.Fatal(err)
	}
	sample := keys[:4000]
	next := e.versionsOf(sample)
	both, before := 0, 0
	for i := range sample {
		if first[i] == "canary" {
			before++
			if next[i] == "canary" {
				both++
			}
		}
	}
	t.Logf("canary users of revision 3 (10%%) again canary in revision 4 (10%%): %d of %d", both, before)
	if both > before/2 {
		t.Errorf("%d of revision 3's %d canary users are canary users of revision 4 too: the revision does not salt the split", both, before)
	}

	// Requests without the user header split per request.
	anon := make([]string, 2000)
	for i := range anon {
		v, err := e.get(e.client)
		if err != nil {
			t.Fatal(err)
		}
		anon[i] = v
	}
	if s := share(anon); s < 7 || s > 13 {
		t.Errorf("share of requests without a user key at 10%% = %.1f%%, want about 10", s)
	}

	// NGINX logged the requests to coalmine's syslog as JSON lines
	// naming the upstream.
	buf := make([]byte, 4096)
	e.syslog.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := e.syslog.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no access-log line on syslog: %v", err)
	}
	line := string(buf[:n])
	if !strings.Contains(line, `"upstream":"shop_`) || !strings.Contains(line, `"status":200`) || !strings.Contains(line, "nginx:") {
		t.Errorf("access-log datagram = %q, want the coalmine JSON format", line)
	}
}

func TestNGINXHeaderRouteSendsEveryoneToTheCanary(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	d := e.desired(1, 1000)
	d.HeaderRoutes = append(d.HeaderRoutes, spec.HeaderRoute{Name: "old clients", To: spec.RoleStable, Match: []spec.HeaderMatch{
		{HeaderName: "User-Agent", HeaderValue: spec.StringMatch{Prefix: str("OldApp/")}},
	}})
	e.bootstrap(drv, d)
	for i := 0; i < 300; i++ {
		key := fmt.Sprintf("u%d", i)
		if v, err := e.get(e.client, "X-User-Id", key, "X-Canary", "always"); err != nil || v != "canary" {
			t.Fatalf("X-Canary: always, user %s: got %q, %v; want canary", key, v, err)
		}
		// The second route sends old clients to stable even at 100%.
	}
	d.Weight, d.Generation = spec.MaxWeight, 2
	if err := drv.Apply(e.ctx(), d); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if v, err := e.get(e.client, "X-User-Id", fmt.Sprint(i), "User-Agent", "OldApp/2.1"); err != nil || v != "stable" {
			t.Fatalf("old client at 100%%: got %q, %v; want stable", v, err)
		}
		if v, err := e.get(e.client, "X-User-Id", fmt.Sprint(i), "X-Canary", "Always"); err != nil || v != "canary" {
			t.Fatalf("at 100%%: got %q, %v; want canary", v, err)
		}
	}
}

func TestNGINXAbortSendsEveryoneToStableWhenApplyReturns(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	d := e.desired(1, 5000)
	d.HeaderRoutes = nil
	e.bootstrap(drv, d)
	// Keep-alive connections opened under the old routing.
	if s := share(e.versionsOf([]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"})); s == 0 {
		t.Fatal("no canary user at 50% before the abort")
	}
	d.Weight, d.Generation = 0, 2
	start := time.Now()
	if err := drv.Apply(e.ctx(), d); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Apply of weight 0 took %v", took)
	if took >= time.Second {
		t.Errorf("Apply of weight 0 took %v, want under 1s", took)
	}
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	if s := share(e.versionsOf(keys)); s != 0 {
		t.Errorf("%.2f%% of users still reach the canary after the abort returned", s)
	}
	applied, err := drv.Observe(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	if applied != (router.Applied{Generation: 2, Weight: 0, CanaryAvailable: true}) {
		t.Errorf("Observe = %+v", applied)
	}
}

// An abort reaches NGINX even when nginx -t refuses the full routing
// because the canary's host name no longer resolves: everything goes to
// stable, and the error (and generation 0) say the rest is not applied.
func TestNGINXAbortLandsWhenTheCanaryNoLongerResolves(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	d := e.desired(1, 5000)
	e.bootstrap(drv, d)
	d.Weight, d.Generation = 0, 2
	d.Canary = &router.Target{Version: "v2", Endpoints: []string{"http://canary.coalmine-test.invalid:8080"}}
	err := drv.Apply(e.ctx(), d)
	if err == nil || !strings.Contains(err.Error(), "everything to stable") {
		t.Fatalf("Apply = %v, want the refusal and the fallback to stable", err)
	}
	keys := make([]string, 500)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	if s := share(e.versionsOf(keys)); s != 0 {
		t.Errorf("%.2f%% of users still reach the canary after the abort", s)
	}
	if applied, err := drv.Observe(e.ctx()); err != nil || applied.Generation != 0 || applied.Weight != 0 {
		t.Errorf("Observe = %+v, %v; want generation 0 and weight 0", applied, err)
	}
}

func TestNGINXWeightChangesUnderLoadFailNoRequest(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	e.bootstrap(drv, e.desired(1, 1000))

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	served := map[string]int{}
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v, err := e.get(client, "X-User-Id", fmt.Sprintf("g%d-%d", g, i%50))
				mu.Lock()
				if err != nil {
					failures = append(failures, err.Error())
				} else {
					served[v]++
				}
				mu.Unlock()
			}
		}(g)
	}
	var longest time.Duration
	for i := 0; i < 20; i++ {
		w := spec.Weight(500 * (i%4 + 1))
		start := time.Now()
		if err := drv.Apply(e.ctx(), e.desired(uint64(i+2), w)); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		longest = max(longest, time.Since(start))
	}
	close(stop)
	wg.Wait()
	t.Logf("20 weight changes under 32 keep-alive clients: %d stable, %d canary answers, %d failures; longest Apply %v",
		served["stable"], served["canary"], len(failures), longest)
	if len(failures) > 0 {
		t.Errorf("%d requests failed during reloads, first: %s", len(failures), failures[0])
	}
	if served["canary"] == 0 || served["stable"] == 0 {
		t.Errorf("served = %v, want both versions", served)
	}
}

func TestNGINXRefusedConfigurationKeepsTheLastGoodFile(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	e.bootstrap(drv, e.desired(1, 1000))
	good, err := os.ReadFile(e.cfg.IncludeFile)
	if err != nil {
		t.Fatal(err)
	}

	// NGINX itself refuses an upstream it cannot resolve.
	bad := e.desired(2, 2000)
	bad.Canary.Endpoints = []string{"http://coalmine-no-such-host.invalid:8080"}
	err = drv.Apply(e.ctx(), bad)
	if err == nil || !strings.Contains(err.Error(), "host not found in upstream") || !strings.Contains(err.Error(), "coalmine-no-such-host.invalid") {
		t.Errorf("err = %v, want nginx -t's complaint quoted", err)
	}
	// A test command that fails for its own reasons.
	refusing := e.cfg
	refusing.TestCommand = []string{"sh", "-c", "echo 'nginx: [emerg] refused for the test' >&2; exit 1"}
	drv2, err := New("shop", refusing)
	if err != nil {
		t.Fatal(err)
	}
	// A structural change (a new revision) is tested; a weight change
	// would not be, it changes no include file.
	next := e.desired(3, 3000)
	next.Revision++
	err = drv2.Apply(e.ctx(), next)
	if err == nil || !strings.Contains(err.Error(), "refused for the test") {
		t.Errorf("err = %v, want the test command's stderr quoted", err)
	}

	now, err := os.ReadFile(e.cfg.IncludeFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(now, good) {
		t.Errorf("the include file changed after refused applies:\n%s", now)
	}
	if applied, err := drv.Observe(e.ctx()); err != nil || applied.Generation != 1 || applied.Weight != 1000 {
		t.Errorf("Observe = %+v, %v; want generation 1 at 10%%", applied, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(e.cfg.IncludeFile))
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if strings.Join(names, " ") != "shop.conf shop.d shop.location" {
		t.Errorf("the include directory holds %q, want only the include files and the state directory (no temporary left)", names)
	}
	// Reloads of the good file still work.
	if err := drv.Apply(e.ctx(), e.desired(4, 4000)); err != nil {
		t.Fatal(err)
	}
}

func TestNGINXKilledThenStartedAgain(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	e.bootstrap(drv, e.desired(1, 1000))
	e.kill()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := drv.Observe(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Observe with NGINX down: err = %v, want a connection error at once", err)
	}
	err := drv.Apply(ctx, e.desired(2, 2000))
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "reload") {
		t.Errorf("Apply with NGINX down: err = %v, want the reload's failure", err)
	} else {
		t.Logf("Apply with NGINX down: %v", err)
	}
	if err := drv.Check(ctx); err == nil {
		t.Error("Check with NGINX down passed")
	}

	e.start()
	// NGINX came back with the last good file, generation 1.
	if applied, err := drv.Observe(e.ctx()); err != nil || applied.Generation != 1 {
		t.Errorf("after the restart Observe = %+v, %v; want generation 1", applied, err)
	}
	if err := drv.Apply(e.ctx(), e.desired(2, 2000)); err != nil {
		t.Fatal(err)
	}
	if applied, err := drv.Observe(e.ctx()); err != nil || applied != (router.Applied{Generation: 2, Weight: 2000, CanaryAvailable: true}) {
		t.Errorf("Observe = %+v, %v", applied, err)
	}
	if err := drv.Check(e.ctx()); err != nil {
		t.Error(err)
	}

	// The weight files lost while NGINX was down (a state directory on a
	// tmpfs, say): NGINX starts with its include files and routes nobody
	// to the canary by weight; the next Apply writes them again, with no
	// reload.
	e.kill()
	if err := os.RemoveAll(drv.StateDir()); err != nil {
		t.Fatal(err)
	}
	e.start()
	if applied, err := drv.Observe(e.ctx()); err != nil || applied.Generation != 0 {
		t.Errorf("without weight files Observe = %+v, %v; want generation 0", applied, err)
	}
	keys := make([]string, 4000)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	if s := share(e.versionsOf(keys)); s != 0 {
		t.Errorf("without weight files %.2f%% of users reach the canary", s)
	}
	before := e.workers()
	if err := drv.Apply(e.ctx(), e.desired(3, 3000)); err != nil {
		t.Fatal(err)
	}
	if applied, err := drv.Observe(e.ctx()); err != nil || applied != (router.Applied{Generation: 3, Weight: 3000, CanaryAvailable: true}) {
		t.Errorf("Observe = %+v, %v", applied, err)
	}
	if s := share(e.versionsOf(keys)); s < 28 || s > 32 {
		t.Errorf("after the weight files came back at 30%%: %.2f%% on the canary", s)
	}
	if after := e.workers(); after != before {
		t.Errorf("restoring the weight files reloaded NGINX: workers %q became %q", before, after)
	}
}

// workers lists the process ids in NGINX's process group: a reload
// replaces the workers.
func (e *nginxEnv) workers() string {
	e.t.Helper()
	e.mu.Lock()
	pid := e.cmd.Process.Pid
	e.mu.Unlock()
	out, _ := exec.Command("pgrep", "-g", fmt.Sprint(pid)).Output()
	return string(out)
}

// A weight change, an abort included, swaps the weight files: NGINX keeps
// its workers, the status answers the new generation at once, and a
// structural change (a new revision) still reloads.
func TestNGINXWeightChangesNeedNoReload(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	e.bootstrap(drv, e.desired(1, 1000))
	before := e.workers()
	var durations []time.Duration
	for i, w := range []spec.Weight{2000, 1, 9999, 0, 2550, spec.MaxWeight, 500} {
		start := time.Now()
		if err := drv.Apply(e.ctx(), e.desired(uint64(i+2), w)); err != nil {
			t.Fatal(err)
		}
		durations = append(durations, time.Since(start))
		if applied, err := drv.Observe(e.ctx()); err != nil || applied != (router.Applied{Generation: uint64(i + 2), Weight: w, CanaryAvailable: true}) {
			t.Errorf("weight %d: Observe = %+v, %v", w, applied, err)
		}
	}
	t.Logf("Apply of a weight change took %v", durations)
	if after := e.workers(); after != before {
		t.Errorf("weight changes reloaded NGINX: workers %q became %q", before, after)
	}
	// Only the current state and the one it replaced stay, beside the
	// shared full row.
	entries, _ := os.ReadDir(drv.StateDir())
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if len(names) != 4 || names[0] != "current" || names[1] != "full" || !strings.HasPrefix(names[2], "w-") || !strings.HasPrefix(names[3], "w-") {
		t.Errorf("the state directory holds %q, want current, full and two states", names)
	}
	d := e.desired(20, 500)
	d.Revision++
	start := time.Now()
	if err := drv.Apply(e.ctx(), d); err != nil {
		t.Fatal(err)
	}
	t.Logf("Apply of a structural change (new revision) took %v", time.Since(start))
	if after := e.workers(); after == before {
		t.Error("a new revision did not reload NGINX")
	}
	if applied, err := drv.Observe(e.ctx()); err != nil || applied != (router.Applied{Generation: 20, Weight: 500, CanaryAvailable: true}) {
		t.Errorf("after a new revision: Observe = %+v, %v", applied, err)
	}
}

// wrk does not retry a request on a keep-alive connection that closes
// under it: at 64 connections and 20 or more weight changes, it must count
// no socket error and no non-2xx answer, since no weight change reloads.
func TestNGINXWeightChangesUnderWrkFailNothing(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("wrk is not installed (COALMINE_REQUIRE_INTEGRATION=1)")
		}
		t.Skip("wrk is not installed")
	}
	e := newNginxEnv(t)
	drv := e.driver()
	e.bootstrap(drv, e.desired(1, 1000))
	before := e.workers()
	cmd := exec.Command(wrk, "-t2", "-c64", "-d8s", "-H", "X-User-Id: u1", "http://"+e.listen+"/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	changes := 0
	var longest time.Duration
	weights := []spec.Weight{0, 500, 5000, spec.MaxWeight, 1, 2500}
loop:
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out.String())
			}
			break loop
		case <-time.After(50 * time.Millisecond):
		}
		start := time.Now()
		if err := drv.Apply(e.ctx(), e.desired(uint64(i+2), weights[i%len(weights)])); err != nil {
			cmd.Process.Kill()
			<-done
			t.Fatal(err)
		}
		longest = max(longest, time.Since(start))
		changes++
	}
	report := out.String()
	t.Logf("%d weight changes (longest Apply %v) during:\n%s", changes, longest, report)
	if changes < 20 {
		t.Errorf("only %d weight changes during the load, want 20 or more", changes)
	}
	if m := regexp.MustCompile(`(\d+) requests in`).FindStringSubmatch(report); m == nil || m[1] == "0" {
		t.Fatalf("wrk sent no requests:\n%s", report)
	}
	if strings.Contains(report, "Non-2xx") || strings.Contains(report, "Socket errors") {
		t.Errorf("requests failed while the weight changed:\n%s", report)
	}
	if after := e.workers(); after != before {
		t.Errorf("weight changes reloaded NGINX: workers %q became %q", before, after)
	}
}

func TestNGINXCheckApplyIsIdempotentAndRemove(t *testing.T) {
	e := newNginxEnv(t)
	drv := e.driver()
	// Nothing written yet: nginx -t fails on the missing include file.
	if err := drv.Check(e.ctx()); err == nil || !strings.Contains(err.Error(), "shop.conf") {
		t.Errorf("Check before any file: err = %v, want nginx -t's complaint about the include file", err)
	}
	d := e.desired(1, 5000)
	e.bootstrap(drv, d)
	if err := drv.Check(e.ctx()); err != nil {
		t.Fatal(err)
	}
	// Applying the same routing again does not reload NGINX.
	before := e.workers()
	if err := drv.Apply(e.ctx(), d); err != nil {
		t.Fatal(err)
	}
	if after := e.workers(); before != after {
		t.Errorf("a repeated Apply reloaded NGINX: workers %q became %q", before, after)
	}

	// A driver of a new process removes from what the file says.
	fresh := e.driver()
	if err := fresh.Remove(e.ctx()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if v, err := e.get(e.client, "X-User-Id", fmt.Sprint(i), "X-Canary", "always"); err != nil || v != "stable" {
			t.Fatalf("after Remove: got %q, %v; want stable", v, err)
		}
	}
	applied, err := fresh.Observe(e.ctx())
	if err != nil || applied.CanaryAvailable || applied.Weight != 0 || applied.Generation != 1 {
		t.Errorf("after Remove Observe = %+v, %v", applied, err)
	}
	text, _ := os.ReadFile(e.cfg.IncludeFile)
	if strings.Contains(string(text), "shop_canary") {
		t.Errorf("the include file still names the canary after Remove:\n%s", text)
	}
}

func TestNGINXMirrorRoutesAreUnsupported(t *testing.T) {
	drv, err := New("shop", spec.NGINXRouter{IncludeFile: filepath.Join(t.TempDir(), "shop.conf")})
	if err != nil {
		t.Fatal(err)
	}
	err = drv.Apply(context.Background(), router.Desired{
		Rollout:      "shop",
		Stable:       router.Target{Endpoints: []string{"http://127.0.0.1:1"}},
		MirrorRoutes: []spec.MirrorRoute{{Name: "shadow"}},
	})
	if !errors.Is(err, router.ErrUnsupported) {
		t.Errorf("err = %v, want router.ErrUnsupported", err)
	}
}

func TestNGINXRolloutsShareTheStatusAddress(t *testing.T) {
	e := newNginxEnv(t)
	conf := e.base[4]
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	cartFile := filepath.Join(e.dir, "coalmine", "cart.conf")
	// One file per rollout, included by a glob, so each rollout's first
	// file passes nginx -t without the other's.
	shared := strings.Replace(string(text), "include "+e.cfg.IncludeFile+";", "include "+filepath.Join(e.dir, "coalmine", "*.conf")+";", 1)
	// Each rollout's location includes its location file, by a pattern
	// that matches nothing before the rollout's first apply writes it.
	shared = strings.Replace(shared, "        location / {", "        location /cart/ {\n"+
		"            include "+LocationFile(cartFile)+"*;\n"+
		"            proxy_pass http://$coalmine_shop_upstream;\n        }\n\n        location / {", 1)
	if err := os.WriteFile(conf, []byte(shared), 0o644); err != nil {
		t.Fatal(err)
	}
	cartCfg := e.cfg
	cartCfg.IncludeFile = cartFile
	cart, err := New("cart", cartCfg)
	if err != nil {
		t.Fatal(err)
	}
	shop := e.driver()
	cartDesired := e.desired(5, 500)
	cartDesired.Rollout = "cart"
	e.bootstrap(shop, e.desired(1, 1000))
	if _, err := cart.Observe(e.ctx()); err != nil {
		t.Errorf("Observe before cart's first Apply: %v, want no error and generation 0", err)
	}
	if err := cart.Apply(e.ctx(), cartDesired); err != nil {
		t.Fatal(err)
	}
	if a, err := shop.Observe(e.ctx()); err != nil || a.Generation != 1 || a.Weight != 1000 {
		t.Errorf("shop: %+v, %v", a, err)
	}
	if a, err := cart.Observe(e.ctx()); err != nil || a.Generation != 5 || a.Weight != 500 {
		t.Errorf("cart: %+v, %v", a, err)
	}
}
