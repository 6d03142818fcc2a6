// Package route decides, for each request, whether the stable or the canary
// version serves it. Everything here is pure: an immutable Table built once
// per change and a Decide function over a request view, so the proxy can swap
// tables atomically and tests can pin every rule down without sockets.
package route

import (
	"fmt"
	"strconv"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Request is the read-only view of an HTTP request that routing needs.
// Implementations must not allocate; the proxy adapts its request type.
type Request interface {
	// Header returns the first value of the named header and whether it exists.
	Header(name string) ([]byte, bool)
	// Cookie returns the named cookie's value and whether it exists.
	Cookie(name string) ([]byte, bool)
	Method() []byte
	Path() []byte
}

// Target is the version role a decision picks.
type Target uint8

// Targets.
const (
	Stable Target = iota
	Canary
)

// Role converts the target to the spec role.
func (t Target) Role() spec.Role {
	if t == Canary {
		return spec.RoleCanary
	}
	return spec.RoleStable
}

func (t Target) String() string { return string(t.Role()) }

// Reason records which rule decided, for explanations and tests.
type Reason uint8

// Reasons, in precedence order.
const (
	ReasonHeaderRoute Reason = iota + 1
	ReasonUserKey
	ReasonCookie
	ReasonNewSubject
)

func (r Reason) String() string {
	switch r {
	case ReasonHeaderRoute:
		return "header-route"
	case ReasonUserKey:
		return "user-key"
	case ReasonCookie:
		return "cookie"
	case ReasonNewSubject:
		return "new-subject"
	}
	return "unknown"
}

// HeaderRoute is a compiled header route: any one of its matchers decides.
// Each match entry is an alternative, as each entry of Argo's
// setHeaderRoute.match becomes its own Istio match, and Istio takes a
// route when any of its matches holds.
type HeaderRoute struct {
	Name     string
	To       Target
	matchers []headerMatcher
}

func (h *HeaderRoute) match(r Request) bool {
	for i := range h.matchers {
		if h.matchers[i].match(r) {
			return true
		}
	}
	return false
}

// MirrorRoute is a compiled mirror route.
type MirrorRoute struct {
	Name string
	// share is the mirrored fraction in basis points.
	share spec.Weight
	alts  []requestMatcher
}

type requestMatcher struct {
	method  *StringMatcher
	path    *StringMatcher
	headers []headerMatcher
}

func (m *requestMatcher) match(r Request) bool {
	if m.method != nil && !m.method.Match(r.Method()) {
		return false
	}
	if m.path != nil && !m.path.Match(r.Path()) {
		return false
	}
	for i := range m.headers {
		if !m.headers[i].match(r) {
			return false
		}
	}
	return true
}

// Table is an immutable routing snapshot. Build it with Compile and never
// modify it afterwards: the proxy reads it from many goroutines without locks.
type Table struct {
	// Generation increases with every table the controller applies, so it
	// can tell when the data plane observes a change.
	Generation uint64
	// Weight is the canary share in basis points.
	Weight spec.Weight
	// Revision is the rollout revision the salt was derived from.
	Revision int64

	salt         uint64
	userHeader   string
	cookieName   string
	cookieOn     bool
	headerRoutes []HeaderRoute
	mirrorRoutes []MirrorRoute

	// source is what the table was compiled from, for routers that are
	// told the routing rather than run it (HAProxy, NGINX).
	source Config

	// setCookiePrefix is "name=" and setCookieSuffix the attributes, so the
	// proxy builds a Set-Cookie value by appending without formatting.
	setCookiePrefix []byte
	setCookieSuffix []byte
}

// Config is everything a Table is compiled from.
type Config struct {
	Rollout    string
	Revision   int64
	Generation uint64
	Weight     spec.Weight
	Assignment spec.Assignment
	// HeaderRoutes are the static routes followed by routes added by steps,
	// in precedence order.
	HeaderRoutes []spec.HeaderRoute
	MirrorRoutes []spec.MirrorRoute
}

// Compile validates and compiles cfg into a Table.
func Compile(cfg Config) (*Table, error) {
	if cfg.Weight > spec.MaxWeight {
		return nil, fmt.Errorf("weight %d basis points exceeds %d", cfg.Weight, spec.MaxWeight)
	}
	t := &Table{
		Generation: cfg.Generation,
		Weight:     cfg.Weight,
		Revision:   cfg.Revision,
		salt:       Salt(cfg.Rollout, cfg.Revision),
		userHeader: cfg.Assignment.UserHeader,
		cookieName: cfg.Assignment.Cookie.Name,
		cookieOn:   cfg.Assignment.Cookie.Enabled() && cfg.Assignment.Cookie.Name != "",
		source:     cfg,
	}
	for i, hr := range cfg.HeaderRoutes {
		c, err := compileHeaderRoute(hr)
		if err != nil {
			return nil, fmt.Errorf("header route %d (%q): %w", i, hr.Name, err)
		}
		t.headerRoutes = append(t.headerRoutes, c)
	}
	for i, mr := range cfg.MirrorRoutes {
		c, err := compileMirrorRoute(mr)
		if err != nil {
			return nil, fmt.Errorf("mirror route %d (%q): %w", i, mr.Name, err)
		}
		t.mirrorRoutes = append(t.mirrorRoutes, c)
	}
	if t.cookieOn {
		t.setCookiePrefix = []byte(t.cookieName + "=")
		ttl := cfg.Assignment.Cookie.TTL.D()
		if ttl <= 0 {
			ttl = 24 * time.Hour
		}
		t.setCookieSuffix = []byte("; Path=/; Max-Age=" + strconv.FormatInt(int64(ttl/time.Second), 10) + "; HttpOnly; SameSite=Lax")
	}
	return t, nil
}

func compileHeaderRoute(hr spec.HeaderRoute) (HeaderRoute, error) {
	out := HeaderRoute{Name: hr.Name, To: Canary}
	if hr.To == spec.RoleStable {
		out.To = Stable
	}
	if len(hr.Match) == 0 {
		return out, fmt.Errorf("a header route needs at least one match")
	}
	for _, m := range hr.Match {
		hm, err := compileHeaderMatch(m.HeaderName, m.HeaderValue)
		if err != nil {
			return out, err
		}
		out.matchers = append(out.matchers, hm)
	}
	return out, nil
}

func compileHeaderMatch(name string, v spec.StringMatch) (headerMatcher, error) {
	if name == "" {
		return headerMatcher{}, fmt.Errorf("header name is empty")
	}
	sm, err := CompileStringMatch(v)
	if err != nil {
		return headerMatcher{}, fmt.Errorf("header %q: %w", name, err)
	}
	return headerMatcher{name: name, value: sm}, nil
}

func compileMirrorRoute(mr spec.MirrorRoute) (MirrorRoute, error) {
	out := MirrorRoute{Name: mr.Name, share: spec.MaxWeight}
	if mr.Percentage != nil {
		w, err := spec.WeightFromPercent(*mr.Percentage)
		if err != nil {
			return out, fmt.Errorf("percentage: %w", err)
		}
		out.share = w
	}
	for _, m := range mr.Match {
		var rm requestMatcher
		if m.Method != nil {
			sm, err := CompileStringMatch(*m.Method)
			if err != nil {
				return out, fmt.Errorf("method: %w", err)
			}
			rm.method = &sm
		}
		if m.Path != nil {
			sm, err := CompileStringMatch(*m.Path)
			if err != nil {
				return out, fmt.Errorf("path: %w", err)
			}
			rm.path = &sm
		}
		for name, v := range m.Headers {
			hm, err := compileHeaderMatch(name, v)
			if err != nil {
				return out, err
			}
			rm.headers = append(rm.headers, hm)
		}
		out.alts = append(out.alts, rm)
	}
	return out, nil
}

// HeaderRoutes returns the compiled header routes in precedence order.
func (t *Table) HeaderRoutes() []HeaderRoute { return t.headerRoutes }

// MirrorRoutes returns the compiled mirror routes.
func (t *Table) MirrorRoutes() []MirrorRoute { return t.mirrorRoutes }

// CookieEnabled reports whether new subjects get a cookie.
func (t *Table) CookieEnabled() bool { return t.cookieOn }

// Source returns the configuration the table was compiled from, with the
// table's own weight and generation (the slices are shared: read only).
func (t *Table) Source() Config {
	c := t.source
	c.Weight, c.Generation, c.Revision = t.Weight, t.Generation, t.Revision
	return c
}

// WithWeight returns a copy of t with another weight and generation; the
// compiled matchers are shared because they are immutable.
func (t *Table) WithWeight(w spec.Weight, generation uint64) *Table {
	c := *t
	c.Weight = w
	c.Generation = generation
	return &c
}
