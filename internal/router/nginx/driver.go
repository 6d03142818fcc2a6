package nginx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Defaults of spec.NGINXRouter.
var (
	DefaultTestCommand   = []string{"nginx", "-t"}
	DefaultReloadCommand = []string{"nginx", "-s", "reload"}
)

const (
	// statusTimeout bounds one status request.
	statusTimeout = 2 * time.Second
	// pollInterval spaces the status requests that wait for a reload.
	pollInterval = 10 * time.Millisecond
	// settle is how long the status must answer the new routing before
	// Apply returns. After a reload NGINX's master starts the new workers,
	// lets them run beside the old ones for about 100 ms, and only then
	// tells the old ones to stop accepting; a request in that window can
	// still meet the old routing.
	settle = 150 * time.Millisecond
	// reloadTimeout bounds the wait for the workers after a reload when
	// the caller's context allows longer.
	reloadTimeout = 10 * time.Second
	// commandWaitDelay bounds the wait for a command's output once it has
	// exited or been killed, in case it left a child holding the pipes.
	commandWaitDelay = time.Second
)

// fileMu serialises the write-test-reload sequence of every Driver in the
// process: `nginx -t` checks the whole configuration, so a rollout's test
// must not see another rollout's file half-way through its own change.
var fileMu sync.Mutex

// Driver drives one rollout's routing on an NGINX. It implements
// router.Driver.
type Driver struct {
	names         Names
	includeFile   string
	locationFile  string
	state         stateStore
	testCommand   []string
	reloadCommand []string
	statusAddress string
	statusURL     string
	client        *http.Client

	// applied is the last Desired that Apply made NGINX route with, or
	// nil before the first; Remove starts from it.
	applied *router.Desired
}

var _ router.Driver = (*Driver)(nil)

// New returns the driver of rollout on the NGINX that cfg describes.
func New(rollout string, cfg spec.NGINXRouter) (*Driver, error) {
	names, err := NamesFor(rollout)
	if err != nil {
		return nil, err
	}
	if cfg.IncludeFile == "" {
		return nil, errors.New("nginx router: includeFile is required: the path of the file coalmine writes, which the http block of nginx.conf includes")
	}
	if !filepath.IsAbs(cfg.IncludeFile) {
		return nil, fmt.Errorf("nginx router: includeFile %q must be an absolute path (NGINX and coalmine may not share a working directory)", cfg.IncludeFile)
	}
	listen, err := listenAddress(cfg.StatusAddress)
	if err != nil {
		return nil, fmt.Errorf("nginx router: %w", err)
	}
	stateDir := cfg.StateDir
	if stateDir == "" {
		stateDir = DefaultStateDir(cfg.IncludeFile)
	}
	if err := validStateDir(stateDir); err != nil {
		return nil, fmt.Errorf("nginx router: %w", err)
	}
	d := &Driver{
		names:         names,
		includeFile:   cfg.IncludeFile,
		locationFile:  LocationFile(cfg.IncludeFile),
		state:         stateStore{dir: stateDir},
		testCommand:   orDefault(cfg.TestCommand, DefaultTestCommand),
		reloadCommand: orDefault(cfg.ReloadCommand, DefaultReloadCommand),
		statusAddress: listen,
		statusURL:     "http://" + listen + names.StatusPath,
		client: &http.Client{
			Timeout: statusTimeout,
			// A fresh connection per request, so a status answer comes
			// from a worker that accepts connections now, not from an
			// old one kept alive across a reload.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		},
	}
	return d, nil
}

func orDefault(cmd, def []string) []string {
	if len(cmd) == 0 {
		return append([]string(nil), def...)
	}
	return append([]string(nil), cmd...)
}

// Names returns the names the rollout's include file declares.
func (d *Driver) Names() Names { return d.names }

// LocationFile is the location include the user's proxying location
// includes.
func (d *Driver) LocationFile() string { return d.locationFile }

// StateDir is the directory of the weight files.
func (d *Driver) StateDir() string { return d.state.dir }

// Backends names the two upstreams, as $proxy_host logs them.
func (d *Driver) Backends() map[string]spec.Role {
	return map[string]spec.Role{d.names.Stable: spec.RoleStable, d.names.Canary: spec.RoleCanary}
}

// Apply makes NGINX route as des says and returns once the status
// location answers the new routing. When NGINX's workers already run the
// include files des renders (only the weight or the generation changed),
// it swaps the weight files and reloads nothing. Otherwise it installs the
// new include files if `nginx -t` accepts them, swaps the weight files,
// and reloads NGINX. On any failure before the change took, the previous
// files are back in place.
func (d *Driver) Apply(ctx context.Context, des router.Desired) error {
	if des.Rollout != "" {
		if id, _ := Identifier(des.Rollout); id != d.names.ID {
			return fmt.Errorf("nginx router: this driver serves rollout %s, asked to apply %q", d.names.ID, des.Rollout)
		}
	}
	des.Rollout = d.names.ID
	if len(des.MirrorRoutes) > 0 {
		return errMirror()
	}
	r, err := Render(des, d.statusAddress, d.state.dir)
	if err != nil {
		return fmt.Errorf("nginx router: %w", err)
	}
	if err := d.install(ctx, r); err != nil {
		// An abort (weight 0) must reach NGINX even when the full routing
		// cannot pass nginx -t now, say a crashed canary's host name no
		// longer resolves: send everything to stable (generation 0, so
		// the routing is not reported applied) and report the rest.
		if des.Weight != 0 || des.Canary == nil || !errors.Is(err, errRefused) {
			return err
		}
		fallback := des
		fallback.Canary, fallback.HeaderRoutes, fallback.Generation = nil, nil, 0
		fr, ferr := Render(fallback, d.statusAddress, d.state.dir)
		if ferr == nil {
			ferr = d.install(ctx, fr)
		}
		if ferr != nil {
			return fmt.Errorf("%w; sending everything to stable failed too: %v", err, ferr)
		}
		return fmt.Errorf("%w; meanwhile NGINX sends everything to stable", err)
	}
	// Remove needs only where stable is; keep a copy the caller cannot
	// change under us.
	d.applied = &router.Desired{
		Rollout:    des.Rollout,
		Revision:   des.Revision,
		Generation: des.Generation,
		Stable:     router.Target{Version: des.Stable.Version, Endpoints: append([]string(nil), des.Stable.Endpoints...)},
	}
	return nil
}

func (d *Driver) install(ctx context.Context, r Rendered) error {
	fileMu.Lock()
	defer fileMu.Unlock()

	previous, existed, err := readIfExists(d.includeFile)
	if err != nil {
		return fmt.Errorf("nginx router: read the include file: %w", err)
	}
	previousLocation, locationExisted, err := readIfExists(d.locationFile)
	if err != nil {
		return fmt.Errorf("nginx router: read the location include file: %w", err)
	}
	if existed && locationExisted && bytes.Equal(previous, r.Text) && bytes.Equal(previousLocation, r.Location) {
		if a, err := d.status(ctx); err == nil && a.running == r.Status.Digest {
			// The workers run these very files: only the weight state
			// changes, and they see it on their next request.
			return d.swapWeight(ctx, r.Status)
		}
	}
	// The include file's directory (such as /etc/nginx/coalmine/, which
	// nginx.conf includes by a glob) may not exist before the first apply.
	if err := mkdirAll(filepath.Dir(d.includeFile)); err != nil {
		return fmt.Errorf("nginx router: create the include file's directory: %w", err)
	}
	if err := writeFileAtomic(d.locationFile, r.Location); err != nil {
		return fmt.Errorf("nginx router: write the location include file: %w", err)
	}
	if err := writeFileAtomic(d.includeFile, r.Text); err != nil {
		return restoreFile(d.locationFile, previousLocation, locationExisted, fmt.Errorf("nginx router: write the include file: %w", err))
	}
	previousState, stateWritten := "", false
	before, beforeErr := d.state.readStatus()
	lowered := beforeErr == nil && r.Status.Weight < before.Weight
	restore := func(cause error) error {
		cause = restoreFile(d.includeFile, previous, existed, cause)
		cause = restoreFile(d.locationFile, previousLocation, locationExisted, cause)
		if !stateWritten {
			return cause
		}
		if lowered {
			// A lower weight (an abort) stays in the weight files, which
			// the running workers read on every request.
			return fmt.Errorf("%w; the lower weight's files stay in place", cause)
		}
		if err := d.state.restore(previousState); err != nil {
			cause = fmt.Errorf("%w; restoring the previous weight files failed too: %v", cause, err)
		}
		return cause
	}
	if out, err := run(ctx, d.testCommand); err != nil {
		return restore(fmt.Errorf("nginx router: %s refused the new configuration, so the previous include files are kept: %w: %w%s", strings.Join(d.testCommand, " "), errRefused, err, quote(out)))
	}
	// The weight files go in before the reload: the old workers route
	// with them at once, and the new ones start with them.
	if previousState, err = d.state.write(r.Status); err != nil {
		return restore(fmt.Errorf("nginx router: %w", err))
	}
	stateWritten = true
	if out, err := run(ctx, d.reloadCommand); err != nil {
		err = fmt.Errorf("nginx router: %s failed (is NGINX running?): %w%s", strings.Join(d.reloadCommand, " "), err, quote(out))
		if !existed {
			// There was no file, so NGINX cannot have been running with
			// one: the new files, which the test accepted, let it start.
			return fmt.Errorf("%w; the include files and weight files are written and tested, NGINX reads them when it starts", err)
		}
		return restore(fmt.Errorf("%w; the previous include files are kept", err))
	}
	// NGINX's master checks the files again when it reloads (and binds the
	// status address, which the test does not): if it refuses, it keeps
	// the old configuration and says so only in its error log. The wait is
	// bounded for that case, and the previous files go back so the disk
	// says what NGINX runs.
	actx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if err := d.awaitStatus(actx, r.Status, settle); err != nil {
		err = restore(fmt.Errorf("%w (if NGINX refused the reload, its error log says why)", err))
		// The reload may only have been slow: reload again so NGINX runs
		// what the disk says rather than the files just taken back.
		if out, rerr := run(ctx, d.reloadCommand); rerr != nil {
			err = fmt.Errorf("%w; reloading the previous include files failed too: %v%s", err, rerr, quote(out))
		}
		return err
	}
	return nil
}

// swapWeight puts the weight state of st in place and waits for the
// status location to answer it. No settle time: every worker stats the
// files on each request, so the first answer shows what all of them do.
func (d *Driver) swapWeight(ctx context.Context, st Status) error {
	before, beforeErr := d.state.readStatus()
	previous, err := d.state.write(st)
	if err != nil {
		return fmt.Errorf("nginx router: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	if err := d.awaitStatus(actx, st, 0); err != nil {
		err = fmt.Errorf("%w (an open_file_cache or disable_symlinks on in the status server or the proxying location hides the weight files from NGINX)", err)
		if beforeErr == nil && st.Weight < before.Weight {
			// A lower weight (an abort) stays: sending the canary its
			// share again because the read-back is slow would undo it.
			return fmt.Errorf("%w; the lower weight's files stay in place", err)
		}
		if rerr := d.state.restore(previous); rerr != nil {
			err = fmt.Errorf("%w; restoring the previous weight files failed too: %v", err, rerr)
		}
		return err
	}
	return nil
}

func readIfExists(path string) ([]byte, bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// restoreFile puts a file back as it was before a change that did not
// take, and adds its own failure to cause.
func restoreFile(path string, previous []byte, existed bool, cause error) error {
	var err error
	if existed {
		err = writeFileAtomic(path, previous)
	} else if err = os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("%w; restoring %s failed too: %v", cause, path, err)
	}
	return cause
}

// awaitStatus polls the status location until the workers run want's
// routing with want's weight state, for the settle time.
func (d *Driver) awaitStatus(ctx context.Context, want Status, settle time.Duration) error {
	var since time.Time
	var last answer
	var lastErr error
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		a, err := d.status(ctx)
		switch {
		case err == nil && a.running == want.Digest && a.hasState && a.state == want:
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) >= settle {
				return nil
			}
		default:
			since, last, lastErr = time.Time{}, a, err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("nginx router: the status at %s did not answer generation %d before the deadline: %w", d.statusURL, want.Generation, lastErr)
			}
			return fmt.Errorf("nginx router: the status at %s answers generation %d (weight state for digest %s, workers running %s), not %d (digest %s): %w",
				d.statusURL, last.state.Generation, last.state.Digest, last.running, want.Generation, want.Digest, ctx.Err())
		case <-tick.C:
		}
	}
}

// Observe reads from NGINX which routing its workers serve: the weight
// state's generation only when it was written for the include files the
// workers run; otherwise generation 0 (not applied) with the weight the
// files route with.
func (d *Driver) Observe(ctx context.Context) (router.Applied, error) {
	a, err := d.status(ctx)
	if errors.Is(err, errNoStatus) {
		return router.Applied{}, nil
	}
	if err != nil {
		return router.Applied{}, err
	}
	if !a.hasState {
		return router.Applied{}, nil
	}
	if a.state.Digest != a.running {
		return router.Applied{Weight: a.state.Weight, CanaryAvailable: a.state.CanaryAvailable}, nil
	}
	return router.Applied{Generation: a.state.Generation, Weight: a.state.Weight, CanaryAvailable: a.state.CanaryAvailable}, nil
}

// errRefused marks a configuration the test command refused.
var errRefused = errors.New("refused by the test command")

// errNoStatus means NGINX answers on the status address but has no
// status for this rollout: it does not run the include file (yet).
var errNoStatus = errors.New("no status for this rollout")

// answer is what the status location says: the digest of the include
// files the answering worker runs, and the weight state's status file if
// there is one.
type answer struct {
	running  string
	hasState bool
	state    Status
}

func (d *Driver) status(ctx context.Context) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.statusURL, nil)
	if err != nil {
		return answer{}, fmt.Errorf("nginx router: status request: %w", err)
	}
	req.Host = d.names.StatusHost
	resp, err := d.client.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("nginx router: status of rollout %s at %s: %w (is NGINX running with the include file?)", d.names.ID, d.statusURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return answer{}, fmt.Errorf("nginx router: status at %s: %w", d.statusURL, err)
	}
	a := answer{running: resp.Header.Get(DigestHeader)}
	if resp.StatusCode == http.StatusNotFound {
		if a.running != "" {
			// The workers run the include file, but the weight files
			// are gone: generation 0 until Apply writes them again.
			return a, nil
		}
		return a, fmt.Errorf("nginx router: %s answers 404: %w (the http block does not include %s, or coalmine has not applied it yet)", d.statusURL, errNoStatus, d.includeFile)
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("nginx router: status at %s answered %s%s", d.statusURL, resp.Status, quote(body))
	}
	if err := json.Unmarshal(body, &a.state); err != nil {
		return a, fmt.Errorf("nginx router: status at %s is not coalmine's (another server on that address?): %w%s", d.statusURL, err, quote(body))
	}
	if a.state.Rollout != d.names.ID {
		return a, fmt.Errorf("nginx router: status at %s is rollout %q's, not %q's", d.statusURL, a.state.Rollout, d.names.ID)
	}
	if a.running == "" {
		return a, fmt.Errorf("nginx router: status at %s has no %s header: NGINX does not run coalmine's include file for %s", d.statusURL, DigestHeader, d.names.ID)
	}
	a.hasState = true
	return a, nil
}

// Check reports whether NGINX answers the rollout's status. Before the
// first Apply NGINX may not run the include file yet; then it is enough
// that the test command accepts the configuration.
func (d *Driver) Check(ctx context.Context) error {
	_, err := d.status(ctx)
	if err == nil {
		return nil
	}
	if d.applied != nil {
		return err
	}
	if out, terr := run(ctx, d.testCommand); terr != nil {
		return fmt.Errorf("%w; and %s fails: %v%s", err, strings.Join(d.testCommand, " "), terr, quote(out))
	}
	return nil
}

// Remove routes every request to stable. The include files stay, because
// the user's proxy_pass reads their variables; they hold only the stable
// upstream from then on.
func (d *Driver) Remove(ctx context.Context) error {
	des := d.applied
	if des == nil {
		stable, gen, err := d.stableFromFile()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // coalmine never routed this rollout here
		}
		if err != nil {
			return err
		}
		des = &router.Desired{Rollout: d.names.ID, Generation: gen, Stable: stable}
	}
	return d.Apply(ctx, router.Desired{
		Rollout:    d.names.ID,
		Revision:   des.Revision,
		Generation: des.Generation,
		Stable:     des.Stable,
	})
}

// stableFromFile reads the stable endpoints back from the include file a
// previous process wrote, and the generation from its weight state, for a
// Remove with no Apply before it.
func (d *Driver) stableFromFile() (router.Target, uint64, error) {
	text, err := os.ReadFile(d.includeFile)
	if err != nil {
		return router.Target{}, 0, err
	}
	var t router.Target
	var gen uint64
	in := false
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "upstream "+d.names.Stable+" {":
			in = true
		case in && line == "}":
			in = false
		case in && strings.HasPrefix(line, "server ") && strings.HasSuffix(line, ";"):
			t.Endpoints = append(t.Endpoints, "http://"+strings.TrimSuffix(strings.TrimPrefix(line, "server "), ";"))
		}
	}
	if st, err := d.state.readStatus(); err == nil {
		gen = st.Generation
	}
	if len(t.Endpoints) == 0 {
		return router.Target{}, 0, fmt.Errorf("nginx router: %s holds no upstream %s: cannot tell where stable is; apply the rollout first", d.includeFile, d.names.Stable)
	}
	return t, gen, nil
}

// writeFileAtomic replaces path with data through a temporary file beside
// it, so NGINX never reads half a file. The temporary name starts with a
// dot and does not end in .conf, so an `include dir/*.conf` skips it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".coalmine-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(0o644)
	}
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// run runs a command and returns its output, stderr first (where NGINX
// writes its diagnostics).
func run(ctx context.Context, argv []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = commandWaitDelay
	err := cmd.Run()
	out := append(stderr.Bytes(), stdout.Bytes()...)
	return out, err
}

// quote formats command or response output for an error message.
func quote(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	const max = 2000
	if len(s) > max {
		s = s[:max] + "…"
	}
	return ": " + s
}
