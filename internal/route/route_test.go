package route

import (
	"strconv"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// fakeReq is a map-backed Request for tests.
type fakeReq struct {
	method, path string
	headers      map[string]string
	cookies      map[string]string
}

func (f *fakeReq) Header(name string) ([]byte, bool) {
	for k, v := range f.headers {
		if strings.EqualFold(k, name) {
			return []byte(v), true
		}
	}
	return nil, false
}

func (f *fakeReq) Cookie(name string) ([]byte, bool) {
	v, ok := f.cookies[name]
	return []byte(v), ok
}

func (f *fakeReq) Method() []byte {
	if f.method == "" {
		return []byte("GET")
	}
	return []byte(f.method)
}
func (f *fakeReq) Path() []byte { return []byte(f.path) }

func ptr[T any](v T) *T { return &v }

func mustTable(t *testing.T, cfg Config) *Table {
	t.Helper()
	if cfg.Rollout == "" {
		cfg.Rollout = "checkout"
	}
	if cfg.Assignment.Cookie.Name == "" {
		cfg.Assignment.Cookie.Name = "coalmine_subject"
	}
	tb, err := Compile(cfg)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return tb
}

func userReq(id int) *fakeReq {
	return &fakeReq{headers: map[string]string{"X-User-ID": "user-" + strconv.Itoa(id)}}
}

func TestUserKeySplitIsStickyAndMonotonic(t *testing.T) {
	const users = 20000
	base := Config{Revision: 1, Assignment: spec.Assignment{UserHeader: "X-User-ID"}}
	at := func(pct float64) *Table {
		w, err := spec.WeightFromPercent(pct)
		if err != nil {
			t.Fatal(err)
		}
		c := base
		c.Weight = w
		return mustTable(t, c)
	}
	share := func(tb *Table) (float64, []Target) {
		got := make([]Target, users)
		canary := 0
		for i := 0; i < users; i++ {
			d := tb.Decide(userReq(i), Entropy{A: uint64(i), B: 7})
			if d.Reason != ReasonUserKey {
				t.Fatalf("user %d decided by %v, want user-key", i, d.Reason)
			}
			got[i] = d.Target
			if d.Target == Canary {
				canary++
			}
		}
		return 100 * float64(canary) / users, got
	}

	s10, first := share(at(10))
	if s10 < 9 || s10 > 11 {
		t.Fatalf("weight 10: canary share %.2f%%, want 10 ± 1", s10)
	}
	_, again := share(at(10))
	for i := range first {
		if first[i] != again[i] {
			t.Fatalf("user %d moved from %v to %v on a second pass", i, first[i], again[i])
		}
	}
	s30, third := share(at(30))
	if s30 < 28.5 || s30 > 31.5 {
		t.Fatalf("weight 30: canary share %.2f%%, want 30 ± 1.5", s30)
	}
	for i := range first {
		if first[i] == Canary && third[i] != Canary {
			t.Fatalf("user %d moved from canary back to stable when the weight rose", i)
		}
	}
	if s, _ := share(at(0)); s != 0 {
		t.Fatalf("weight 0: canary share %.2f%%, want 0", s)
	}
	if s, _ := share(at(100)); s != 100 {
		t.Fatalf("weight 100: canary share %.2f%%, want 100", s)
	}
	s001, _ := share(at(0.01))
	if s001 > 0.1 {
		t.Fatalf("weight 0.01: canary share %.3f%%, want about 0.01", s001)
	}
}

func TestNewRevisionReshuffles(t *testing.T) {
	a := mustTable(t, Config{Revision: 1, Weight: 1000, Assignment: spec.Assignment{UserHeader: "X-User-ID"}})
	b := mustTable(t, Config{Revision: 2, Weight: 1000, Assignment: spec.Assignment{UserHeader: "X-User-ID"}})
	same := 0
	for i := 0; i < 5000; i++ {
		if a.Decide(userReq(i), Entropy{}).Target == Canary && b.Decide(userReq(i), Entropy{}).Target == Canary {
			same++
		}
	}
	// Independent 10% draws overlap on about 1% of users; the same salt would give 10%.
	if same > 150 {
		t.Fatalf("%d of 5000 users were canary in both revisions: the salt does not reshuffle", same)
	}
}

func TestHeaderRoutesWinInOrder(t *testing.T) {
	tb := mustTable(t, Config{Revision: 1, Weight: 0,
		Assignment: spec.Assignment{UserHeader: "X-User-ID"},
		HeaderRoutes: []spec.HeaderRoute{
			{Name: "pin-stable", To: spec.RoleStable, Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: ptr("never")}}}},
			{Name: "internal", Match: []spec.HeaderMatch{{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: ptr("true")}}}},
			{Name: "qa", Match: []spec.HeaderMatch{{HeaderName: "X-QA", HeaderValue: spec.StringMatch{Prefix: ptr("team-")}}}},
			{Name: "re", Match: []spec.HeaderMatch{{HeaderName: "X-Build", HeaderValue: spec.StringMatch{Regex: ptr(`^v2\.[0-9]+$`)}}}},
		}})
	cases := []struct {
		headers map[string]string
		want    Target
		route   int
	}{
		{map[string]string{"X-Canary": "true"}, Canary, 1},
		{map[string]string{"x-canary": "true"}, Canary, 1},
		{map[string]string{"X-Canary": "TRUE"}, Stable, -1},
		{map[string]string{"X-Canary": "never"}, Stable, 0},
		{map[string]string{"X-QA": "team-a"}, Canary, 2},
		{map[string]string{"X-QA": "tea"}, Stable, -1},
		{map[string]string{"X-Build": "v2.13"}, Canary, 3},
		{map[string]string{"X-Build": "v2.13-rc"}, Stable, -1},
		{map[string]string{"X-Canary": ""}, Stable, -1},
	}
	for _, c := range cases {
		for i := 0; i < 200; i++ {
			r := &fakeReq{headers: map[string]string{"X-User-ID": strconv.Itoa(i)}}
			for k, v := range c.headers {
				r.headers[k] = v
			}
			d := tb.Decide(r, Entropy{A: uint64(i)})
			if d.Target != c.want || d.Route != c.route {
				t.Fatalf("headers %v user %d: got %v via route %d, want %v via %d", c.headers, i, d.Target, d.Route, c.want, c.route)
			}
		}
	}
}

func TestNewSubjectGetsCookieAndStaysSticky(t *testing.T) {
	tb := mustTable(t, Config{Revision: 3, Weight: 2500})
	canary := 0
	const clients = 20000
	for i := 0; i < clients; i++ {
		d := tb.Decide(&fakeReq{}, Entropy{A: uint64(i) * 0x9e3779b97f4a7c15, B: uint64(i)})
		if !d.NewSubject || d.Reason != ReasonNewSubject {
			t.Fatalf("client %d: want a new subject, got %+v", i, d)
		}
		if d.Target == Canary {
			canary++
		}
		// The next request with the cookie must land on the same version,
		// whatever the entropy.
		next := tb.Decide(&fakeReq{cookies: map[string]string{"coalmine_subject": string(d.Subject[:])}}, Entropy{A: 1, B: 2})
		if next.Target != d.Target || next.Reason != ReasonCookie || next.NewSubject {
			t.Fatalf("client %d: first %v, with its cookie %v (%v)", i, d.Target, next.Target, next.Reason)
		}
	}
	if s := 100 * float64(canary) / clients; s < 24 || s > 26 {
		t.Fatalf("new clients at weight 25: canary share %.2f%%", s)
	}
	sc := string(tb.AppendSetCookie(nil, &Decision{Subject: [SubjectLen]byte{'a', 'b'}}, true))
	if !strings.HasPrefix(sc, "coalmine_subject=ab") || !strings.Contains(sc, "HttpOnly") ||
		!strings.Contains(sc, "SameSite=Lax") || !strings.HasSuffix(sc, "; Secure") || !strings.Contains(sc, "Max-Age=86400") {
		t.Fatalf("set-cookie %q", sc)
	}
}

func TestCookieDisabledNeverAsksForOne(t *testing.T) {
	tb := mustTable(t, Config{Revision: 1, Weight: 5000, Assignment: spec.Assignment{Cookie: spec.SubjectCookie{Name: "c", Set: ptr(false)}}})
	d := tb.Decide(&fakeReq{cookies: map[string]string{"c": "x"}}, Entropy{A: 1})
	if d.NewSubject || d.Reason != ReasonNewSubject {
		t.Fatalf("cookie disabled: got %+v", d)
	}
}

func TestMirrorSelection(t *testing.T) {
	tb := mustTable(t, Config{Revision: 1, Weight: 0, MirrorRoutes: []spec.MirrorRoute{
		{Name: "get-only", Match: []spec.RequestMatch{{Path: &spec.StringMatch{Prefix: ptr("/api")}}}},
		{Name: "posts", Match: []spec.RequestMatch{{Method: &spec.StringMatch{Exact: ptr("POST")}, Path: &spec.StringMatch{Exact: ptr("/upload")}}}},
	}})
	cases := []struct {
		method, path string
		want         bool
	}{
		{"GET", "/api/x", true},
		{"POST", "/api/x", false}, // not idempotent and no explicit method
		{"POST", "/upload", true}, // method named explicitly
		{"GET", "/other", false},
	}
	for _, c := range cases {
		d := tb.Decide(&fakeReq{method: c.method, path: c.path}, Entropy{})
		if d.Mirror != c.want {
			t.Errorf("%s %s: mirror %v, want %v", c.method, c.path, d.Mirror, c.want)
		}
	}
	everything := []spec.RequestMatch{{Path: &spec.StringMatch{Prefix: ptr("/")}}}
	// Canary-served requests are never mirrored.
	all := mustTable(t, Config{Revision: 1, Weight: spec.MaxWeight, MirrorRoutes: []spec.MirrorRoute{{Name: "all", Match: everything}}})
	if d := all.Decide(&fakeReq{path: "/"}, Entropy{}); d.Mirror {
		t.Fatalf("a canary-served request was mirrored")
	}
	// Percentage.
	half := mustTable(t, Config{Revision: 1, MirrorRoutes: []spec.MirrorRoute{{Name: "half", Percentage: ptr(50.0), Match: everything}}})
	n := 0
	for i := 0; i < 10000; i++ {
		if half.Decide(&fakeReq{path: "/"}, Entropy{A: uint64(i) * 0x9e3779b97f4a7c15, B: uint64(i) * 31}).Mirror {
			n++
		}
	}
	if n < 4700 || n > 5300 {
		t.Fatalf("50%% mirror selected %d of 10000", n)
	}
}

// TestMirrorRouteWithoutMatchMirrorsNothing: in Argo a setMirrorRoute
// without match removes the route, whatever its percentage; validation
// rejects such a step, and a table built from an older saved state
// mirrors nothing rather than every GET.
func TestMirrorRouteWithoutMatchMirrorsNothing(t *testing.T) {
	tb := mustTable(t, Config{Revision: 1, MirrorRoutes: []spec.MirrorRoute{{Name: "no-match", Percentage: ptr(100.0)}}})
	for _, m := range []string{"GET", "HEAD", "POST"} {
		if d := tb.Decide(&fakeReq{method: m, path: "/"}, Entropy{A: 1, B: 2}); d.Mirror {
			t.Errorf("%s / was mirrored by a route without match", m)
		}
	}
}

// TestHeaderRouteMatchesAreAlternatives: each match entry of a header route
// is its own match, and any one of them routes the request, as Argo's
// setHeaderRoute does with Istio (one Istio match per entry).
func TestHeaderRouteMatchesAreAlternatives(t *testing.T) {
	tb := mustTable(t, Config{Revision: 1, Weight: 0, HeaderRoutes: []spec.HeaderRoute{
		{Name: "testers", Match: []spec.HeaderMatch{
			{HeaderName: "X-Tester", HeaderValue: spec.StringMatch{Exact: ptr("yes")}},
			{HeaderName: "X-Team", HeaderValue: spec.StringMatch{Prefix: ptr("qa-")}},
		}},
	}})
	for _, c := range []struct {
		headers map[string]string
		want    Target
	}{
		{map[string]string{"X-Tester": "yes"}, Canary},
		{map[string]string{"X-Team": "qa-berlin"}, Canary},
		{map[string]string{"X-Tester": "yes", "X-Team": "qa-berlin"}, Canary},
		{map[string]string{"X-Tester": "no", "X-Team": "qa-berlin"}, Canary},
		{map[string]string{"X-Tester": "no", "X-Team": "dev"}, Stable},
		{map[string]string{}, Stable},
	} {
		d := tb.Decide(&fakeReq{headers: c.headers}, Entropy{A: 1})
		if d.Target != c.want || (c.want == Canary) != (d.Route == 0) {
			t.Errorf("headers %v: %v via route %d, want %v", c.headers, d.Target, d.Route, c.want)
		}
	}
}

// TestRegexMatchesTheWholeValue: as in Istio and Envoy, a regex must match
// the whole value, in header routes and in mirror routes alike.
func TestRegexMatchesTheWholeValue(t *testing.T) {
	for _, c := range []struct {
		pattern, value string
		want           bool
	}{
		{"v2", "v2", true},
		{"v2", "v20", false},
		{"v2", "xv2", false},
		{`v2\..*`, "v2.13", true},
		{"beta|canary", "canary", true},
		{"beta|canary", "canary-2", false}, // the alternation is grouped before anchoring
		{"beta|canary", "pre-beta", false},
		{"^v2$", "v2", true}, // already anchored patterns keep working
		{".*chrome.*", "Mozilla chrome 120", true},
		{"(?i)CHROME", "chrome", true},
		{`a\z`, "a", true},
	} {
		m, err := CompileStringMatch(spec.StringMatch{Regex: ptr(c.pattern)})
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := m.Match([]byte(c.value)); got != c.want {
			t.Errorf("regex %q on %q = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
	// A pattern that is invalid alone stays invalid, even if the wrapper
	// would close its group.
	if _, err := CompileStringMatch(spec.StringMatch{Regex: ptr("a)|(b")}); err == nil {
		t.Errorf(`regex "a)|(b" compiled`)
	}
	mirror := mustTable(t, Config{Revision: 1, MirrorRoutes: []spec.MirrorRoute{
		{Name: "m", Match: []spec.RequestMatch{{Path: &spec.StringMatch{Regex: ptr("/api/v[0-9]+")}}}},
	}})
	for path, want := range map[string]bool{"/api/v2": true, "/api/v2/orders": false, "/x/api/v2": false} {
		if d := mirror.Decide(&fakeReq{path: path}, Entropy{}); d.Mirror != want {
			t.Errorf("mirror regex on %s: %v, want %v", path, d.Mirror, want)
		}
	}
}

// TestHeaderRouteDecisionDoesNotAllocate keeps the request path free of
// allocations with several alternatives and a regex to try.
func TestHeaderRouteDecisionDoesNotAllocate(t *testing.T) {
	tb := headerRouteTable()
	for _, r := range []*staticReq{{user: []byte("user-1")}, {user: []byte("v2.13")}} {
		if a := testing.AllocsPerRun(1000, func() { _ = tb.Decide(r, Entropy{A: 1, B: 2}) }); a != 0 {
			t.Errorf("Decide with header routes allocates %.1f times per request", a)
		}
	}
}

func headerRouteTable() *Table {
	tb, err := Compile(Config{Rollout: "r", Revision: 1, Weight: 500, Assignment: spec.Assignment{Cookie: spec.SubjectCookie{Name: "c"}},
		HeaderRoutes: []spec.HeaderRoute{{Name: "testers", Match: []spec.HeaderMatch{
			{HeaderName: "X-Tester", HeaderValue: spec.StringMatch{Exact: ptr("yes")}},
			{HeaderName: "X-User-ID", HeaderValue: spec.StringMatch{Regex: ptr(`v2\.[0-9]+`)}},
		}}},
		MirrorRoutes: []spec.MirrorRoute{{Name: "m", Match: []spec.RequestMatch{{Path: &spec.StringMatch{Regex: ptr("/api/.*")}}}}},
	})
	if err != nil {
		panic(err)
	}
	return tb
}

// staticReq is benchReq whose method and path are not converted per call,
// as the proxy's are not.
type staticReq struct{ user []byte }

var get, root = []byte("GET"), []byte("/api/orders")

func (s *staticReq) Header(name string) ([]byte, bool) {
	if name == "X-User-ID" {
		return s.user, true
	}
	return nil, false
}
func (s *staticReq) Cookie(string) ([]byte, bool) { return nil, false }
func (s *staticReq) Method() []byte               { return get }
func (s *staticReq) Path() []byte                 { return root }

func BenchmarkDecideHeaderRoutes(b *testing.B) {
	tb := headerRouteTable()
	r := &staticReq{user: []byte("user-123456")}
	b.ReportAllocs()
	for b.Loop() {
		_ = tb.Decide(r, Entropy{A: 1, B: 2})
	}
}

func TestCompileRejectsBadInput(t *testing.T) {
	bad := []Config{
		{Weight: 10001},
		{HeaderRoutes: []spec.HeaderRoute{{Name: "x"}}},
		{HeaderRoutes: []spec.HeaderRoute{{Name: "x", Match: []spec.HeaderMatch{{HeaderName: "A", HeaderValue: spec.StringMatch{Regex: ptr("(")}}}}}},
		{HeaderRoutes: []spec.HeaderRoute{{Name: "x", Match: []spec.HeaderMatch{{HeaderName: "A", HeaderValue: spec.StringMatch{Exact: ptr("a"), Prefix: ptr("b")}}}}}},
		{MirrorRoutes: []spec.MirrorRoute{{Name: "m", Percentage: ptr(101.0)}}},
	}
	for i, c := range bad {
		if _, err := Compile(c); err == nil {
			t.Errorf("case %d: compiled, want an error", i)
		}
	}
}

type benchReq struct{ user []byte }

func (b *benchReq) Header(name string) ([]byte, bool) {
	if name == "X-User-ID" {
		return b.user, true
	}
	return nil, false
}
func (b *benchReq) Cookie(string) ([]byte, bool) { return nil, false }
func (b *benchReq) Method() []byte               { return []byte("GET") }
func (b *benchReq) Path() []byte                 { return []byte("/") }

func BenchmarkDecideUserKey(b *testing.B) {
	tb, _ := Compile(Config{Rollout: "r", Revision: 1, Weight: 500, Assignment: spec.Assignment{UserHeader: "X-User-ID", Cookie: spec.SubjectCookie{Name: "c"}}})
	r := &benchReq{user: []byte("user-123456")}
	b.ReportAllocs()
	for b.Loop() {
		_ = tb.Decide(r, Entropy{A: 1, B: 2})
	}
}

func BenchmarkDecideNewSubject(b *testing.B) {
	tb, _ := Compile(Config{Rollout: "r", Revision: 1, Weight: 500, Assignment: spec.Assignment{Cookie: spec.SubjectCookie{Name: "c"}}})
	r := &benchReq{}
	b.ReportAllocs()
	for b.Loop() {
		_ = tb.Decide(r, Entropy{A: 1, B: 2})
	}
}
