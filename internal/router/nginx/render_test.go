package nginx

import (
	"errors"
	"flag"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/router"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func str(s string) *string { return &s }

// shopDesired is the rollout of the examples: a user header, and header
// routes of every kind.
func shopDesired() router.Desired {
	return router.Desired{
		Rollout:    "shop",
		Revision:   42,
		Generation: 7,
		Weight:     1000,
		Stable:     router.Target{Version: "v1.4.0", Endpoints: []string{"http://127.0.0.1:9001", "http://stable.shop.internal:8080"}},
		Canary:     &router.Target{Version: "v1.5.0", Endpoints: []string{"http://[::1]:9002"}},
		UserHeader: "X-User-Id",
		HeaderRoutes: []spec.HeaderRoute{
			{Name: "testers", Match: []spec.HeaderMatch{
				{HeaderName: "X-Canary", HeaderValue: spec.StringMatch{Exact: str("always")}},
				{HeaderName: "X-Beta", HeaderValue: spec.StringMatch{Regex: str(`(?i)beta-[0-9]+`)}},
			}},
			{Name: "legacy clients", To: spec.RoleStable, Match: []spec.HeaderMatch{
				{HeaderName: "User-Agent", HeaderValue: spec.StringMatch{Prefix: str("OldApp/1.")}},
			}},
		},
	}
}

func TestRenderGolden(t *testing.T) {
	noCanary := shopDesired()
	noCanary.Canary, noCanary.Weight, noCanary.HeaderRoutes = nil, 0, nil
	noUser := shopDesired()
	noUser.UserHeader, noUser.HeaderRoutes, noUser.Weight = "", nil, 2550
	cases := map[string]router.Desired{
		"shop":           shopDesired(),
		"no_canary":      noCanary,
		"no_user_header": noUser,
	}
	check := func(t *testing.T, golden string, text []byte) {
		t.Helper()
		if *update {
			if err := os.WriteFile(golden, text, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test -update to write it)", err)
		}
		if string(want) != string(text) {
			t.Errorf("render differs from %s (go test -update rewrites it):\n%s", golden, text)
		}
		// The file must parse as NGINX reads it.
		if _, err := parseConf(string(text)); err != nil {
			t.Errorf("rendered file does not parse: %v", err)
		}
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Render(d, "", "")
			if err != nil {
				t.Fatal(err)
			}
			check(t, filepath.Join("testdata", name+".conf"), r.Text)
			if name == "shop" {
				check(t, filepath.Join("testdata", name+".location"), r.Location)
			}
		})
	}
}

// A weight or generation change leaves both include files as they are: it
// is a change of the weight files alone, with no reload.
func TestRenderWeightChangesNoIncludeFile(t *testing.T) {
	base, err := Render(shopDesired(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []spec.Weight{0, 1, 99, 100, 2550, spec.MaxWeight} {
		d := shopDesired()
		d.Weight, d.Generation = w, d.Generation+uint64(w)+1
		r, err := Render(d, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Text) != string(base.Text) || string(r.Location) != string(base.Location) || r.Status.Digest != base.Status.Digest {
			t.Errorf("weight %d changed the include files", w)
		}
		if r.Status.Weight != w || r.Status.Generation != d.Generation {
			t.Errorf("weight %d: status = %+v", w, r.Status)
		}
	}
	// A new revision salts the split anew: a structural change.
	d := shopDesired()
	d.Revision++
	r, _ := Render(d, "", "")
	if r.Status.Digest == base.Status.Digest {
		t.Error("a new revision keeps the digest")
	}
	// Another state directory is another location include.
	r, _ = Render(shopDesired(), "", "/var/lib/coalmine/shop")
	if r.Status.Digest == base.Status.Digest || !strings.Contains(string(r.Location), "if (-f /var/lib/coalmine/shop/current/r${coalmine_shop_b1}/${coalmine_shop_b2})") {
		t.Errorf("state directory not in the location include:\n%s", r.Location)
	}
}

func TestRenderIsDeterministicAndStatusMatchesDesired(t *testing.T) {
	d := shopDesired()
	a, err := Render(d, "127.0.0.1:7100", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(d, "127.0.0.1:7100", "")
	if string(a.Text) != string(b.Text) {
		t.Fatal("two renders of one Desired differ")
	}
	if a.Status.Generation != 7 || a.Status.Weight != 1000 || !a.Status.CanaryAvailable || a.Status.Rollout != "shop" {
		t.Errorf("status = %+v", a.Status)
	}
	if !strings.Contains(string(a.Text), "listen 127.0.0.1:7100;") {
		t.Error("status server does not listen on the given address")
	}
	// A canary without endpoints sends everyone to stable.
	d.Canary = &router.Target{Version: "v2"}
	e, err := Render(d, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status.CanaryAvailable || strings.Contains(string(e.Text), "shop_canary") {
		t.Errorf("a canary without endpoints still routes to it:\n%s", e.Text)
	}
}

// The weight files of weight 100*A+B: rows 0..A-1 link to the full row,
// row A holds buckets 0..B-1, so the canary cells number exactly the
// weight in basis points, and a higher weight's cells include a lower's.
func TestStateFilesCountTheWeightExactly(t *testing.T) {
	cells := func(w spec.Weight) map[string]bool {
		_, links := stateFiles(w)
		out := map[string]bool{}
		for _, l := range links {
			// Resolve the link as the file system does, from the
			// directory that holds it (the state is one level down).
			target := path.Clean(path.Join("state", path.Dir(l[0]), l[1]))
			switch {
			case target == fullRow:
				for _, b2 := range fullRowFiles() {
					out[l[0]+"/"+b2] = true
				}
			case path.Dir(target) == fullRow && slices.Contains(fullRowFiles(), path.Base(target)):
				out[l[0]] = true
			default:
				t.Fatalf("link %v leads to %s, not into the full row", l, target)
			}
		}
		return out
	}
	var prev map[string]bool
	for w := spec.Weight(0); w <= spec.MaxWeight; w += 37 {
		c := cells(w)
		if len(c) != int(w) {
			t.Fatalf("weight %d: %d canary cells", w, len(c))
		}
		for k := range prev {
			if !c[k] {
				t.Fatalf("raising the weight to %d drops cell %s", w, k)
			}
		}
		prev = c
	}
	if c := cells(spec.MaxWeight); len(c) != Buckets*Buckets {
		t.Errorf("100%%: %d cells", len(c))
	}
	if a, b := Rows(2550); a != 25 || b != 50 {
		t.Errorf("Rows(2550) = %d, %d", a, b)
	}
}

func TestRenderRefusesBadInput(t *testing.T) {
	cases := map[string]func(d *router.Desired){
		"no rollout":         func(d *router.Desired) { d.Rollout = "" },
		"weight over 100%":   func(d *router.Desired) { d.Weight = 10001 },
		"no stable":          func(d *router.Desired) { d.Stable.Endpoints = nil },
		"https endpoint":     func(d *router.Desired) { d.Stable.Endpoints = []string{"https://a:1"} },
		"endpoint with path": func(d *router.Desired) { d.Canary.Endpoints = []string{"http://a:1/x"} },
		"endpoint injection": func(d *router.Desired) { d.Canary.Endpoints = []string{"http://a;b:1"} },
		"bad port":           func(d *router.Desired) { d.Stable.Endpoints = []string{"http://a:0"} },
		"user header":        func(d *router.Desired) { d.UserHeader = "X User" },
		"header underscore":  func(d *router.Desired) { d.HeaderRoutes[0].Match[0].HeaderName = "X_Canary" },
		"two matches":        func(d *router.Desired) { d.HeaderRoutes[0].Match[0].HeaderValue.Prefix = str("a") },
		"no match":           func(d *router.Desired) { d.HeaderRoutes[0].Match[0].HeaderValue = spec.StringMatch{} },
		"bad regex":          func(d *router.Desired) { d.HeaderRoutes[0].Match[1].HeaderValue.Regex = str("(") },
		"non-ASCII class":    func(d *router.Desired) { d.HeaderRoutes[0].Match[1].HeaderValue.Regex = str("[à-ü]+") },
		"bad target":         func(d *router.Desired) { d.HeaderRoutes[0].To = "both" },
		"pattern too long":   func(d *router.Desired) { d.HeaderRoutes[0].Match[0].HeaderValue.Exact = str(strings.Repeat(".", 1000)) },
	}
	for _, dir := range []string{"relative/dir", "/a b", "/a;b", "/a${x}", "/a{b}"} {
		if _, err := Render(shopDesired(), "", dir); err == nil {
			t.Errorf("state directory %q accepted", dir)
		}
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			d := shopDesired()
			mutate(&d)
			if _, err := Render(d, "", ""); err == nil {
				t.Error("rendered without an error")
			}
		})
	}
	for _, addr := range []string{"7079", ":7079", "127.0.0.1:99999", "a b:1", "127.0.0.1:80;"} {
		if _, err := Render(shopDesired(), addr, ""); err == nil {
			t.Errorf("status address %q accepted", addr)
		}
	}
}

func TestRenderRefusesMirrorRoutesAsUnsupported(t *testing.T) {
	d := shopDesired()
	d.MirrorRoutes = []spec.MirrorRoute{{Name: "m"}}
	_, err := Render(d, "", "")
	if !errors.Is(err, router.ErrUnsupported) {
		t.Fatalf("err = %v, want one wrapping router.ErrUnsupported", err)
	}
}

func TestIdentifierAndNames(t *testing.T) {
	n, err := NamesFor("shop-eu.v2")
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != "shop_eu_v2" || n.Stable != "shop_eu_v2_stable" || n.Canary != "shop_eu_v2_canary" ||
		n.Upstream != "$coalmine_shop_eu_v2_upstream" || n.StatusPath != "/coalmine/shop_eu_v2" || n.StatusHost != "coalmine-status-shop-eu-v2" {
		t.Errorf("names = %+v", n)
	}
	if _, err := NamesFor(""); err == nil {
		t.Error("empty rollout name accepted")
	}
}

func TestBackends(t *testing.T) {
	d, err := New("shop", spec.NGINXRouter{IncludeFile: "/etc/nginx/coalmine/shop.conf"})
	if err != nil {
		t.Fatal(err)
	}
	b := d.Backends()
	if len(b) != 2 || b["shop_stable"] != spec.RoleStable || b["shop_canary"] != spec.RoleCanary {
		t.Errorf("Backends() = %v", b)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for name, cfg := range map[string]spec.NGINXRouter{
		"no include file":       {},
		"relative include file": {IncludeFile: "coalmine/shop.conf"},
		"bad status address":    {IncludeFile: "/x.conf", StatusAddress: "nowhere"},
		"bad state directory":   {IncludeFile: "/x.conf", StateDir: "/x y"},
		"relative state dir":    {IncludeFile: "/x.conf", StateDir: "x.d"},
	} {
		if _, err := New("shop", cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
