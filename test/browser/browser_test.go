// Package browser drives the dashboard in a real headless Chromium: it
// starts coalmine in-process on loopback with a token, real HTTP backends
// and a rollout paused at an indefinite pause step, and checks what an
// operator sees and does: the token prompt, the list, the rollout with its
// weight and steps, live charts, and a promote click that completes the
// release. Screenshots go to test/browser/artifacts/ (a CI artifact).
//
// Chromium is Debian's package (apt-get install -y chromium); without it
// the test skips, or fails when COALMINE_REQUIRE_INTEGRATION=1 (CI).
// COALMINE_CHROMIUM names another binary.
package browser

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coalmine-dev/coalmine/internal/app"
	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

const (
	token       = "browser-test-token-3f9a"
	rolloutName = "shop"
)

// artifacts is where the screenshots go, relative to this package.
const artifacts = "artifacts"

func TestDashboardShowsAPausedRolloutAndPromotesIt(t *testing.T) {
	chromium := requireChromium(t)
	a, listen := startCoalmine(t)
	waitPhase(t, a, model.PhasePaused, 30*time.Second)
	generateLoad(t, "http://"+listen+"/")

	b := newBrowser(t, chromium)
	base := "http://" + a.AdminAddr()

	// Without a token the page loads (its files are public) and asks for it.
	b.do("open the dashboard without a token",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#banner:not(.hidden)")))
	if banner := b.text("#banner"); !strings.Contains(banner, "token") {
		t.Errorf("banner without a token = %q, want it to ask for the token", banner)
	}

	// Enter the token: the list shows the rollout.
	b.do("enter the token",
		chromedp.SendKeys(chromedp.CSS("#token"), token),
		chromedp.Click(chromedp.CSS("#token-save")),
		chromedp.WaitVisible(chromedp.CSS(`a[data-rollout="`+rolloutName+`"]`)),
		chromedp.WaitNotVisible(chromedp.CSS("#banner")))
	row := b.text(`tr[data-rollout="` + rolloutName + `"]`)
	for _, want := range []string{rolloutName, "Paused", "2/3", "20% / 20%", "v1", "v2"} {
		if !strings.Contains(row, want) {
			t.Errorf("list row %q lacks %q", row, want)
		}
	}
	// The Replicas panel: this server alone, leading (the embedded store).
	b.do("see the replicas panel",
		chromedp.WaitVisible(chromedp.CSS(`#replicas-panel tr[data-replica]`)))
	if rep := b.text(`#replicas-panel`); !strings.Contains(rep, "leader") || !strings.Contains(rep, "live") {
		t.Errorf("replicas panel %q does not show this server as the live leader", rep)
	}
	if loc := b.eval(`location.href`); strings.Contains(loc, token) {
		t.Errorf("the token is in the URL: %s", loc)
	}
	if got := b.eval(`sessionStorage.getItem('coalmine.token')`); got != token {
		t.Errorf("sessionStorage token = %q, want the token", got)
	}
	b.screenshot("rollouts.png")

	// The rollout page: name, Paused, weight 20 and the three steps, the
	// pause step current.
	b.do("open the rollout",
		chromedp.Click(chromedp.CSS(`a[data-rollout="`+rolloutName+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#ro-phase[data-phase="Paused"]`)))
	if got := b.text("#ro-name"); got != rolloutName {
		t.Errorf("rollout name = %q, want %q", got, rolloutName)
	}
	if got := b.text("#ro-phase"); got != "Paused" {
		t.Errorf("phase = %q, want Paused", got)
	}
	if got := b.text("#ro-reason"); !strings.Contains(got, "PauseStep") {
		t.Errorf("pause reason = %q, want PauseStep", got)
	}
	if got := b.text("#ro-weight"); !strings.HasPrefix(got, "20%") {
		t.Errorf("weight = %q, want 20%%", got)
	}
	if got := b.text("#ro-observed"); got != "20%" {
		t.Errorf("observed weight = %q, want 20%%", got)
	}
	if got := b.text("#ro-step"); got != "2/3" {
		t.Errorf("step = %q, want 2/3", got)
	}
	steps := b.evalStrings(`[...document.querySelectorAll('#steps li .what')].map(e => e.textContent)`)
	if want := []string{"Set weight 20%", "Pause until promoted", "Set weight 100%"}; !slices.Equal(steps, want) {
		t.Errorf("steps = %q, want %q", steps, want)
	}
	if got := b.eval(`document.querySelector('#steps li[aria-current=step]')?.dataset.step ?? 'none'`); got != "1" {
		t.Errorf("current step = %s, want 1 (the pause)", got)
	}
	if got := b.text(`#steps li[aria-current=step] .note`); got != "waiting for promote" {
		t.Errorf("current step note = %q", got)
	}
	// The event log came from /events and the live charts from /series.
	b.do("see the event log and live charts",
		chromedp.WaitVisible(chromedp.CSS(`#events tr[data-type="rollout-paused"]`)),
		chromedp.WaitReady(chromedp.CSS(`[data-chart="rps"] path.line.canary`)),
		chromedp.WaitReady(chromedp.CSS(`[data-chart="rps"] path.line.stable`)),
		chromedp.WaitReady(chromedp.CSS(`[data-chart="latency"] path.line.canary`)),
		chromedp.WaitReady(chromedp.CSS(`[data-chart="weight"] path.line.canary`)))
	if conn := b.text("#conn"); conn != "live" {
		t.Errorf("connection = %q, want live (the SSE watch)", conn)
	}
	// Let the charts gather a few more seconds of traffic for the picture.
	time.Sleep(4 * time.Second)
	b.screenshot("dashboard.png")

	// Promote: the pause step completes, setWeight 100 applies and the
	// rollout completes; the page follows over the watch stream.
	b.do("click promote and see the rollout complete",
		chromedp.Click(chromedp.CSS("#btn-promote")),
		chromedp.WaitVisible(chromedp.CSS(`#ro-phase[data-phase="Healthy"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#events tr[data-type="rollout-completed"]`)))
	if got := b.text("#action-result"); !strings.HasPrefix(got, "promote: done") {
		t.Errorf("action result = %q, want promote: done", got)
	}
	if got := b.text("#ro-step"); got != "done (3/3)" {
		t.Errorf("step after promote = %q, want done (3/3)", got)
	}
	if got := b.eval(`String(document.querySelectorAll('#steps li.done').length)`); got != "3" {
		t.Errorf("%s steps marked done, want 3", got)
	}
	for _, typ := range []string{"rollout-promoted", "rollout-step-completed", "rollout-weight-changed"} {
		if got := b.eval(`String(document.querySelectorAll('#events tr[data-type="` + typ + `"]').length)`); got == "0" {
			t.Errorf("the event log shows no %s", typ)
		}
	}
	if got := b.eval(`document.querySelector('#btn-promote').disabled ? 'disabled' : 'enabled'`); got != "disabled" {
		t.Errorf("promote is %s with nothing to roll out", got)
	}
	v, err := a.Controller.Get(context.Background(), rolloutName)
	if err != nil || v.Status.Phase != model.PhaseHealthy || v.Status.StableVersion != "v2" {
		t.Errorf("server side after the click: %v %+v, want Healthy with stable v2", err, v.Status)
	}
	// The charts go on with the new stable version and keep the lines of
	// the revision's versions.
	b.do("see the new stable version in the charts",
		void(chromedp.Poll[bool](`[...document.querySelectorAll('[data-chart="rps"] .legend .key')].some(k => k.textContent.startsWith('stable v2'))`,
			chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(200*time.Millisecond))))
	legend := b.text(`[data-chart="rps"] .legend`)
	for _, want := range []string{"stable v1", "canary v2", "stable v2"} {
		if !strings.Contains(legend, want) {
			t.Errorf("requests chart legend %q lacks %s", legend, want)
		}
	}
	b.screenshot("dashboard-promoted.png")

	// A command that no longer applies shows the API's 409 reason.
	b.do("retry on a healthy rollout",
		chromedp.RemoveAttribute(chromedp.CSS("#btn-retry"), "disabled"),
		chromedp.Click(chromedp.CSS("#btn-retry")),
		chromedp.WaitVisible(chromedp.CSS("#action-result.err")))
	if got := b.text("#action-result"); !strings.Contains(got, "409 Conflict") {
		t.Errorf("result of a retry that does not apply = %q, want the 409 reason", got)
	}

	b.checkConsole()
}

// A server without a token shows no token field; an unbounded interval
// reads ∞; a metric the run never measured says so (Skipped) instead of
// Successful; and an aborted rollout cannot be promoted (the API would
// refuse), only retried or promoted in full.
func TestDashboardWithoutTokenAndAnAbortedRollout(t *testing.T) {
	chromium := requireChromium(t)
	w20 := 20.0
	hour := spec.Duration(time.Hour)
	tpl := spec.AnalysisTemplate{APIVersion: spec.APIVersion, Kind: spec.KindAnalysisTemplate, Metadata: spec.Metadata{Name: "judge"},
		Spec: spec.AnalysisTemplateSpec{Metrics: []spec.Metric{
			{Name: "error-rate", Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}},
				Judge: &spec.Judge{Compare: spec.JudgeCompareErrorRate, MaxRelativeIncrease: new(0.5), Alpha: new(0.01), MaxDuration: &hour}},
			{Name: "later", Provider: spec.Provider{Builtin: &spec.BuiltinProvider{}}, InitialDelay: &hour,
				SuccessCondition: "result.canary.errorRate < 0.05"},
		}}}
	a, listen := startCoalmineWith(t, "", []spec.Step{{SetWeight: &w20}, {Analysis: &spec.AnalysisStep{Templates: []spec.TemplateRef{{TemplateName: "judge"}}}}},
		[]spec.AnalysisTemplate{tpl})
	waitPhase(t, a, model.PhaseProgressing, 30*time.Second)
	generateLoad(t, "http://"+listen+"/")
	b := newBrowser(t, chromium)
	base := "http://" + a.AdminAddr()

	b.do("open the rollout on a server without a token",
		chromedp.Navigate(base+"/#/rollouts/"+rolloutName),
		chromedp.WaitVisible(chromedp.CSS(`#ro-phase[data-phase="Progressing"]`)))
	if got := b.eval(`document.querySelector('#token-form').offsetParent === null ? 'hidden' : 'shown'`); got != "hidden" {
		t.Errorf("the token field is %s on a server that needs no token", got)
	}
	// Neither version has errors, so the ratio's upper bound is unbounded.
	b.do("see an unbounded interval as ∞",
		void(chromedp.Poll[bool](`document.body.innerText.includes(', ∞]')`,
			chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(200*time.Millisecond))))
	if body := b.eval(`document.body.innerText`); strings.Contains(body, "e+308") {
		t.Errorf("the page prints the largest float instead of ∞")
	}
	b.screenshot("dashboard-unbounded.png")

	if _, err := a.Controller.Abort(context.Background(), rolloutName); err != nil {
		t.Fatal(err)
	}
	b.do("see the rollout aborted",
		chromedp.WaitVisible(chromedp.CSS(`#ro-phase[data-phase="Degraded"]`)))
	if got := b.eval(`document.querySelector('#btn-promote').disabled ? 'disabled' : 'enabled'`); got != "disabled" {
		t.Errorf("promote is %s on an aborted rollout (the API refuses it)", got)
	}
	for sel, want := range map[string]string{"#btn-retry": "enabled", "#btn-promote-full": "enabled"} {
		if got := b.eval(`document.querySelector('` + sel + `').disabled ? 'disabled' : 'enabled'`); got != want {
			t.Errorf("%s is %s on an aborted rollout, want %s", sel, got, want)
		}
	}
	b.do("see the unmeasured metric as Skipped",
		void(chromedp.Poll[bool](`[...document.querySelectorAll('.badge')].some(e => e.textContent === 'Skipped')`,
			chromedp.WithPollingTimeout(20*time.Second), chromedp.WithPollingInterval(200*time.Millisecond))))
	b.screenshot("dashboard-aborted.png")
	b.checkConsole()
}

// ---------------------------------------------------------------- coalmine

// startCoalmine runs coalmine in-process with a token, on loopback, with
// the rollout setWeight 20 → pause (until promoted) → setWeight 100 over
// two real backends. It returns the app and the proxy's address.
func startCoalmine(t *testing.T) (*app.App, string) {
	t.Helper()
	w20, w100 := 20.0, 100.0
	return startCoalmineWith(t, token, []spec.Step{{SetWeight: &w20}, {Pause: &spec.PauseStep{}}, {SetWeight: &w100}}, nil)
}

// startCoalmineWith runs coalmine in-process on loopback with the given
// token (none when empty), steps and templates, over two real backends.
func startCoalmineWith(t *testing.T, token string, steps []spec.Step, templates []spec.AnalysisTemplate) (*app.App, string) {
	t.Helper()
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	listen := freeAddr(t)
	r := spec.Rollout{APIVersion: spec.APIVersion, Kind: spec.KindRollout, Metadata: spec.Metadata{Name: rolloutName},
		Spec: spec.RolloutSpec{
			Listen:   listen,
			Stable:   spec.VersionSpec{Version: "v1", Endpoints: []string{stable}},
			Canary:   &spec.VersionSpec{Version: "v2", Endpoints: []string{canary}},
			Strategy: spec.Strategy{Canary: spec.CanaryStrategy{Steps: steps}},
		}}
	r.SetDefaults()
	if errs := r.Validate(); len(errs) > 0 {
		t.Fatalf("test rollout is invalid: %v", errs)
	}
	for i := range templates {
		templates[i].SetDefaults()
	}
	a, err := app.Start(context.Background(), app.Config{
		Rollouts: []spec.Rollout{r}, Templates: templates, Admin: "127.0.0.1:0", DataDir: t.TempDir(), Token: token,
	})
	if err != nil {
		t.Fatalf("start coalmine: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return a, listen
}

func waitPhase(t *testing.T, a *app.App, phase model.Phase, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var v model.View
	var err error
	for time.Now().Before(deadline) {
		v, err = a.Controller.Get(context.Background(), rolloutName)
		if err == nil && v.Status.Phase == phase {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("rollout did not reach %s within %s: %v %+v", phase, within, err, v.Status)
}

func startBackend(t *testing.T, version string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			time.Sleep(time.Duration(2+rand.IntN(4)) * time.Millisecond)
		}
		_, _ = io.WriteString(w, version)
	})}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// generateLoad sends about 100 requests a second through the proxy until
// the test ends, so that the charts have traffic to draw.
func generateLoad(t *testing.T, url string) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 2 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(40 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if res, err := client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// ----------------------------------------------------------------- browser

// requireChromium finds the browser, or skips (fails in CI).
func requireChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("COALMINE_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const msg = "Chromium is not installed: apt-get install -y chromium (Debian), or set COALMINE_CHROMIUM to a Chrome binary"
	if os.Getenv("COALMINE_REQUIRE_INTEGRATION") == "1" {
		t.Fatal(msg + " (COALMINE_REQUIRE_INTEGRATION=1)")
	}
	t.Skip(msg + "; skipping")
	return ""
}

type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

// newBrowser starts a headless Chromium with a fresh profile. The browser
// lives until the test ends.
func newBrowser(t *testing.T, path string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it must have no deadline, which
	// would stop the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	b := &browser{t: t, ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.messages = append(b.messages, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions with a deadline; on failure it saves a screenshot and
// the page's text, and fails the test.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	b.screenshot("failure.png")
	page := b.evalQuiet(`document.body.innerText`)
	b.checkConsole()
	b.t.Fatalf("%s: %v\npage text:\n%s", what, err, page)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return strings.TrimSpace(s)
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return s
}

func (b *browser) evalQuiet(expr string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return s
}

func (b *browser) evalStrings(expr string) []string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return s
}

// screenshot saves the whole page as a PNG under artifacts/ and logs where.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	path, err := filepath.Abs(filepath.Join(artifacts, name))
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		b.t.Errorf("save screenshot %s: %v", name, err)
		return
	}
	b.t.Logf("screenshot: %s (%s KiB)", path, strconv.Itoa(len(png)/1024))
}

// void drops an action's value.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := a(ctx, t)
		return err
	})
}

// checkConsole fails on script exceptions and Content-Security-Policy
// violations. The browser's own network errors (the 401 before the token
// was entered) are expected.
func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, m := range b.messages {
		switch {
		case m.IsException():
			errs = append(errs, errors.New("exception: "+m.Text))
		case strings.Contains(m.Text, "Content Security Policy"):
			errs = append(errs, errors.New("CSP: "+m.Text))
		case m.Type == chromedp.ConsoleError && m.Source != "network":
			errs = append(errs, errors.New("console error: "+m.Text))
		}
	}
	if err := errors.Join(errs...); err != nil {
		b.t.Errorf("the page logged errors:\n%v", err)
	}
}
