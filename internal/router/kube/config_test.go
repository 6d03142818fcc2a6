package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/router/kube/kubetest"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// kubeconfig writes a kubeconfig with two contexts: "fake" at the fake
// server, "dead" at a port nothing listens on; current is current.
func kubeconfig(t *testing.T, server, current string) string {
	t.Helper()
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: %q}
- name: dead
  cluster: {server: "http://127.0.0.1:1"}
users:
- name: u
  user: {token: secret}
contexts:
- name: fake
  context: {cluster: fake, user: u}
- name: dead
  context: {cluster: dead, user: u}
current-context: %s
`, server, current)
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func notInCluster(t *testing.T) {
	was := inClusterConfig
	inClusterConfig = func() (*rest.Config, error) { return nil, rest.ErrNotInCluster }
	t.Cleanup(func() { inClusterConfig = was })
}

// reaches reports whether a client built from c gets the fake server's
// ConfigMap.
func reaches(t *testing.T, c Connection) error {
	t.Helper()
	dc, _, err := NewClient(c)
	if err != nil {
		return err
	}
	_, err = Object{Client: dc, GVR: configMaps, Kind: "ConfigMap", Namespace: "prod", Name: "probe"}.Get(context.Background())
	return err
}

func fakeServer(t *testing.T) *kubetest.Server {
	s := kubetest.NewServer(t)
	s.Put(configMaps, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "probe", "namespace": "prod"}})
	return s
}

func TestKubeconfigFileAndContext(t *testing.T) {
	notInCluster(t)
	s := fakeServer(t)
	path := kubeconfig(t, s.URL(), "dead")
	if _, src, err := RESTConfig(Connection{Kubeconfig: path}); err != nil || src != SourceKubeconfig {
		t.Fatalf("RESTConfig = %v, %v", src, err)
	}
	if err := reaches(t, Connection{Kubeconfig: path, Context: "fake"}); err != nil {
		t.Errorf("context fake: %v", err)
	}
	if err := reaches(t, Connection{Kubeconfig: path}); err == nil {
		t.Error("the current context (dead) reached the fake server")
	}
	_, _, err := RESTConfig(Connection{Kubeconfig: path, Context: "nope"})
	if err == nil || !strings.Contains(err.Error(), "context nope") {
		t.Errorf("unknown context: %v", err)
	}
}

func TestKUBECONFIGWhenNotInACluster(t *testing.T) {
	notInCluster(t)
	s := fakeServer(t)
	t.Setenv("KUBECONFIG", kubeconfig(t, s.URL(), "fake"))
	if err := reaches(t, Connection{}); err != nil {
		t.Errorf("$KUBECONFIG: %v", err)
	}
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	if _, _, err := RESTConfig(Connection{}); err == nil || !strings.Contains(err.Error(), "not in a pod") {
		t.Errorf("no configuration at all: %v", err)
	}
}

func TestInClusterComesFirst(t *testing.T) {
	s := fakeServer(t)
	t.Setenv("KUBECONFIG", kubeconfig(t, s.URL(), "dead"))
	was := inClusterConfig
	inClusterConfig = func() (*rest.Config, error) { return &rest.Config{Host: s.URL(), BearerToken: "pod"}, nil }
	t.Cleanup(func() { inClusterConfig = was })
	if _, src, err := RESTConfig(Connection{}); err != nil || src != SourceInCluster {
		t.Errorf("in a pod: %v, %v", src, err)
	}
	if err := reaches(t, Connection{}); err != nil {
		t.Errorf("in a pod: %v", err)
	}
	// A kubeconfig or context named in the router wins over the pod's account.
	if _, src, _ := RESTConfig(Connection{Context: "fake"}); src != SourceKubeconfig {
		t.Errorf("with a context: %v", src)
	}
	inClusterConfig = func() (*rest.Config, error) { return nil, errors.New("token unreadable") }
	if _, _, err := RESTConfig(Connection{}); err == nil || !strings.Contains(err.Error(), "token unreadable") {
		t.Errorf("a broken pod configuration: %v", err)
	}
}

func TestDiff(t *testing.T) {
	old := map[string]any{"a": int64(1), "b": []any{map[string]any{"w": int64(1)}, "x"}, "c": "gone"}
	new := map[string]any{"a": 1.0, "b": []any{map[string]any{"w": int64(5)}, "x"}, "d/e": true}
	got := fmt.Sprint(Diff("", old, new))
	want := "[{replace /b/0/w 5} {remove /c <nil>} {add /d~1e true}]"
	if got != want {
		t.Errorf("Diff = %s, want %s", got, want)
	}
	if ops := Diff("", old, old); ops != nil {
		t.Errorf("Diff of equal values = %v", ops)
	}
}
