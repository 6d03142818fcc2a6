package kube

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

var (
	endpointSlices = schema.GroupVersionResource{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"}
	pods           = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// ServiceReady reports whether Service name in namespace has a ready
// endpoint, from its EndpointSlices (the kubernetes.io/service-name
// label). An endpoint whose ready condition is absent counts as ready, as
// the EndpointSlice API says it must.
func ServiceReady(ctx context.Context, c dynamic.Interface, namespace, name string) (bool, error) {
	sel := labels.Set{"kubernetes.io/service-name": name}.String()
	list, err := c.Resource(endpointSlices).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return false, listError("endpointslices.discovery.k8s.io", namespace, err)
	}
	for _, s := range list.Items {
		eps, _, _ := unstructured.NestedSlice(s.Object, "endpoints")
		for _, e := range eps {
			m, ok := e.(map[string]any)
			if !ok {
				continue
			}
			ready, found, _ := unstructured.NestedBool(m, "conditions", "ready")
			if !found || ready {
				return true, nil
			}
		}
	}
	return false, nil
}

// PodsReady reports whether a pod in namespace with all of the labels
// sel has its Ready condition True.
func PodsReady(ctx context.Context, c dynamic.Interface, namespace string, sel map[string]string) (bool, error) {
	if len(sel) == 0 {
		return false, fmt.Errorf("no labels to select the pods by")
	}
	list, err := c.Resource(pods).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.Set(sel).String()})
	if err != nil {
		return false, listError("pods", namespace, err)
	}
	for _, p := range list.Items {
		conds, _, _ := unstructured.NestedSlice(p.Object, "status", "conditions")
		for _, c := range conds {
			m, ok := c.(map[string]any)
			if ok && m["type"] == "Ready" && m["status"] == "True" {
				return true, nil
			}
		}
	}
	return false, nil
}

// List lists the objects of gvr in namespace.
func List(ctx context.Context, c dynamic.Interface, gvr schema.GroupVersionResource, namespace string) ([]unstructured.Unstructured, error) {
	list, err := c.Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		res := gvr.Resource
		if gvr.Group != "" {
			res += "." + gvr.Group
		}
		return nil, listError(res, namespace, err)
	}
	return list.Items, nil
}

func listError(resource, namespace string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("forbidden to list %s: grant coalmine's identity the verb \"list\" on %s in namespace %q: %w", resource, resource, namespace, err)
	}
	return fmt.Errorf("list %s in namespace %q: %w", resource, namespace, err)
}
