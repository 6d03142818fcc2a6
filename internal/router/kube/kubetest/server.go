package kubetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Server is the fake API server. Its methods are safe for concurrent use.
type Server struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	objects   map[key]map[string]any
	schemas   map[string]*Schema // by group/resource
	rv        int
	writes    int
	forbidden map[string]bool // "verb resource"
	onWrite   func()
	rejected  []string
}

type key struct {
	group, resource, namespace, name string
}

// NewServer starts a fake API server, stopped when the test ends.
func NewServer(t testing.TB) *Server {
	s := &Server{t: t, objects: map[key]map[string]any{}, schemas: map[string]*Schema{}, forbidden: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the server's address.
func (s *Server) URL() string { return s.srv.URL }

// Client is a dynamic client of the server.
func (s *Server) Client() dynamic.Interface {
	c, err := dynamic.NewForConfig(&rest.Config{Host: s.srv.URL})
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

// Validate makes the server admit objects of gvr's group and resource
// only as sc allows (and fill its defaults), as the API server does with
// a CRD.
func (s *Server) Validate(gvr schema.GroupVersionResource, sc *Schema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.schemas[gvr.Group+"/"+gvr.Resource] = sc
}

// Forbid makes the server answer 403 to verb (get, list, patch, update)
// on resource (as in the URL: httproutes, pods).
func (s *Server) Forbid(verb, resource string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[verb+" "+resource] = true
}

// OnWrite sets a function called before each write (patch or put) is
// served, outside the server's lock: a test changes the object there to
// make the write conflict.
func (s *Server) OnWrite(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onWrite = f
}

// Writes counts the writes the server accepted.
func (s *Server) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// Rejected lists the writes the schema refused, with why.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// Put stores obj (of gvr) as a client's create would: checked against
// the schema (the test fails if it is invalid), defaulted, given a new
// resourceVersion.
func (s *Server) Put(gvr schema.GroupVersionResource, obj map[string]any) {
	s.t.Helper()
	u := unstructured.Unstructured{Object: deepCopy(obj)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if errs := s.admit(gvr.Group, gvr.Resource, u.Object); len(errs) > 0 {
		s.t.Fatalf("kubetest: %s %s/%s is invalid: %s", gvr.Resource, u.GetNamespace(), u.GetName(), strings.Join(errs, "; "))
	}
	s.rv++
	u.SetResourceVersion(strconv.Itoa(s.rv))
	s.objects[key{gvr.Group, gvr.Resource, u.GetNamespace(), u.GetName()}] = u.Object
}

// Get returns a copy of the stored object, or nil.
func (s *Server) Get(gvr schema.GroupVersionResource, namespace, name string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objects[key{gvr.Group, gvr.Resource, namespace, name}]
	if o == nil {
		return nil
	}
	return deepCopy(o)
}

// Delete removes the object.
func (s *Server) Delete(gvr schema.GroupVersionResource, namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key{gvr.Group, gvr.Resource, namespace, name})
}

func (s *Server) admit(group, resource string, obj map[string]any) []string {
	sc := s.schemas[group+"/"+resource]
	if sc == nil {
		return nil
	}
	return sc.Admit(obj)
}

// parse splits /api/v1/namespaces/NS/RES[/NAME] and
// /apis/GROUP/VERSION/namespaces/NS/RES[/NAME].
func parse(path string) (k key, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) >= 4 && parts[0] == "api" && parts[2] == "namespaces":
		parts = parts[3:]
	case len(parts) >= 5 && parts[0] == "apis" && parts[3] == "namespaces":
		k.group = parts[1]
		parts = parts[4:]
	default:
		return k, false
	}
	switch len(parts) {
	case 2:
		k.namespace, k.resource = parts[0], parts[1]
	case 3:
		k.namespace, k.resource, k.name = parts[0], parts[1], parts[2]
	default:
		return k, false
	}
	return k, true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	k, ok := parse(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	gr := schema.GroupResource{Group: k.group, Resource: k.resource}
	verb := map[string]string{http.MethodGet: "get", http.MethodPatch: "patch", http.MethodPut: "update"}[r.Method]
	if verb == "" {
		writeStatus(w, apierrors.NewMethodNotSupported(gr, r.Method))
		return
	}
	if k.name == "" {
		if verb != "get" {
			writeStatus(w, apierrors.NewMethodNotSupported(gr, r.Method))
			return
		}
		verb = "list"
	}
	if verb != "get" && verb != "list" {
		s.mu.Lock()
		hook := s.onWrite
		s.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forbidden[verb+" "+k.resource] {
		writeStatus(w, apierrors.NewForbidden(gr, k.name, fmt.Errorf("kubetest forbids %s", verb)))
		return
	}
	switch verb {
	case "list":
		s.list(w, r, k)
	case "get":
		o := s.objects[k]
		if o == nil {
			writeStatus(w, apierrors.NewNotFound(gr, k.name))
			return
		}
		writeJSON(w, http.StatusOK, o)
	default:
		s.write(w, r, k, gr)
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, k key) {
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	items := []any{}
	for ok, o := range s.objects {
		if ok.group != k.group || ok.resource != k.resource || ok.namespace != k.namespace {
			continue
		}
		u := unstructured.Unstructured{Object: o}
		if sel.Matches(labels.Set(u.GetLabels())) {
			items = append(items, o)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apiVersion": "v1", "kind": "List", "metadata": map[string]any{"resourceVersion": strconv.Itoa(s.rv)}, "items": items})
}

// write serves a patch or put as the API server does: the resulting
// object's resourceVersion, when set, must be the stored one (else 409);
// the result must pass the schema (else 422).
func (s *Server) write(w http.ResponseWriter, r *http.Request, k key, gr schema.GroupResource) {
	cur := s.objects[k]
	if cur == nil {
		writeStatus(w, apierrors.NewNotFound(gr, k.name))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	curJSON, _ := json.Marshal(cur)
	var next []byte
	switch ct := r.Header.Get("Content-Type"); {
	case r.Method == http.MethodPut:
		next = body
	case strings.HasPrefix(ct, "application/json-patch+json"):
		p, err := jsonpatch.DecodePatch(body)
		if err == nil {
			next, err = p.Apply(curJSON)
		}
		if err != nil {
			writeStatus(w, apierrors.NewInvalid(schema.GroupKind{Group: k.group, Kind: k.resource}, k.name, field.ErrorList{field.Invalid(nil, string(body), err.Error())}))
			return
		}
	case strings.HasPrefix(ct, "application/merge-patch+json"):
		next, err = jsonpatch.MergePatch(curJSON, body)
		if err != nil {
			writeStatus(w, apierrors.NewBadRequest(err.Error()))
			return
		}
	default:
		writeStatus(w, apierrors.NewBadRequest("unsupported patch type "+ct))
		return
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(next); err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	have := (&unstructured.Unstructured{Object: cur}).GetResourceVersion()
	if rv := u.GetResourceVersion(); rv != "" && rv != have {
		writeStatus(w, apierrors.NewConflict(gr, k.name, fmt.Errorf("the object has been modified; resourceVersion %s, not %s", have, rv)))
		return
	}
	if errs := s.admit(k.group, k.resource, u.Object); len(errs) > 0 {
		msg := fmt.Sprintf("%s %s/%s: %s", k.resource, k.namespace, k.name, strings.Join(errs, "; "))
		s.rejected = append(s.rejected, msg)
		s.t.Errorf("kubetest: the schema refuses what coalmine wrote: %s\nbody: %s", msg, body)
		writeStatus(w, apierrors.NewInvalid(schema.GroupKind{Group: k.group, Kind: k.resource}, k.name, field.ErrorList{field.Invalid(nil, "", strings.Join(errs, "; "))}))
		return
	}
	s.rv++
	u.SetResourceVersion(strconv.Itoa(s.rv))
	s.objects[k] = u.Object
	s.writes++
	writeJSON(w, http.StatusOK, u.Object)
}

func writeStatus(w http.ResponseWriter, err *apierrors.StatusError) {
	st := err.ErrStatus
	st.APIVersion, st.Kind = "v1", "Status"
	writeJSON(w, int(st.Code), st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func deepCopy(o map[string]any) map[string]any {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err)
	}
	// Numbers as the API machinery decodes them (int64, not float64).
	u := unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		panic(err)
	}
	return u.Object
}
