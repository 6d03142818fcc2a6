// Package kubetest is a test double of the small part of the Kubernetes
// API the Kubernetes-based routers use (get, list, patch and put of
// namespaced objects, with resourceVersion conflicts, 404 and 403), which
// checks every object written to it against the official CRD's OpenAPI v3
// schema the way the API server does: unknown fields, defaults, the
// schema, list types and the CEL rules (x-kubernetes-validations), with
// k8s.io/apiextensions-apiserver's own code. The CRDs are read at test
// time from the Go module cache of the projects that publish them; none
// is copied into this repository.
package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// Schema is one served version of a CRD, ready to check objects.
type Schema struct {
	// Source says which module file and CRD it came from.
	Source     string
	structural *structuralschema.Structural
	validator  validation.SchemaValidator
	cel        *cel.Validator
}

// ModuleDir returns the directory of module@version in the Go module
// cache (downloading it through the Go module proxy if it is not there).
func ModuleDir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir() // outside any module: nothing is added to go.mod
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, version, err, stderr.String())
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s gave no directory", module, version)
	}
	return info.Dir, nil
}

// LoadSchema reads file (relative to module@version's directory; one or
// many YAML documents) and returns the schema of version of the CRD
// whose kind is kind.
func LoadSchema(module, version, file, kind, crdVersion string) (*Schema, error) {
	dir, err := ModuleDir(module, version)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, file)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := dec.Decode(&crd); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if crd.Kind != "CustomResourceDefinition" || crd.Spec.Names.Kind != kind {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Name != crdVersion || v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			s, err := newSchema(v.Schema.OpenAPIV3Schema)
			if err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", path, kind, crdVersion, err)
			}
			s.Source = fmt.Sprintf("%s@%s/%s (%s %s)", module, version, file, kind, crdVersion)
			return s, nil
		}
		return nil, fmt.Errorf("%s: CRD %s has no version %s with a schema", path, kind, crdVersion)
	}
	return nil, fmt.Errorf("%s: no CRD of kind %s", path, kind)
}

func newSchema(v1 *apiextensionsv1.JSONSchemaProps) (*Schema, error) {
	var internal apiextensions.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v1, &internal, nil); err != nil {
		return nil, err
	}
	st, err := structuralschema.NewStructural(&internal)
	if err != nil {
		return nil, err
	}
	val, _, err := validation.NewSchemaValidator(&internal)
	if err != nil {
		return nil, err
	}
	return &Schema{structural: st, validator: val, cel: cel.NewValidator(st, true, celconfig.PerCallLimit)}, nil
}

// Admit does to obj what the API server does to a custom resource it is
// given: it reports the fields the schema does not know (the server would
// drop them silently, so coalmine must never write one), fills the
// schema's defaults in obj, and checks the result against the schema,
// its list types and its CEL rules. It returns every complaint.
func (s *Schema) Admit(obj map[string]any) []string {
	var out []string
	for _, p := range structuralpruning.PruneWithOptions(obj, s.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true}) {
		if !strings.HasPrefix(p, "metadata.") && !strings.HasPrefix(p, "status") {
			out = append(out, "unknown field "+p)
		}
	}
	structuraldefaulting.Default(obj, s.structural)
	var errs field.ErrorList
	errs = append(errs, validation.ValidateCustomResource(nil, obj, s.validator)...)
	errs = append(errs, listtype.ValidateListSetsAndMaps(nil, s.structural, obj)...)
	celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	errs = append(errs, celErrs...)
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}
