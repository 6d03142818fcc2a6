package e2e

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestListenOverride: `serve --listen-override NAME=ADDR` serves rollout
// NAME on ADDR on this server instead of its spec.listen (issue 12: replicas
// sharing a machine keep their proxy listeners apart), for rollouts from the
// files and for one applied through the API; a malformed override is a
// usage error that says how to write it.
func TestListenOverride(t *testing.T) {
	stable, canary := startBackend(t, "v1"), startBackend(t, "v2")
	alt, altCart := freeAddr(t), freeAddr(t)
	s := newServer(t, stable, canary, "--listen-override", "shop="+alt, "--listen-override", "cart="+altCart)
	s.start()
	if got := versionFor(t, alt, "u1"); got != "v1" {
		t.Errorf("the override address answered %q, want v1", got)
	}
	if c, err := net.DialTimeout("tcp", s.Listen, time.Second); err == nil {
		c.Close()
		t.Errorf("spec.listen %s is served too; only the override should be", s.Listen)
	}
	if !strings.Contains(s.logs.String(), "--listen-override; spec.listen is "+s.Listen) {
		t.Errorf("the start-up log does not say the listener is overridden:\n%s", s.logs.String())
	}
	cart := filepath.Join(t.TempDir(), "cart.yaml")
	writeFile(t, cart, fmt.Sprintf(`apiVersion: coalmine.dev/v1alpha1
kind: Rollout
metadata: {name: cart}
spec:
  listen: %s
  stable: {version: v1, endpoints: [%s]}
`, freeAddr(t), stable.URL))
	s.mustCLI("apply", "-f", cart)
	eventually(t, 5*time.Second, "the applied rollout to serve on its override", func() bool {
		c, err := net.DialTimeout("tcp", altCart, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if got := versionFor(t, altCart, "u1"); got != "v1" {
		t.Errorf("the applied rollout's override answered %q", got)
	}

	out, code := run(t, "serve", "-f", s.Config, "--listen-override", "shop")
	if code != 2 || !strings.Contains(out, "write NAME=HOST:PORT") {
		t.Errorf("malformed override: exit %d\n%s", code, out)
	}
	out, code = run(t, "serve", "-f", s.Config, "--listen-override", "shop=localhost:http")
	if code != 2 || !strings.Contains(out, `invalid port "http"`) {
		t.Errorf("bad port: exit %d\n%s", code, out)
	}
}
