// Package kube is what the Kubernetes-based routers (Gateway API, Istio)
// share: finding the cluster (in-cluster or a kubeconfig), reading one
// object and changing it with a JSON patch guarded by its resourceVersion,
// and telling whether a Service or a set of pods has a ready endpoint.
// It knows nothing of rollouts.
package kube

import (
	"errors"
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Source says where a Config came from, for errors and logs.
type Source string

const (
	SourceInCluster  Source = "in-cluster service account"
	SourceKubeconfig Source = "kubeconfig"
)

// inClusterConfig is rest.InClusterConfig; tests replace it, as the real
// one reads the service-account token from a fixed path.
var inClusterConfig = rest.InClusterConfig

// Connection names the cluster: a kubeconfig file ("" for in-cluster
// when that works, else $KUBECONFIG or ~/.kube/config) and its context
// ("" for the current one).
type Connection struct {
	Kubeconfig string
	Context    string
}

// RESTConfig finds the cluster as c says. With no kubeconfig named, the
// pod's service account comes first (coalmine running in the cluster);
// outside a pod, the kubeconfig of $KUBECONFIG or ~/.kube/config. A
// context given with no kubeconfig also selects the kubeconfig path, as
// the in-cluster configuration has no contexts.
func RESTConfig(c Connection) (*rest.Config, Source, error) {
	if c.Kubeconfig == "" && c.Context == "" {
		cfg, err := inClusterConfig()
		if err == nil {
			return cfg, SourceInCluster, nil
		}
		if !errors.Is(err, rest.ErrNotInCluster) {
			return nil, "", fmt.Errorf("in-cluster configuration: %w", err)
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.Context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		where := "$KUBECONFIG or ~/.kube/config"
		if c.Kubeconfig != "" {
			where = c.Kubeconfig
		}
		if c.Context != "" {
			where += ", context " + c.Context
		}
		return nil, "", fmt.Errorf("no Kubernetes configuration: not in a pod, and %s: %w", where, err)
	}
	return cfg, SourceKubeconfig, nil
}

// NewClient returns the dynamic client of the cluster c names.
func NewClient(c Connection) (dynamic.Interface, Source, error) {
	cfg, src, err := RESTConfig(c)
	if err != nil {
		return nil, "", err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "coalmine"
	// A driver's calls are few (one read a second per rollout); the
	// defaults (5 QPS, burst 10) are enough and keep coalmine gentle.
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("Kubernetes client (%s): %w", src, err)
	}
	return dc, src, nil
}
