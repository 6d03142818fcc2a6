package config

import (
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Check applies the validation of Load to objects that did not come from
// files, such as a rollout applied through the admin API: defaults, the
// per-object rules, and the rules that span objects (unique names, one
// rollout per listen address, template references and their arguments).
// Objects are defaulted in place. Errors carry field paths but no file
// positions; a rollout's errors name it in File so that a set of objects
// reports which one is wrong.
func Check(rollouts []spec.Rollout, templates []spec.AnalysisTemplate) Errors {
	var docs []*document
	var errs Errors
	for i := range templates {
		t := &templates[i]
		d := &document{file: "AnalysisTemplate " + t.Metadata.Name, kind: spec.KindAnalysisTemplate, name: t.Metadata.Name, template: t}
		errs = append(errs, checkObject(d, t)...)
		docs = append(docs, d)
	}
	for i := range rollouts {
		r := &rollouts[i]
		d := &document{file: "Rollout " + r.Metadata.Name, kind: spec.KindRollout, name: r.Metadata.Name, rollout: r}
		errs = append(errs, checkObject(d, r)...)
		docs = append(docs, d)
	}
	_, more := assemble(docs)
	return append(errs, more...)
}

func checkObject(d *document, obj object) Errors {
	obj.SetDefaults()
	var errs Errors
	for _, fe := range obj.Validate() {
		errs = append(errs, Error{File: d.file, Path: fe.Path, Msg: fe.Msg})
	}
	return errs
}

// ResolveRolloutSecrets checks that every secret reference of r resolves
// (from the process environment or a file), as Lint does for files.
func ResolveRolloutSecrets(r spec.Rollout) Errors {
	b := &Bundle{Rollouts: []spec.Rollout{r}}
	return resolveSecrets(b, nil, nil)
}
