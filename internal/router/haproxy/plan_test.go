package haproxy

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

func cmdLines(cmds []command) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, Command(c.args...))
	}
	return out
}

func eq(t *testing.T, what string, got []command, want ...string) {
	t.Helper()
	g := cmdLines(got)
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", what, g, want)
	}
}

const (
	maint = 0x05 // `disabled` in the configuration, still in maintenance
	ready = 0x04 // `disabled` in the configuration, then set ready
)

func TestPlanSlots(t *testing.T) {
	slots := []slot{
		{Name: "s1", Addr: "10.0.0.1", Port: 80, Admin: ready, OpState: 2},
		{Name: "s2", Addr: "10.0.0.2", Port: 80, Admin: ready, OpState: 2},
		{Name: "s3", Addr: "127.0.0.1", Port: 1, Admin: maint},
		{Name: "s4", Addr: "10.0.0.9", Port: 80, Admin: maint},
	}

	enable, retire, err := planSlots("b", slots, []string{"10.0.0.1:80", "10.0.0.2:80"})
	if err != nil || len(enable)+len(retire) != 0 {
		t.Fatalf("same state: %q %q %v; want nothing to do", cmdLines(enable), cmdLines(retire), err)
	}

	// One endpoint replaced: the new one on a free slot before the old one leaves.
	enable, retire, _ = planSlots("b", slots, []string{"10.0.0.1:80", "10.0.0.3:80"})
	eq(t, "replace enable", enable, `set server b/s3 addr 10.0.0.3 port 80`, `set server b/s3 state ready`)
	eq(t, "replace retire", retire, `set server b/s2 state maint`)

	// A free slot already at the address needs only readying.
	enable, _, _ = planSlots("b", slots, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.9:80"})
	eq(t, "reuse", enable, `set server b/s4 state ready`)

	// No endpoints: everything leaves, after traffic moved.
	enable, retire, _ = planSlots("b", slots, nil)
	eq(t, "none enable", enable)
	eq(t, "none retire", retire, `set server b/s1 state maint`, `set server b/s2 state maint`)

	// Every slot busy: a slot about to leave is re-pointed in place.
	full := []slot{
		{Name: "s1", Addr: "10.0.0.1", Port: 80, Admin: ready, OpState: 2},
		{Name: "s2", Addr: "10.0.0.2", Port: 80, Admin: ready, OpState: 2},
	}
	enable, retire, _ = planSlots("b", full, []string{"10.0.0.7:80", "10.0.0.8:80"})
	eq(t, "in place", enable, `set server b/s1 addr 10.0.0.7 port 80`, `set server b/s2 addr 10.0.0.8 port 80`)
	eq(t, "in place retire", retire)

	// A draining slot at a wanted address is readied again, not duplicated.
	drain := []slot{{Name: "s1", Addr: "10.0.0.1", Port: 80, Admin: 0x08, OpState: 2}, {Name: "s2", Addr: "127.0.0.1", Port: 1, Admin: maint}}
	enable, _, _ = planSlots("b", drain, []string{"10.0.0.1:80"})
	eq(t, "drain", enable, `set server b/s1 state ready`)

	_, _, err = planSlots("shop_canary", full, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"})
	if err == nil || !strings.Contains(err.Error(), "server-template") || !strings.Contains(err.Error(), "shop_canary has 2 server slots but 3 endpoints") {
		t.Fatalf("too many endpoints: %v", err)
	}
}

func TestBuildRoutes(t *testing.T) {
	routes := []spec.HeaderRoute{
		route("a", spec.RoleStable, regex("X-Canary", "force-.*"), exact("X-Canary", "x")),
		route("b", "", exact("X-Canary", "x"), prefix("X-Group", "beta"), prefix("X-Group", "beta")),
	}
	e, err := buildRoutes("shop", routes, map[string]bool{"x-canary": true, "x-group": true})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.exact) != 1 || e.exact["shop/exact/x-canary=x"] != 0 {
		t.Errorf("exact = %v: the first route keeps the key", e.exact)
	}
	if len(e.prefix) != 1 || e.prefix[0] != (kv{"shop/prefix/x-group=beta", "3"}) {
		t.Errorf("prefix = %v", e.prefix)
	}
	if len(e.regex) != 1 || e.regex[0] != (kv{`^shop/regex/x-canary=(?:force-.*)$`, "0"}) {
		t.Errorf("regex = %v", e.regex)
	}

	for name, c := range map[string]struct {
		routes []spec.HeaderRoute
		want   string
	}{
		"undeclared":   {[]spec.HeaderRoute{route("r", "", exact("X-Other", "1"))}, "do not cover"},
		"bad regex":    {[]spec.HeaderRoute{route("r", "", regex("X-Canary", "a)|(b"))}, "regex"},
		"control char": {[]spec.HeaderRoute{route("r", "", exact("X-Canary", "a\nb"))}, "control character"},
		"bad name":     {[]spec.HeaderRoute{route("r", "", exact("X Canary", "1"))}, "header names"},
		"bad target":   {[]spec.HeaderRoute{route("r", "both", exact("X-Canary", "1"))}, "canary or stable"},
		"no match":     {[]spec.HeaderRoute{route("r", "")}, "no match"},
		"two kinds": {[]spec.HeaderRoute{{Name: "r", Match: []spec.HeaderMatch{{HeaderName: "X-Canary",
			HeaderValue: spec.StringMatch{Exact: strp("a"), Prefix: strp("a")}}}}}, "exactly one"},
	} {
		_, err := buildRoutes("shop", c.routes, map[string]bool{"x-canary": true})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}

func TestPlanList(t *testing.T) {
	cur := mapState{all: []mapEntry{
		{"0x1", "shop/prefix/x=a", "1"},
		{"0x2", "shop/prefix/x=b", "3"},
		{"0x3", "shop:weight", "10"},
	}}
	adds, dels := planList("/m", cur, "shop/prefix/", []kv{{"shop/prefix/x=a", "1"}, {"shop/prefix/x=b", "3"}})
	if len(adds)+len(dels) != 0 {
		t.Fatalf("same list: %q %q", cmdLines(adds), cmdLines(dels))
	}
	// Reordered: the new list goes in whole, then the old entries leave by id.
	adds, dels = planList("/m", cur, "shop/prefix/", []kv{{"shop/prefix/x=b", "1"}, {"shop/prefix/x=a", "3"}})
	eq(t, "adds", adds, `add map /m shop/prefix/x=b 1`, `add map /m shop/prefix/x=a 3`)
	eq(t, "dels", dels, `del map /m #0x1`, `del map /m #0x2`)
}

func TestPlanExactAndSetEntry(t *testing.T) {
	cur := mapState{all: []mapEntry{
		{"0x1", "shop/exact/x=a", "1"},
		{"0x2", "shop/exact/x=old", "3"},
		{"0x3", "shop:weight", "10"},
		{"0x4", "shop:weight", "20"}, // a duplicate from the user's file
	}}
	adds, dels := planExact("/m", cur, "shop", map[string]int{"shop/exact/x=a": 1, "shop/exact/x=new c": 5})
	eq(t, "adds", adds, `add map /m shop/exact/x=new\ c 5`)
	eq(t, "dels", dels, `del map /m shop/exact/x=old`)
	eq(t, "set dup", setEntry("/m", cur, "shop:weight", "10"), `set map /m shop:weight 10`)
	eq(t, "add", setEntry("/m", cur, "shop:salt", "7"), `add map /m shop:salt 7`)
	eq(t, "same", setEntry("/m", mapState{all: cur.all[:3]}, "shop:weight", "10"))
}

func TestCommandEscapes(t *testing.T) {
	if got := Command("add", "map", "/m", `a b;c\d`, "1"); got != `add map /m a\ b\;c\\d 1` {
		t.Fatalf("Command = %q", got)
	}
}

func TestAddresses(t *testing.T) {
	for _, ok := range []string{"unix:///run/haproxy/admin.sock", "tcp://127.0.0.1:9999", "tcp://[::1]:9999", "tcp://haproxy.internal:9999"} {
		if _, err := NewClient(ok, 0); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                   "required",
		"/run/admin.sock":    "scheme",
		"unix://run/x.sock":  "three slashes",
		"tcp://127.0.0.1":    "tcp://host:port",
		"http://127.0.0.1:1": "scheme",
	} {
		if _, err := NewClient(bad, 0); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", bad, err, want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	api := "unix:///run/haproxy/admin.sock"
	d, err := New("shop", spec.HAProxyRouter{RuntimeAPI: api})
	if err != nil {
		t.Fatal(err)
	}
	c := d.Config()
	if c.StableBackend != "shop_stable" || c.CanaryBackend != "shop_canary" || c.Map != DefaultMap || c.Timeout.D() != DefaultTimeout {
		t.Fatalf("defaults: %+v", c)
	}
	if b := d.Backends(); b["shop_stable"] != spec.RoleStable || b["shop_canary"] != spec.RoleCanary || len(b) != 2 {
		t.Fatalf("Backends = %v", b)
	}
	for name, c := range map[string]struct {
		rollout string
		cfg     spec.HAProxyRouter
		want    string
	}{
		"rollout":      {"Shop", spec.HAProxyRouter{RuntimeAPI: api}, "lowercase"},
		"backend":      {"shop", spec.HAProxyRouter{RuntimeAPI: api, StableBackend: "a b"}, "backend name"},
		"same backend": {"shop", spec.HAProxyRouter{RuntimeAPI: api, StableBackend: "x", CanaryBackend: "x"}, "own backend"},
		"map":          {"shop", spec.HAProxyRouter{RuntimeAPI: api, Map: "coalmine.map"}, "absolute"},
		"map space":    {"shop", spec.HAProxyRouter{RuntimeAPI: api, Map: "/a b.map"}, "spaces"},
		"no api":       {"shop", spec.HAProxyRouter{}, "required"},
		"timeout":      {"shop", spec.HAProxyRouter{RuntimeAPI: api, Timeout: -1}, "negative"},
	} {
		if _, err := New(c.rollout, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
	if RegexMap("/etc/haproxy/coalmine.map") != "/etc/haproxy/coalmine.regex.map" || RegexMap("/x/routes") != "/x/routes.regex" {
		t.Error("RegexMap names")
	}
}

func TestEndpoints(t *testing.T) {
	got, err := resolveEndpoints(context.Background(), net.DefaultResolver, "canary",
		[]string{"http://127.0.0.1:9001", "http://localhost:9002/", "http://[::1]:9003", "http://127.0.0.1:9001", "http://10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	want := "127.0.0.1:9001 127.0.0.1:9002 [::1]:9003 10.1.2.3:80"
	if strings.Join(got, " ") != want {
		t.Fatalf("resolved %q, want %q", got, want)
	}
	for bad, want := range map[string]string{
		"https://127.0.0.1:1":           "plain-HTTP",
		"http://127.0.0.1:1/api":        "no path",
		"http://127.0.0.1:0":            "invalid port",
		"http://no-such-host.invalid:1": "resolve",
	} {
		_, err := resolveEndpoints(context.Background(), net.DefaultResolver, "canary", []string{bad})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", bad, err, want)
		}
	}
	var dnsErr *net.DNSError
	_, err = resolveEndpoints(context.Background(), net.DefaultResolver, "canary", []string{"http://no-such-host.invalid:1"})
	if !errors.As(err, &dnsErr) {
		t.Errorf("a failed lookup keeps its DNS error: %v", err)
	}
}
