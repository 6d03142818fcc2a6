// Package haproxy drives an HAProxy that users already run, through its
// runtime API (the stats socket at level admin), so that coalmine moves a
// rollout's traffic without a reload. The frontend decides each request
// from entries of a map file that coalmine sets at run time: the canary
// weight, a per-revision salt for stickiness, header routes and the
// generation that proves what HAProxy holds. The two backends' servers
// are added, enabled and disabled at run time to match the versions'
// endpoints (`add server`, `set server ... state`).
// ConfigLines gives the haproxy.cfg lines that read the map.
package haproxy

import (
	"context"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// DefaultMap is the map file when the spec leaves map out.
const DefaultMap = "/etc/haproxy/coalmine.map"

// Defaults fills what cfg leaves out: backends NAME_stable and
// NAME_canary, the map /etc/haproxy/coalmine.map, a 2 s timeout.
func Defaults(rollout string, cfg spec.HAProxyRouter) spec.HAProxyRouter {
	if cfg.StableBackend == "" {
		cfg.StableBackend = rollout + "_stable"
	}
	if cfg.CanaryBackend == "" {
		cfg.CanaryBackend = rollout + "_canary"
	}
	if cfg.Map == "" {
		cfg.Map = DefaultMap
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = spec.Duration(DefaultTimeout)
	}
	return cfg
}

// RegexMap is the second map file, beside the main one, that holds the
// regex header routes: HAProxy matches every entry of a map it reads with
// map_reg as a regular expression, so exact and prefix values (which may
// hold '(' or '.') cannot share a file with them.
// /etc/haproxy/coalmine.map gives /etc/haproxy/coalmine.regex.map.
func RegexMap(mapPath string) string {
	if base, ok := strings.CutSuffix(mapPath, ".map"); ok {
		return base + ".regex.map"
	}
	return mapPath + ".regex"
}

// Driver moves one rollout's traffic on one HAProxy. It implements
// router.Driver.
type Driver struct {
	rollout  string
	cfg      spec.HAProxyRouter
	regexMap string
	client   *Client
	resolver *net.Resolver
}

var _ router.Driver = (*Driver)(nil)

// New returns the driver of rollout on the HAProxy cfg describes. It
// checks the configuration only; Check asks HAProxy.
func New(rollout string, cfg spec.HAProxyRouter) (*Driver, error) {
	if err := validRollout(rollout); err != nil {
		return nil, fmt.Errorf("HAProxy router: %w", err)
	}
	cfg = Defaults(rollout, cfg)
	for _, b := range []struct{ field, name string }{{"stableBackend", cfg.StableBackend}, {"canaryBackend", cfg.CanaryBackend}} {
		if !validProxyName(b.name) {
			return nil, fmt.Errorf("HAProxy router of rollout %s: %s %q is not an HAProxy backend name (letters, digits, '-', '_', '.' and ':')", rollout, b.field, b.name)
		}
	}
	if cfg.StableBackend == cfg.CanaryBackend {
		return nil, fmt.Errorf("HAProxy router of rollout %s: stableBackend and canaryBackend are both %q: each version needs its own backend", rollout, cfg.StableBackend)
	}
	if strings.ContainsAny(cfg.Map, " \t#,()\\") || checkArg("map", cfg.Map) != nil || !filepath.IsAbs(cfg.Map) {
		return nil, fmt.Errorf("HAProxy router of rollout %s: map %q must be an absolute file path without spaces, '#', ',', '(', ')' or '\\' (it is written into haproxy.cfg as is)", rollout, cfg.Map)
	}
	client, err := NewClient(cfg.RuntimeAPI, cfg.Timeout.D())
	if err != nil {
		return nil, fmt.Errorf("HAProxy router of rollout %s: %w", rollout, err)
	}
	return &Driver{rollout: rollout, cfg: cfg, regexMap: RegexMap(cfg.Map), client: client, resolver: net.DefaultResolver}, nil
}

func validProxyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Config returns the configuration with its defaults filled in.
func (d *Driver) Config() spec.HAProxyRouter { return d.cfg }

// Backends names the two backends with the role each serves.
func (d *Driver) Backends() map[string]spec.Role {
	return map[string]spec.Role{d.cfg.StableBackend: spec.RoleStable, d.cfg.CanaryBackend: spec.RoleCanary}
}

// Apply makes HAProxy route as want says, in an order that never sends a
// request where nothing can serve it: it first marks the generation as
// changing (0), adds and readies every wanted server, sets the salt, header
// routes and weight, puts the servers no longer wanted into maintenance,
// and writes the generation last, so Observe reports it only once all the
// rest holds. A failure stops there and leaves generation 0 behind, which
// tells the caller to apply again. Re-applying what HAProxy holds sends no
// change at all.
func (d *Driver) Apply(ctx context.Context, want router.Desired) error {
	cmds, err := d.plan(ctx, want)
	if err != nil {
		// An abort (or any lower weight) must reach HAProxy even when the
		// rest cannot be planned now, say a crashed canary's host name no
		// longer resolves: lower the weight alone, and report the rest.
		if lowered := d.lowerWeightOnly(ctx, want); lowered != nil && !strings.Contains(err.Error(), lowered.Error()) {
			err = fmt.Errorf("%w (lowering the weight alone failed too: %v)", err, lowered)
		}
		return fmt.Errorf("HAProxy router of rollout %s, generation %d: %w", d.rollout, want.Generation, err)
	}
	if err := d.run(ctx, cmds); err != nil {
		return fmt.Errorf("HAProxy router of rollout %s, generation %d: %w", d.rollout, want.Generation, err)
	}
	return nil
}

func (d *Driver) plan(ctx context.Context, want router.Desired) ([]command, error) {
	if want.Rollout != "" && want.Rollout != d.rollout {
		return nil, fmt.Errorf("desired routing is for rollout %q, not this driver's", want.Rollout)
	}
	if len(want.MirrorRoutes) > 0 {
		names := make([]string, len(want.MirrorRoutes))
		for i, m := range want.MirrorRoutes {
			names[i] = m.Name
		}
		return nil, fmt.Errorf("mirror routes (%s): HAProxy cannot copy requests to a second backend: %w", strings.Join(names, ", "), router.ErrUnsupported)
	}
	if want.Weight > spec.MaxWeight {
		return nil, fmt.Errorf("weight %d basis points is above 10000", want.Weight)
	}
	if want.Canary == nil && want.Weight != 0 {
		return nil, fmt.Errorf("weight %s%% with no canary", want.Weight)
	}
	if want.Generation > math.MaxInt64 {
		return nil, fmt.Errorf("generation %d does not fit HAProxy's integer map values", want.Generation)
	}
	stableAddrs, err := resolveEndpoints(ctx, d.resolver, "stable", want.Stable.Endpoints)
	if err != nil {
		return nil, err
	}
	lines, err := d.declared(ctx)
	if err != nil {
		return nil, err
	}
	if u := strings.ToLower(want.UserHeader); u != lines.userHeader {
		return nil, fmt.Errorf("the rollout's user header is %q but coalmine's lines in haproxy.cfg hash %q: generate the lines again with the rollout's user header, paste them and reload HAProxy", u, lines.userHeader)
	}
	var canaryAddrs []string
	var routes routeEntries
	if want.Canary != nil {
		if canaryAddrs, err = resolveEndpoints(ctx, d.resolver, "canary", want.Canary.Endpoints); err != nil {
			return nil, err
		}
		// Without a canary every request goes to stable, so no route
		// entry is needed; with one, routes go in.
		if routes, err = buildRoutes(d.rollout, want.HeaderRoutes, lines.routes); err != nil {
			return nil, err
		}
	}
	mainMap, err := d.showMap(ctx, d.cfg.Map, false)
	if err != nil {
		return nil, err
	}
	regexMap, err := d.showMap(ctx, d.regexMap, len(routes.regex) == 0)
	if err != nil {
		return nil, err
	}
	cur := ofRollout(mainMap, d.rollout+":", routesPrefix(d.rollout))
	curRegex := ofRollout(regexMap, regexRoutesPrefix(d.rollout))
	stableServers, err := d.servers(ctx, d.cfg.StableBackend)
	if err != nil {
		return nil, err
	}
	canaryServers, err := d.servers(ctx, d.cfg.CanaryBackend)
	if err != nil {
		return nil, err
	}
	enableStable, retireStable, err := planServers(d.cfg.StableBackend, stableServers, stableAddrs)
	if err != nil {
		return nil, err
	}
	enableCanary, retireCanary, err := planServers(d.cfg.CanaryBackend, canaryServers, canaryAddrs)
	if err != nil {
		return nil, err
	}
	gen := strconv.FormatUint(want.Generation, 10)
	exactAdds, exactDels := planExact(d.cfg.Map, cur, d.rollout, routes.exact)
	prefixAdds, prefixDels := planList(d.cfg.Map, cur, d.rollout+"/prefix/", routes.prefix)
	regexAdds, regexDels := planList(d.regexMap, curRegex, regexRoutesPrefix(d.rollout), routes.regex)

	var cmds []command
	setWeight := setEntry(d.cfg.Map, cur, weightKey(d.rollout), strconv.Itoa(int(want.Weight)))
	var lowerFirst []command
	if w, ok := cur.get(weightKey(d.rollout)); ok {
		if n, err := strconv.Atoi(w); err == nil && int(want.Weight) < n {
			// A lower weight (an abort) takes effect before anything else.
			lowerFirst, setWeight = setWeight, nil
		}
	}
	changes := [][]command{
		lowerFirst,
		enableStable, enableCanary,
		setEntry(d.cfg.Map, cur, saltKey(d.rollout), strconv.FormatInt(salt(d.rollout, want.Revision), 10)),
		exactAdds, prefixAdds, regexAdds,
		setWeight,
		exactDels, prefixDels, regexDels,
		retireStable, retireCanary,
	}
	for _, c := range changes {
		cmds = append(cmds, c...)
	}
	if old, ok := cur.get(generationKey(d.rollout)); ok && old != gen && old != "0" && len(cmds) > 0 {
		// Observe must not report the old generation while the routing is
		// half way to the new one (or stuck there after a failure).
		cmds = append(setEntry(d.cfg.Map, cur, generationKey(d.rollout), "0"), cmds...)
	}
	return append(cmds, setEntry(d.cfg.Map, cur, generationKey(d.rollout), gen)...), nil
}

// lowerWeightOnly sets the rollout's weight entry, and nothing else, when
// want lowers it: the generation goes to 0 first, so the routing is not
// reported applied, and the caller applies the whole again later. It does
// nothing (nil) when the weight does not go down.
func (d *Driver) lowerWeightOnly(ctx context.Context, want router.Desired) error {
	entries, err := d.showMap(ctx, d.cfg.Map, false)
	if err != nil {
		return err
	}
	cur := ofRollout(entries, d.rollout+":")
	w, ok := cur.get(weightKey(d.rollout))
	if n, err := strconv.Atoi(w); !ok || err != nil || int(want.Weight) >= n {
		return nil
	}
	cmds := append(setEntry(d.cfg.Map, cur, generationKey(d.rollout), "0"), setEntry(d.cfg.Map, cur, weightKey(d.rollout), strconv.Itoa(int(want.Weight)))...)
	return d.run(ctx, cmds)
}

func (d *Driver) run(ctx context.Context, cmds []command) error {
	for _, c := range cmds {
		answer, err := d.client.Do(ctx, c.args...)
		if err != nil {
			return err
		}
		if !c.ok(answer) {
			if c.optional && serverBusy(answer) {
				continue
			}
			return answerError(d.client.Address(), Command(c.args...), c.subject, answer)
		}
	}
	return nil
}

// showMap reads a map's entries. missingOK turns "no such map" into an
// empty map (the regex map is needed only when there are regex routes).
func (d *Driver) showMap(ctx context.Context, file string, missingOK bool) ([]mapEntry, error) {
	answer, err := d.client.Do(ctx, "show", "map", file)
	if err != nil {
		return nil, err
	}
	entries, ok, err := parseShowMap(answer)
	if err != nil {
		return nil, err
	}
	if !ok {
		if missingOK && strings.HasPrefix(answer, "Unknown map identifier") {
			return nil, nil
		}
		return nil, answerError(d.client.Address(), Command("show", "map", file), "map "+file, answer)
	}
	return entries, nil
}

func (d *Driver) servers(ctx context.Context, backend string) ([]serverState, error) {
	answer, err := d.client.Do(ctx, "show", "servers", "state", backend)
	if err != nil {
		return nil, err
	}
	servers, ok, err := parseServersState(answer, backend)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, answerError(d.client.Address(), Command("show", "servers", "state", backend), "backend "+backend, answer)
	}
	return servers, nil
}

// declared is what coalmine's lines in haproxy.cfg read, from the process
// variables their global part sets.
type declared struct {
	userHeader string          // lower case; "" when no header is hashed
	routes     map[string]bool // header names the route lookups cover, lower case
}

func (d *Driver) declared(ctx context.Context) (declared, error) {
	var out declared
	user, err := d.getVar(ctx, userHeaderVar(d.rollout))
	if err != nil {
		return out, err
	}
	out.userHeader = strings.ToLower(strings.Trim(user, "|"))
	routes, err := d.getVar(ctx, headersVar(d.rollout))
	if err != nil {
		return out, err
	}
	out.routes = map[string]bool{}
	for _, h := range strings.Split(routes, "|") {
		if h != "" {
			out.routes[strings.ToLower(h)] = true
		}
	}
	return out, nil
}

func (d *Driver) getVar(ctx context.Context, name string) (string, error) {
	answer, err := d.client.Do(ctx, "get", "var", name)
	if err != nil {
		return "", err
	}
	v, ok, err := parseVar(answer, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", answerError(d.client.Address(), Command("get", "var", name), "variable "+name, answer)
	}
	return v, nil
}

// Observe reads back the generation and weight HAProxy holds, and whether
// the canary backend has a server that can take a request.
func (d *Driver) Observe(ctx context.Context) (router.Applied, error) {
	var a router.Applied
	entries, err := d.showMap(ctx, d.cfg.Map, false)
	if err != nil {
		return a, fmt.Errorf("HAProxy router of rollout %s: %w", d.rollout, err)
	}
	cur := ofRollout(entries, d.rollout+":")
	if v, ok := cur.get(generationKey(d.rollout)); ok {
		if a.Generation, err = strconv.ParseUint(v, 10, 64); err != nil {
			return a, fmt.Errorf("HAProxy router of rollout %s: map %s holds generation %q, not a number: delete the entry %s", d.rollout, d.cfg.Map, v, generationKey(d.rollout))
		}
	}
	if v, ok := cur.get(weightKey(d.rollout)); ok {
		w, err := strconv.ParseUint(v, 10, 16)
		if err != nil || w > uint64(spec.MaxWeight) {
			return a, fmt.Errorf("HAProxy router of rollout %s: map %s holds weight %q, not a number of basis points from 0 to 10000", d.rollout, d.cfg.Map, v)
		}
		a.Weight = spec.Weight(w)
	}
	servers, err := d.servers(ctx, d.cfg.CanaryBackend)
	if err != nil {
		return a, fmt.Errorf("HAProxy router of rollout %s: %w", d.rollout, err)
	}
	for _, s := range servers {
		if s.serving() {
			a.CanaryAvailable = true
			break
		}
	}
	return a, nil
}

// Check reports whether HAProxy answers and has what the driver needs:
// the map, coalmine's global variable naming the routed headers (and the
// regex map when there are any), and both backends.
func (d *Driver) Check(ctx context.Context) error {
	wrap := func(err error) error { return fmt.Errorf("HAProxy router of rollout %s: %w", d.rollout, err) }
	if _, err := d.showMap(ctx, d.cfg.Map, false); err != nil {
		return wrap(err)
	}
	lines, err := d.declared(ctx)
	if err != nil {
		return wrap(err)
	}
	if len(lines.routes) > 0 {
		if _, err := d.showMap(ctx, d.regexMap, false); err != nil {
			return wrap(err)
		}
	}
	for _, b := range []string{d.cfg.StableBackend, d.cfg.CanaryBackend} {
		if _, err := d.servers(ctx, b); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// Remove stops coalmine's routing of the rollout: weight 0, so every
// request goes to stable, then the header routes, salt and generation are
// deleted. The servers are left as they are: stable keeps serving.
func (d *Driver) Remove(ctx context.Context) error {
	wrap := func(err error) error { return fmt.Errorf("HAProxy router of rollout %s: remove: %w", d.rollout, err) }
	mainMap, err := d.showMap(ctx, d.cfg.Map, false)
	if err != nil {
		return wrap(err)
	}
	regexMap, err := d.showMap(ctx, d.regexMap, true)
	if err != nil {
		return wrap(err)
	}
	cur := ofRollout(mainMap, d.rollout+":", routesPrefix(d.rollout))
	// Weight first: from then on every request goes to stable. The
	// generation goes next, so a removal cut short is never mistaken for
	// applied routing.
	cmds := setEntry(d.cfg.Map, cur, weightKey(d.rollout), "0")
	for _, e := range cur.all {
		if e.Key == generationKey(d.rollout) {
			cmds = append(cmds, delRef(d.cfg.Map, e.Ref))
		}
	}
	for _, e := range cur.all {
		if e.Key != weightKey(d.rollout) && e.Key != generationKey(d.rollout) {
			cmds = append(cmds, delRef(d.cfg.Map, e.Ref))
		}
	}
	for _, e := range ofRollout(regexMap, regexRoutesPrefix(d.rollout)).all {
		cmds = append(cmds, delRef(d.regexMap, e.Ref))
	}
	if err := d.run(ctx, cmds); err != nil {
		return wrap(err)
	}
	return nil
}
