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
	maint = 0x01 // a server in maintenance
	ready = 0x00
)

func TestPlanServers(t *testing.T) {
	servers := []serverState{
		{Name: "coalmine-10.0.0.1-80", Addr: "10.0.0.1", Port: 80, Admin: ready, OpState: 2},
		{Name: "coalmine-10.0.0.2-80", Addr: "10.0.0.2", Port: 80, Admin: ready, OpState: 2},
		{Name: "coalmine-10.0.0.9-80", Addr: "10.0.0.9", Port: 80, Admin: maint},
		{Name: "own", Addr: "10.9.9.9", Port: 80, Admin: 0x05}, // the user's, disabled in haproxy.cfg
	}

	enable, retire, err := planServers("b", servers, []string{"10.0.0.1:80", "10.0.0.2:80"})
	eq(t, "same state enable", enable)
	eq(t, "same state retire", retire, `del server b/coalmine-10.0.0.9-80`)
	if err != nil {
		t.Fatal(err)
	}

	// One endpoint replaced: the new server is added and readied before
	// the old one leaves service; nothing is ever re-pointed.
	enable, retire, _ = planServers("b", servers, []string{"10.0.0.1:80", "10.0.0.3:80"})
	eq(t, "replace enable", enable, `add server b/coalmine-10.0.0.3-80 10.0.0.3:80`, `set server b/coalmine-10.0.0.3-80 state ready`)
	eq(t, "replace retire", retire, `set server b/coalmine-10.0.0.2-80 state maint`, `del server b/coalmine-10.0.0.2-80`, `del server b/coalmine-10.0.0.9-80`)

	// A server in maintenance at a wanted address is readied again.
	enable, _, _ = planServers("b", servers, []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.9:80"})
	eq(t, "reuse", enable, `set server b/coalmine-10.0.0.9-80 state ready`)

	// No endpoints: everything leaves, after traffic moved; the user's own
	// ready server too, since the backend serves the version only.
	own := append(servers[:2:2], serverState{Name: "own", Addr: "10.9.9.9", Port: 80, OpState: 2})
	enable, retire, _ = planServers("b", own, nil)
	eq(t, "none enable", enable)
	eq(t, "none retire", retire,
		`set server b/coalmine-10.0.0.1-80 state maint`, `del server b/coalmine-10.0.0.1-80`,
		`set server b/coalmine-10.0.0.2-80 state maint`, `del server b/coalmine-10.0.0.2-80`,
		`set server b/own state maint`)

	// IPv6 names stay plain.
	enable, _, _ = planServers("b", nil, []string{"[::1]:9003"})
	eq(t, "ipv6", enable, `add server b/coalmine-__1-9003 [::1]:9003`, `set server b/coalmine-__1-9003 state ready`)

	// A server whose address no longer matches its name is not trusted.
	moved := []serverState{{Name: "coalmine-10.0.0.1-80", Addr: "10.0.0.5", Port: 80}}
	if _, _, err := planServers("b", moved, []string{"10.0.0.1:80"}); err == nil || !strings.Contains(err.Error(), "del server") {
		t.Fatalf("a re-pointed server: %v", err)
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

func TestRolloutsShareAMap(t *testing.T) {
	entries := []mapEntry{
		{"0x1", "shop:weight", "1"},
		{"0x2", "shop-2:weight", "2"},
		{"0x3", "shop/exact/x=a", "3"},
		{"0x4", "shop-2/exact/x=a", "4"},
		{"0x5", "shopx:weight", "5"},
	}
	got := ofRollout(entries, "shop:", routesPrefix("shop"))
	if len(got.all) != 2 || got.all[0].Ref != "0x1" || got.all[1].Ref != "0x3" {
		t.Fatalf("rollout shop's entries: %v", got.all)
	}
}
