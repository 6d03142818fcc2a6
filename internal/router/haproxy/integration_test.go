package haproxy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// pass sends one request per key, from a few keep-alive workers, and
// returns the set of keys the canary served.
func pass(t *testing.T, addr string, keys int) map[int]bool {
	t.Helper()
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	canary := make([]bool, keys)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= keys {
					return
				}
				v, err := get(c, addr, map[string]string{testUserHeader: "user-" + strconv.Itoa(k)})
				if err != nil {
					errs <- err
					return
				}
				canary[k] = v == "v2"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for k, c := range canary {
		if c {
			out[k] = true
		}
	}
	return out
}

func TestStickyShareAndMonotonicity(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	stable, canary := upstream(t, "v1"), upstream(t, "v2")
	const keys = 20000

	start := time.Now()
	mustApply(t, d, desired(1, 1000, []string{stable}, []string{canary}))
	t.Logf("first Apply (servers and map entries from nothing) returned after %v", time.Since(start))

	first := pass(t, l.addr(), keys)
	share := float64(len(first)) / keys * 100
	t.Logf("weight 10%%: %d of %d keys on the canary (%.2f%%)", len(first), keys, share)
	if share < 9 || share > 11 {
		t.Fatalf("canary share %.2f%% at weight 10%%, want 10%% ± 1", share)
	}

	second := pass(t, l.addr(), keys)
	moved := 0
	for k := range keys {
		if first[k] != second[k] {
			moved++
		}
	}
	t.Logf("second pass at the same weight: %d users moved", moved)
	if moved != 0 {
		t.Fatalf("%d users changed version on a second pass at the same weight", moved)
	}

	start = time.Now()
	mustApply(t, d, desired(2, 3000, []string{stable}, []string{canary}))
	t.Logf("Apply of a weight change returned after %v", time.Since(start))
	third := pass(t, l.addr(), keys)
	back := 0
	for k := range first {
		if !third[k] {
			back++
		}
	}
	share = float64(len(third)) / keys * 100
	t.Logf("weight 30%%: %.2f%% on the canary, %d canary users moved back to stable", share, back)
	if back != 0 {
		t.Fatalf("raising the weight moved %d canary users back to stable", back)
	}
	if share < 29 || share > 31 {
		t.Fatalf("canary share %.2f%% at weight 30%%, want 30%% ± 1", share)
	}

	a, err := d.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.Generation != 2 || a.Weight != 3000 || !a.CanaryAvailable {
		t.Fatalf("Observe = %+v, want generation 2, weight 3000, canary available", a)
	}
	// Applying what HAProxy holds changes nothing.
	if cmds, err := d.plan(context.Background(), desired(2, 3000, []string{stable}, []string{canary})); err != nil || len(cmds) != 0 {
		t.Fatalf("re-applying the same routing plans %q, %v; want nothing", cmdLines(cmds), err)
	}

	// A new revision reshuffles who goes first (a new salt), at the same
	// share; a fifth of the keys is enough to see it.
	next := desired(3, 1000, []string{stable}, []string{canary})
	next.Revision = 8
	mustApply(t, d, next)
	const some = keys / 5
	fourth := pass(t, l.addr(), some)
	before, same := 0, 0
	for k := range some {
		if first[k] {
			before++
			if fourth[k] {
				same++
			}
		}
	}
	t.Logf("new revision at 10%%: %d of the first %d keys on the canary, %d of the %d that were before", len(fourth), some, same, before)
	if same > before/2 {
		t.Fatalf("a new revision kept %d of %d canary users: the salt does not reshuffle", same, before)
	}
}

func TestUnkeyedRequestsSplitByWeight(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	mustApply(t, d, desired(1, 5000, []string{upstream(t, "v1")}, []string{upstream(t, "v2")}))
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	n, canary := 2000, 0
	for range n {
		v, err := get(c, l.addr(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if v == "v2" {
			canary++
		}
	}
	// 2000 fair coin flips: 50% ± 5 is more than 4 standard deviations.
	if share := float64(canary) / float64(n) * 100; share < 45 || share > 55 {
		t.Fatalf("requests without the user header: %.1f%% on the canary at weight 50%%", share)
	}
}

func route(name string, to spec.Role, matches ...spec.HeaderMatch) spec.HeaderRoute {
	return spec.HeaderRoute{Name: name, To: to, Match: matches}
}

func exact(h, v string) spec.HeaderMatch {
	return spec.HeaderMatch{HeaderName: h, HeaderValue: spec.StringMatch{Exact: strp(v)}}
}
func prefix(h, v string) spec.HeaderMatch {
	return spec.HeaderMatch{HeaderName: h, HeaderValue: spec.StringMatch{Prefix: strp(v)}}
}
func regex(h, v string) spec.HeaderMatch {
	return spec.HeaderMatch{HeaderName: h, HeaderValue: spec.StringMatch{Regex: strp(v)}}
}

func TestHeaderRoutes(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	stable, canary := upstream(t, "v1"), upstream(t, "v2")
	c := newHTTPClient()
	defer c.CloseIdleConnections()

	check := func(headers map[string]string, want string) {
		t.Helper()
		for i := range 50 {
			h := map[string]string{testUserHeader: "u" + strconv.Itoa(i)}
			for k, v := range headers {
				h[k] = v
			}
			got, err := get(c, l.addr(), h)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("request %d with %v served by %s, want %s", i, headers, got, want)
			}
		}
	}

	// Weight 0: only routes send anything to the canary.
	w := desired(1, 0, []string{stable}, []string{canary})
	w.HeaderRoutes = []spec.HeaderRoute{
		route("pinned-stable", spec.RoleStable, regex("X-Canary", "force-.*")),
		route("beta", spec.RoleCanary, exact("X-Canary", "always"), exact("X-Canary", "a b;c\\d"), exact("X-Canary", "force-1")),
		route("group", "", prefix("X-Group", "beta-")),
		route("versions", spec.RoleCanary, regex("x-canary", "v[0-9]+")),
		route("odd values", spec.RoleCanary, exact("X-Group", ""), exact("X-Group", "a,b")),
	}
	mustApply(t, d, w)
	check(map[string]string{"X-Group": ""}, "v2")    // present and empty is a value
	check(map[string]string{"X-Group": "a,b"}, "v2") // one value, commas and all
	check(map[string]string{"X-Group": "a"}, "v1")
	check(map[string]string{"X-Canary": "always"}, "v2")
	check(map[string]string{"X-Canary": "a b;c\\d"}, "v2")
	check(map[string]string{"X-Group": "beta-42"}, "v2")
	check(map[string]string{"X-Canary": "v17"}, "v2")
	check(map[string]string{"X-Canary": "v17x"}, "v1") // the regex matches the whole value
	check(map[string]string{"X-Canary": "alway"}, "v1")
	check(map[string]string{"X-Canary": "always-not"}, "v1")
	check(map[string]string{"X-Canary": "force-1"}, "v1") // the first route wins
	check(nil, "v1")

	// Weight 100%: a route to stable keeps its requests on stable.
	w = desired(2, 10000, []string{stable}, []string{canary})
	w.HeaderRoutes = []spec.HeaderRoute{
		route("internal", spec.RoleStable, prefix("X-Group", "internal-")),
	}
	mustApply(t, d, w)
	check(map[string]string{"X-Group": "internal-7"}, "v1")
	check(map[string]string{"X-Group": "beta-42"}, "v2")
	check(map[string]string{"X-Canary": "always"}, "v2") // that route is gone: the weight decides
	entries, err := d.showMap(context.Background(), d.cfg.Map, false)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, e := range ofRollout(entries, routesPrefix("shop")).all {
		routes = append(routes, e.Key)
	}
	if len(routes) != 1 {
		t.Fatalf("map holds routes %q after the routes changed, want only the internal- prefix", routes)
	}

	// A route on a header the frontend does not look at is refused, not
	// silently never matched.
	w.HeaderRoutes = []spec.HeaderRoute{route("other", spec.RoleCanary, exact("X-Other", "1"))}
	w.Generation = 3
	err = d.Apply(context.Background(), w)
	if err == nil || !contains(err.Error(), "do not cover") {
		t.Fatalf("Apply with a route on an uncovered header: %v", err)
	}
	// So is a user header the frontend does not hash.
	w.HeaderRoutes = nil
	w.UserHeader = "X-Session"
	err = d.Apply(context.Background(), w)
	if err == nil || !contains(err.Error(), `lines in haproxy.cfg hash "x-user-id"`) {
		t.Fatalf("Apply with another user header: %v", err)
	}
	a, err := d.Observe(context.Background())
	if err != nil || a.Generation != 2 {
		t.Fatalf("after a refused Apply, Observe = %+v, %v; want generation 2 still", a, err)
	}

	// Remove: everyone to stable, coalmine's entries gone.
	if err := d.Remove(context.Background()); err != nil {
		t.Fatal(err)
	}
	check(map[string]string{"X-Group": "beta-42"}, "v1")
	check(map[string]string{"X-Group": "internal-7"}, "v1")
	a, err = d.Observe(context.Background())
	if err != nil || a.Generation != 0 || a.Weight != 0 {
		t.Fatalf("after Remove, Observe = %+v, %v; want generation 0, weight 0", a, err)
	}
}

func TestAbortSendsEveryoneToStableAtOnce(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	stable, canary := upstream(t, "v1"), upstream(t, "v2")
	mustApply(t, d, desired(1, 5000, []string{stable}, []string{canary}))
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	// Warm keep-alive connections to both versions first.
	for i := range 50 {
		if _, err := get(c, l.addr(), map[string]string{testUserHeader: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	mustApply(t, d, desired(2, 0, []string{stable}, []string{canary}))
	t.Logf("abort Apply returned after %v", time.Since(start))
	for i := range 500 {
		v, err := get(c, l.addr(), map[string]string{testUserHeader: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if v != "v1" {
			t.Fatalf("request %d after the abort returned served by %s", i, v)
		}
	}
}

// An abort reaches HAProxy even when the canary's host name no longer
// resolves (a crashed canary behind a headless Service has no address):
// the weight goes to 0 at once, and the error says what else failed.
func TestAbortLandsWhenTheCanaryNoLongerResolves(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	stable, canary := upstream(t, "v1"), upstream(t, "v2")
	mustApply(t, d, desired(1, 5000, []string{stable}, []string{canary}))
	dead := "http://canary.coalmine-test.invalid:8080"
	err := d.Apply(context.Background(), desired(2, 0, []string{stable}, []string{dead}))
	if err == nil || !strings.Contains(err.Error(), "canary") {
		t.Fatalf("Apply with an unresolvable canary: %v, want an error naming it", err)
	}
	c := newHTTPClient()
	defer c.CloseIdleConnections()
	for i := range 200 {
		v, err := get(c, l.addr(), map[string]string{testUserHeader: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if v != "v1" {
			t.Fatalf("request %d after the abort served by %s", i, v)
		}
	}
	if a, err := d.Observe(context.Background()); err != nil || a.Weight != 0 || a.Generation != 0 {
		t.Fatalf("Observe = %+v, %v; want weight 0 and generation 0 (not all applied)", a, err)
	}
}

func TestWeightChangesUnderLoadFailNoRequest(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	stable, canary := upstream(t, "v1"), upstream(t, "v2")
	mustApply(t, d, desired(1, 0, []string{stable}, []string{canary}))

	c := newHTTPClient()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				_, err := get(c, l.addr(), map[string]string{testUserHeader: fmt.Sprintf("g%d-%d", g, i)})
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	var slowest time.Duration
	for i := range 20 {
		// 0%, 5%, ... up and down again, so both directions are exercised.
		w := spec.Weight((i % 10) * 500)
		if i >= 10 {
			w = spec.Weight((19 - i) * 500)
		}
		start := time.Now()
		mustApply(t, d, desired(uint64(i+2), w, []string{stable}, []string{canary}))
		slowest = max(slowest, time.Since(start))
		// Let some requests through at each weight before the next change.
		for n := sent.Load(); sent.Load() < n+200; {
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d requests under 20 weight changes, %d failed; slowest Apply %v", sent.Load(), failed.Load(), slowest)
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed while the weight changed; first: %v", failed.Load(), sent.Load(), firstErr.Load())
	}
}

func TestPromotionServesNewVersionFromStableBackend(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	v1a, v1b := upstream(t, "v1"), upstream(t, "v1")
	v2a, v2b := upstream(t, "v2"), upstream(t, "v2")
	mustApply(t, d, desired(1, 5000, []string{v1a, v1b}, []string{v2a, v2b}))

	c := newHTTPClient()
	defer c.CloseIdleConnections()
	for i := range 100 { // keep-alive connections to every server
		if _, err := get(c, l.addr(), map[string]string{testUserHeader: strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// Promotion, as Argo moves the stable Service: stable := canary's
	// endpoints, weight 0.
	promoted := desired(2, 0, []string{v2a, v2b}, []string{v2a, v2b})
	mustApply(t, d, promoted)
	for i := range 300 {
		v, err := get(c, l.addr(), map[string]string{testUserHeader: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if v != "v2" {
			t.Fatalf("request %d after the promotion served by %s", i, v)
		}
	}
	servers, err := d.servers(context.Background(), d.cfg.StableBackend)
	if err != nil {
		t.Fatal(err)
	}
	ready := 0
	for _, s := range servers {
		if s.ready() {
			ready++
		}
	}
	if ready != 2 {
		t.Fatalf("stable backend has %d ready servers after the promotion, want 2", ready)
	}
	// The canary goes away: its servers leave service, stable still serves.
	mustApply(t, d, desired(3, 0, []string{v2a, v2b}, nil))
	a, err := d.Observe(context.Background())
	if err != nil || a.CanaryAvailable || a.Generation != 3 {
		t.Fatalf("without a canary, Observe = %+v, %v", a, err)
	}
	if v, err := get(c, l.addr(), nil); err != nil || v != "v2" {
		t.Fatalf("after the canary left: %q, %v", v, err)
	}
}

func TestHAProxyStoppedAndRestarted(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	stable, canary := upstream(t, "v1"), upstream(t, "v2")
	want := desired(5, 2500, []string{stable}, []string{canary})
	mustApply(t, d, want)
	if err := d.Check(context.Background()); err != nil {
		t.Fatal(err)
	}

	l.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, call := range map[string]func() error{
		"Apply":   func() error { return d.Apply(ctx, want) },
		"Observe": func() error { _, err := d.Observe(ctx); return err },
		"Check":   func() error { return d.Check(ctx) },
		"Remove":  func() error { return d.Remove(ctx) },
	} {
		start := time.Now()
		err := call()
		took := time.Since(start)
		if err == nil || !contains(err.Error(), "refused the connection") || !contains(err.Error(), "stats socket "+l.socket+" level admin") {
			t.Fatalf("%s with HAProxy stopped: %v", name, err)
		}
		// Bounded by the exchange timeout, generously: the point is no hang.
		if took > 3*d.cfg.Timeout.D() {
			t.Fatalf("%s with HAProxy stopped took %v", name, took)
		}
	}

	l.start() // runtime state is lost: the map is empty again
	a, err := d.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.Generation != 0 || a.Weight != 0 || a.CanaryAvailable {
		t.Fatalf("after a restart Observe = %+v, want generation 0, weight 0, no canary server", a)
	}
	mustApply(t, d, want)
	a, err = d.Observe(context.Background())
	if err != nil || a.Generation != 5 || a.Weight != 2500 || !a.CanaryAvailable {
		t.Fatalf("after re-applying, Observe = %+v, %v", a, err)
	}
}

func TestApplyHonoursContextWhenSocketHangs(t *testing.T) {
	// A listener that accepts and never answers, in place of HAProxy.
	dir := t.TempDir()
	sock := dir + "/hang.sock"
	ln, err := netListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := New("shop", spec.HAProxyRouter{RuntimeAPI: "unix://" + sock, Map: "/tmp/x.map", Timeout: spec.Duration(300 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Check(context.Background())
	if err == nil || !contains(err.Error(), "did not answer") {
		t.Fatalf("Check against a silent socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = d.Observe(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Observe cancelled: %v", err)
	}
}

func TestMirrorRoutesUnsupported(t *testing.T) {
	d, err := New("shop", spec.HAProxyRouter{RuntimeAPI: "unix:///nonexistent.sock"})
	if err != nil {
		t.Fatal(err)
	}
	w := desired(1, 0, []string{"http://127.0.0.1:1"}, []string{"http://127.0.0.1:2"})
	w.MirrorRoutes = []spec.MirrorRoute{{Name: "shadow"}}
	if err := d.Apply(context.Background(), w); !errors.Is(err, router.ErrUnsupported) {
		t.Fatalf("Apply with mirror routes: %v, want ErrUnsupported", err)
	}
}

// HAProxy holds idle keep-alive connections to the servers the promotion
// takes out of the stable backend; no request may reach the old version
// through them once Apply has returned, and none may fail while it runs.
// (A first design re-pointed fixed server slots with `set server addr`:
// HAProxy kept reusing their connections to the old addresses and this
// test caught hundreds of requests served by the old version.)
func TestPromotionUnderKeepAliveLoad(t *testing.T) {
	l := newLab(t)
	d := l.driver()
	var v1, v2 []string
	for range 4 {
		v1 = append(v1, upstream(t, "v1"))
		v2 = append(v2, upstream(t, "v2"))
	}
	mustApply(t, d, desired(1, 0, v1, v2))

	c := newHTTPClient()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	var promoted atomic.Bool
	var wg sync.WaitGroup
	var sent, failed, stale atomic.Int64
	var firstErr atomic.Value
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				after := promoted.Load()
				v, err := get(c, l.addr(), map[string]string{testUserHeader: fmt.Sprintf("g%d-%d", g, i)})
				sent.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				case after && v != "v2":
					stale.Add(1)
				}
			}
		}()
	}
	for n := sent.Load(); sent.Load() < n+500; {
		time.Sleep(time.Millisecond)
	}
	mustApply(t, d, desired(2, 0, v2, v2)) // stable := the canary's endpoints
	promoted.Store(true)
	for n := sent.Load(); sent.Load() < n+2000; {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	servers, err := d.servers(context.Background(), d.cfg.StableBackend)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests around a promotion: %d failed, %d served by the old version after Apply returned; stable backend now %+v", sent.Load(), failed.Load(), stale.Load(), servers)
	if failed.Load() != 0 || stale.Load() != 0 {
		t.Fatalf("%d failed (first: %v), %d served by the old version after the promotion", failed.Load(), firstErr.Load(), stale.Load())
	}
}

func TestCheckNamesWhatIsMissing(t *testing.T) {
	l := newLab(t)
	if err := l.driver().Check(context.Background()); err != nil {
		t.Fatalf("Check of a complete configuration: %v", err)
	}
	for name, c := range map[string]struct {
		rollout string
		change  func(*spec.HAProxyRouter)
		want    string
	}{
		"backend": {"shop", func(c *spec.HAProxyRouter) { c.CanaryBackend = "shop_nope" }, "HAProxy has no backend shop_nope (No such backend)"},
		"map":     {"shop", func(c *spec.HAProxyRouter) { c.Map = l.dir + "/other.map" }, "No such map"},
		// Another rollout's lines were never pasted: its global variable is missing.
		"lines": {"cart", func(c *spec.HAProxyRouter) { c.StableBackend, c.CanaryBackend = "shop_stable", "shop_canary" }, "set-var"},
	} {
		cfg := l.cfg
		c.change(&cfg)
		d, err := New(c.rollout, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Check(context.Background()); err == nil || !contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want an error saying %q", name, err, c.want)
		}
	}
}

func TestRuntimeAPIOverTCP(t *testing.T) {
	l := newLab(t)
	cfg := l.cfg
	cfg.RuntimeAPI = "tcp://127.0.0.1:" + strconv.Itoa(l.apiPort)
	d, err := New("shop", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustApply(t, d, desired(9, 100, []string{upstream(t, "v1")}, []string{upstream(t, "v2")}))
	if a, err := d.Observe(context.Background()); err != nil || a.Generation != 9 || a.Weight != 100 {
		t.Fatalf("Observe over TCP = %+v, %v", a, err)
	}
	l.stop()
	err = d.Check(context.Background())
	if err == nil || !contains(err.Error(), "stats socket ipv4@127.0.0.1:"+strconv.Itoa(l.apiPort)+" level admin") {
		t.Fatalf("Check over TCP with HAProxy stopped: %v", err)
	}
}
