package haproxy

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

var update = flag.Bool("update", false, "rewrite examples/haproxy/haproxy.cfg from ConfigSections")

const examplePath = "../../../examples/haproxy/haproxy.cfg"

// exampleConfig is examples/haproxy/haproxy.cfg: a complete configuration
// for rollout "shop" around the lines ConfigSections gives.
func exampleConfig() string {
	s := ConfigSections("shop", spec.HAProxyRouter{RuntimeAPI: "unix:///run/haproxy/admin.sock"}, "X-User-Id", []string{"X-Canary"})
	return `# coalmine example: HAProxy carries the traffic of rollout "shop"; coalmine
# moves it through the runtime API (no reload). The rollout says:
#
#   trafficRouting:
#     router:
#       haproxy:
#         runtimeAPI: unix:///run/haproxy/admin.sock
#         # stableBackend: shop_stable, canaryBackend: shop_canary and
#         # map: /etc/haproxy/coalmine.map are the defaults
#     assignment:
#       userHeader: X-User-Id
#     headerRoutes:
#       - name: testers
#         match: [{headerName: X-Canary, headerValue: {exact: always}}]
#
# Before HAProxy starts, create the two (empty) map files:
#   touch /etc/haproxy/coalmine.map /etc/haproxy/coalmine.regex.map
# Access-log lines (option httplog, naming the backend and so the version)
# go to the syslog receiver at 127.0.0.1:5514.
#
` + s.Header + `
global
    log 127.0.0.1:5514 local0
    stats socket /run/haproxy/admin.sock mode 660 level admin
    stats timeout 30s
` + s.Global + `
defaults
    mode http
    log global
    option httplog
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend web
    bind :8080
` + s.Frontend + `
` + s.StableBackend + `
` + s.CanaryBackend
}

// TestExampleConfig keeps the example equal to what ConfigSections gives
// and proves HAProxy accepts it (haproxy -c), with its paths moved into a
// temporary directory.
func TestExampleConfig(t *testing.T) {
	want := exampleConfig()
	if *update {
		if err := os.MkdirAll(filepath.Dir(examplePath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(examplePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s differs from what ConfigSections gives: run go test ./internal/router/haproxy -run TestExampleConfig -update", examplePath)
	}
	bin := haproxyBinary(t)
	dir := t.TempDir()
	cfg := strings.ReplaceAll(string(got), "/etc/haproxy/", dir+"/")
	cfg = strings.ReplaceAll(cfg, "/run/haproxy/", dir+"/")
	for _, f := range []string{"coalmine.map", "coalmine.regex.map"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-c", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c rejects the example: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "WARNING") {
		t.Fatalf("haproxy -c warns about the example:\n%s", out)
	}
}
