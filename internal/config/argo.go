package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Argo Rollouts' own shapes, read as coalmine's so that an AnalysisTemplate
// written for Argo ports unchanged (docs/coming-from-argo-flagger.md). The
// rewrite happens on the YAML tree before the strict walk, so positions in
// messages stay those of the user's file and everything after it (types,
// unknown fields, validation) is the one coalmine path.
const (
	// ArgoAPIVersion is Argo Rollouts' apiVersion, accepted on templates.
	ArgoAPIVersion = "argoproj.io/v1alpha1"
	// KindClusterAnalysisTemplate is read as an AnalysisTemplate: coalmine
	// has no namespaces, so every template is cluster-wide already.
	KindClusterAnalysisTemplate = "ClusterAnalysisTemplate"
)

// kubernetesMetadata are the metadata fields Kubernetes manifests carry
// that mean nothing outside Kubernetes. They are dropped with a warning
// rather than rejected, so a manifest can be used as it is.
var kubernetesMetadata = []string{
	"namespace", "labels", "annotations", "uid", "resourceVersion", "generation",
	"creationTimestamp", "deletionTimestamp", "finalizers", "ownerReferences",
	"managedFields", "generateName", "selfLink",
}

// normalizeArgo rewrites Argo's shapes in root, a document's mapping, and
// records warnings for what is ignored. It marks the document as written
// for Argo (d.argo) when it has Argo's apiVersion, which makes a rollout
// that uses it subject to the warnings about defaults that differ. fatal
// means the document cannot be read further.
func (d *document) normalizeArgo(root *yaml.Node) (errs Errors, fatal bool) {
	kind := lookup(root, "kind")
	if av := lookup(root, "apiVersion"); av != nil && av.Kind == yaml.ScalarNode && av.Value == ArgoAPIVersion &&
		kind != nil && kind.Kind == yaml.ScalarNode {
		switch kind.Value {
		case spec.KindAnalysisTemplate:
			d.argo = true
			av.Value = spec.APIVersion
		case KindClusterAnalysisTemplate:
			d.argo = true
			av.Value, kind.Value = spec.APIVersion, spec.KindAnalysisTemplate
			d.warn(posOf(kind), "kind", "ClusterAnalysisTemplate is read as an AnalysisTemplate: coalmine has no namespaces, so every template is visible to every rollout and names must be unique")
		case spec.KindRollout:
			errs = append(errs, Error{File: d.file, Line: av.Line, Column: av.Column, Path: "apiVersion",
				Msg: fmt.Sprintf("an Argo Rollout does not port as it is (it names Kubernetes Services and pods; coalmine names endpoints): write apiVersion %s with spec.stable and spec.canary as in docs/coming-from-argo-flagger.md; AnalysisTemplates may keep %s", spec.APIVersion, ArgoAPIVersion)})
			return errs, true
		}
	}
	if kind != nil && kind.Kind == yaml.ScalarNode && kind.Value == KindClusterAnalysisTemplate && !d.argo {
		kind.Value = spec.KindAnalysisTemplate
		d.warn(posOf(kind), "kind", "ClusterAnalysisTemplate is read as an AnalysisTemplate: coalmine has no namespaces, so every template is visible to every rollout and names must be unique")
	}
	if md := lookup(root, "metadata"); md != nil && md.Kind == yaml.MappingNode {
		d.dropKubernetesMetadata(md)
	}
	if s := lookup(root, "spec"); s != nil && s.Kind == yaml.MappingNode {
		if ms := lookup(s, "metrics"); ms != nil && ms.Kind == yaml.SequenceNode {
			for i, m := range ms.Content {
				if m = resolve(m); m == nil || m.Kind != yaml.MappingNode {
					continue
				}
				p := spec.FieldPath("spec.metrics").Index(i).Child("provider")
				pr := lookup(m, "provider")
				if pr == nil || pr.Kind != yaml.MappingNode {
					continue
				}
				for _, name := range []string{"prometheus", "web"} {
					if pv := lookup(pr, name); pv != nil && pv.Kind == yaml.MappingNode {
						errs = append(errs, d.headerList(pv, p.Child(name).Child("headers"))...)
					}
				}
			}
		}
	}
	return errs, false
}

// warn records a warning at pos.
func (d *document) warn(pos position, p spec.FieldPath, format string, args ...any) {
	d.warnings = append(d.warnings, Error{File: d.file, Line: pos.line, Column: pos.col, Path: string(p), Msg: fmt.Sprintf(format, args...)})
}

func (d *document) dropKubernetesMetadata(md *yaml.Node) {
	kept := md.Content[:0]
	var dropped []string
	var first *yaml.Node
	for i := 0; i+1 < len(md.Content); i += 2 {
		k := md.Content[i]
		if k.Kind == yaml.ScalarNode && slices.Contains(kubernetesMetadata, k.Value) {
			dropped = append(dropped, k.Value)
			if first == nil {
				first = k
			}
			continue
		}
		kept = append(kept, md.Content[i], md.Content[i+1])
	}
	md.Content = kept
	if first != nil {
		p := spec.FieldPath("metadata").Child(dropped[0])
		d.warn(posOf(first), p, "Kubernetes metadata ignored (%s): coalmine has no namespaces and does not use labels or annotations", strings.Join(dropped, ", "))
	}
}

// headerList turns Argo's `headers: [{key: K, value: V}]` into coalmine's
// `headers: {K: V}` in place. Keys keep their positions, so a key given
// twice is reported by the strict walk as a duplicate.
func (d *document) headerList(provider *yaml.Node, p spec.FieldPath) Errors {
	h := lookup(provider, "headers")
	if h == nil || h.Kind != yaml.SequenceNode {
		return nil
	}
	var errs Errors
	m := yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: h.Line, Column: h.Column}
	for i, item := range h.Content {
		item = resolve(item)
		ip := p.Index(i)
		if item == nil || item.Kind != yaml.MappingNode {
			errs = append(errs, d.errAt(item, ip, "a header is {key: NAME, value: VALUE} (or write headers as a mapping, NAME: VALUE)"))
			continue
		}
		var key, value *yaml.Node
		bad := false
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], resolve(item.Content[j+1])
			switch {
			case k.Value == "key" && key == nil:
				key = v
			case k.Value == "value" && value == nil:
				value = v
			default:
				errs = append(errs, d.errAt(k, ip.Child(k.Value), "a header list entry has only key and value"))
				bad = true
			}
		}
		switch {
		case bad:
		case key == nil || key.Kind != yaml.ScalarNode || key.Value == "":
			errs = append(errs, d.errAt(item, ip.Child("key"), "a header needs key: the header name"))
		case value == nil:
			errs = append(errs, d.errAt(item, ip.Child("value"), "header %q needs value", key.Value))
		default:
			k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key.Value, Line: key.Line, Column: key.Column}
			m.Content = append(m.Content, k, value)
		}
	}
	*h = m
	return errs
}

func (d *document) errAt(n *yaml.Node, p spec.FieldPath, format string, args ...any) Error {
	e := Error{File: d.file, Path: string(p), Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

// argoShaped reports whether a rollout was written for Argo Rollouts: it
// uses a shape only Argo users write (a duration in bare seconds,
// rollbackWindow: {revisions}, a clusterScope reference, an analysis'
// dryRun or measurementRetention list, a Kubernetes valueFrom) or an
// AnalysisTemplate written with Argo's apiVersion. Such a rollout is
// warned about the defaults that differ from Argo's.
func argoShaped(d *document, argoTemplates map[string]bool) bool {
	if d.argo {
		return true
	}
	c := d.rollout.Spec.Strategy.Canary
	uses := func(refs []spec.TemplateRef, args []spec.Arg, dry []spec.MetricSelector, ret []spec.MeasurementRetention) bool {
		if len(dry) > 0 || len(ret) > 0 {
			return true
		}
		for _, r := range refs {
			if r.ClusterScope || argoTemplates[r.TemplateName] {
				return true
			}
		}
		for _, a := range args {
			if f := a.ValueFrom; f != nil && (f.SecretKeyRef != nil || f.FieldRef != nil || f.PodTemplateHashValue != "") {
				return true
			}
		}
		return false
	}
	if a := c.Analysis; a != nil && uses(a.Templates, a.Args, a.DryRun, a.MeasurementRetention) {
		return true
	}
	for _, st := range c.Steps {
		if a := st.Analysis; a != nil && uses(a.Templates, a.Args, a.DryRun, a.MeasurementRetention) {
			return true
		}
	}
	return false
}

// handlesEmptyRE finds the condition helpers that decide on an empty
// result (analysis.handlesEmpty).
var handlesEmptyRE = regexp.MustCompile(`\b(default|isNil)\s*\(`)

// warnNoData tells an Argo user about coalmine's one deliberate difference
// in conditions: an empty result (an empty Prometheus vector, a JSONPath
// that matches nothing) waits for data instead of counting as an error,
// unless the condition decides it with default() or isNil().
func (d *document) warnNoData() {
	var names []string
	for _, m := range d.template.Spec.Metrics {
		if m.Judge != nil || (m.Provider.Prometheus == nil && m.Provider.Web == nil && m.Provider.CloudWatch == nil) ||
			// a scalar is never empty, nor is a body read without jsonPath
			(m.Provider.Prometheus != nil && strings.HasPrefix(strings.TrimSpace(m.Provider.Prometheus.Query), "scalar(")) ||
			(m.Provider.Web != nil && m.Provider.Web.JSONPath == "") ||
			(m.SuccessCondition == "" && m.FailureCondition == "") ||
			handlesEmptyRE.MatchString(m.SuccessCondition) || handlesEmptyRE.MatchString(m.FailureCondition) {
			continue
		}
		names = append(names, strconv.Quote(m.Name))
	}
	if len(names) == 0 {
		return
	}
	d.warn(d.ix.locate("spec.metrics"), "spec.metrics", "%s: an empty result (no series, nothing matching jsonPath) waits for data, as NoData, and pauses the rollout after progressDeadline, where Argo counts an error and eventually aborts; a canary is never rolled back for lack of data. To decide on an empty result as in Argo, use default(result, …) or isNil(result) in the condition",
		strings.Join(names, ", "))
}
