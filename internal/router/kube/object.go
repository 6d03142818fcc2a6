package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// MaxConflicts bounds how often Change reads the object again after
// someone else changed it between coalmine's read and its write.
const MaxConflicts = 5

// Object is one namespaced object coalmine reads and patches.
type Object struct {
	Client dynamic.Interface
	GVR    schema.GroupVersionResource
	// Kind names the object in errors ("HTTPRoute").
	Kind      string
	Namespace string
	Name      string
}

func (o Object) String() string { return fmt.Sprintf("%s %s/%s", o.Kind, o.Namespace, o.Name) }

// resource is the object's resource as RBAC names it (httproutes.gateway.networking.k8s.io).
func (o Object) resource() string {
	if o.GVR.Group == "" {
		return o.GVR.Resource
	}
	return o.GVR.Resource + "." + o.GVR.Group
}

// Get reads the object.
func (o Object) Get(ctx context.Context) (*unstructured.Unstructured, error) {
	u, err := o.Client.Resource(o.GVR).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
	if err != nil {
		return nil, o.explain("get", err)
	}
	return u, nil
}

// explain turns an API error into one that says what to do.
func (o Object) explain(verb string, err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found: create it, or name the right one in the router (namespace %q): %w", o, o.Namespace, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden to %s it: grant coalmine's identity the verb %q on %s in namespace %q (docs/routers.md lists the Role): %w", o, verb, verb, o.resource(), o.Namespace, err)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("%s: the API server refused coalmine's change as invalid (is the CRD version the one coalmine expects?): %w", o, err)
	}
	return fmt.Errorf("%s: %s: %w", o, verb, err)
}

// Op is one JSON patch (RFC 6902) operation.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// Plan says which operations make obj (as read) as coalmine wants it;
// none means it already is.
type Plan func(obj map[string]any) ([]Op, error)

// Change reads the object, asks plan what to change, and sends that as
// one JSON patch that also sets the resourceVersion it read: the API
// server refuses it with a conflict if the object changed in between, and
// Change then reads it again and plans afresh (at most MaxConflicts
// times). Nothing is sent when plan has nothing to change. It reports
// whether it wrote.
func (o Object) Change(ctx context.Context, plan Plan) (bool, error) {
	var last error
	for range MaxConflicts + 1 {
		u, err := o.Get(ctx)
		if err != nil {
			return false, err
		}
		ops, err := plan(u.Object)
		if err != nil {
			return false, fmt.Errorf("%s: %w", o, err)
		}
		if len(ops) == 0 {
			return false, nil
		}
		guarded := append([]Op{{Op: "replace", Path: "/metadata/resourceVersion", Value: u.GetResourceVersion()}}, ops...)
		body, err := json.Marshal(guarded)
		if err != nil {
			return false, fmt.Errorf("%s: encode the patch: %w", o, err)
		}
		_, err = o.Client.Resource(o.GVR).Namespace(o.Namespace).Patch(ctx, o.Name, types.JSONPatchType, body, metav1.PatchOptions{FieldManager: "coalmine", FieldValidation: "Strict"})
		if err == nil {
			return true, nil
		}
		if !apierrors.IsConflict(err) {
			return false, o.explain("patch", err)
		}
		last = err
	}
	return false, fmt.Errorf("%s changed under coalmine %d times in a row; will try again: %w", o, MaxConflicts+1, last)
}

// Pointer escapes one JSON pointer token (RFC 6901).
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// Annotations returns the operations that give obj's annotations the
// values in set ("" removes the key), touching no other annotation.
func Annotations(obj map[string]any, set map[string]string) []Op {
	have, _, _ := unstructured.NestedStringMap(obj, "metadata", "annotations")
	var ops []Op
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if have == nil {
		add := map[string]any{}
		for _, k := range keys {
			if set[k] != "" {
				add[k] = set[k]
			}
		}
		if len(add) == 0 {
			return nil
		}
		return []Op{{Op: "add", Path: "/metadata/annotations", Value: add}}
	}
	for _, k := range keys {
		v, ok := have[k]
		switch {
		case set[k] == "" && ok:
			ops = append(ops, Op{Op: "remove", Path: Pointer("metadata", "annotations", k)})
		case set[k] != "" && (!ok || v != set[k]):
			ops = append(ops, Op{Op: "add", Path: Pointer("metadata", "annotations", k), Value: set[k]})
		}
	}
	return ops
}
