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
	// Canary-served requests are never mirrored.
	all := mustTable(t, Config{Revision: 1, Weight: spec.MaxWeight, MirrorRoutes: []spec.MirrorRoute{{Name: "all"}}})
	if d := all.Decide(&fakeReq{path: "/"}, Entropy{}); d.Mirror {
		t.Fatalf("a canary-served request was mirrored")
	}
	// Percentage.
	half := mustTable(t, Config{Revision: 1, MirrorRoutes: []spec.MirrorRoute{{Name: "half", Percentage: ptr(50.0)}}})
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
