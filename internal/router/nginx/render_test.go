package nginx

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
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
	abort := shopDesired()
	abort.Weight = 0
	full := shopDesired()
	full.Weight = spec.MaxWeight
	noUser := shopDesired()
	noUser.UserHeader, noUser.HeaderRoutes, noUser.Weight = "", nil, 2550
	cases := map[string]router.Desired{
		"shop":           shopDesired(),
		"no_canary":      noCanary,
		"weight_zero":    abort,
		"weight_full":    full,
		"no_user_header": noUser,
	}
	for name, d := range cases {
		t.Run(name, func(t *testing.T) {
			r, err := Render(d, "")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".conf")
			if *update {
				if err := os.WriteFile(golden, r.Text, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if string(want) != string(r.Text) {
				t.Errorf("render differs from %s (go test -update rewrites it):\n%s", golden, r.Text)
			}
			// The file must parse as NGINX reads it.
			if _, err := parseConf(string(r.Text)); err != nil {
				t.Errorf("rendered file does not parse: %v", err)
			}
		})
	}
}

func TestRenderIsDeterministicAndStatusMatchesDesired(t *testing.T) {
	d := shopDesired()
	a, err := Render(d, "127.0.0.1:7100")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(d, "127.0.0.1:7100")
	if string(a.Text) != string(b.Text) {
		t.Fatal("two renders of one Desired differ")
	}
	if a.Status.Generation != 7 || a.Status.Weight != 1000 || !a.Status.CanaryAvailable || a.Status.Rollout != "shop" {
		t.Errorf("status = %+v", a.Status)
	}
	if !strings.Contains(string(a.Text), "listen 127.0.0.1:7100;") {
		t.Error("status server does not listen on the given address")
	}
	// Another weight is another routing, so another digest.
	d.Weight = 2000
	c, _ := Render(d, "127.0.0.1:7100")
	if c.Status.Digest == a.Status.Digest {
		t.Error("the digest does not change with the weight")
	}
	// A canary without endpoints sends everyone to stable.
	d.Canary = &router.Target{Version: "v2"}
	e, err := Render(d, "")
	if err != nil {
		t.Fatal(err)
	}
	if e.Status.CanaryAvailable || strings.Contains(string(e.Text), "shop_canary") {
		t.Errorf("a canary without endpoints still routes to it:\n%s", e.Text)
	}
}

func TestRenderSplitPercent(t *testing.T) {
	for w, want := range map[spec.Weight]string{1: "0.01% c;", 50: "0.50% c;", 1000: "10.00% c;", 2550: "25.50% c;", 10000: "100.00% c;"} {
		d := shopDesired()
		d.Weight = w
		r, err := Render(d, "")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(r.Text), want) {
			t.Errorf("weight %d: want %q in\n%s", w, want, r.Text)
		}
	}
	// NGINX refuses 0%: weight 0 leaves the canary line out.
	d := shopDesired()
	d.Weight = 0
	r, _ := Render(d, "")
	if strings.Contains(string(r.Text), "% c;") {
		t.Errorf("weight 0 still has a canary range:\n%s", r.Text)
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
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			d := shopDesired()
			mutate(&d)
			if _, err := Render(d, ""); err == nil {
				t.Error("rendered without an error")
			}
		})
	}
	for _, addr := range []string{"7079", ":7079", "127.0.0.1:99999", "a b:1", "127.0.0.1:80;"} {
		if _, err := Render(shopDesired(), addr); err == nil {
			t.Errorf("status address %q accepted", addr)
		}
	}
}

func TestRenderRefusesMirrorRoutesAsUnsupported(t *testing.T) {
	d := shopDesired()
	d.MirrorRoutes = []spec.MirrorRoute{{Name: "m"}}
	_, err := Render(d, "")
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
	} {
		if _, err := New("shop", cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
