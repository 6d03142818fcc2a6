package config

import (
	"fmt"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// explicitZeros reports fields the user set to zero or "" that SetDefaults
// then replaced. The plain int and duration fields cannot tell "unset" from
// zero, and silently turning an explicit `consecutiveErrors: 0` into 5 is
// exactly the kind of surprise SPEC §2 forbids.
func (w *walker) explicitZeros(n *yaml.Node, before, after reflect.Value, p spec.FieldPath) Errors {
	n = resolve(n)
	if n == nil || isNull(n) || before.Type() != after.Type() {
		return nil
	}
	switch before.Kind() {
	case reflect.Pointer:
		if before.IsNil() || after.IsNil() {
			return nil
		}
		return w.explicitZeros(n, before.Elem(), after.Elem(), p)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		fields := fieldsOf(before.Type())
		var errs Errors
		keys, values, _ := w.pairs(n, 0)
		for i, k := range keys {
			f, ok := fields.byName[k.Value]
			if k.Kind != yaml.ScalarNode || !ok {
				continue
			}
			errs = append(errs, w.explicitZeros(values[i], before.FieldByIndex(f.Index), after.FieldByIndex(f.Index), p.Child(k.Value))...)
		}
		return errs
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		var errs Errors
		for i := 0; i < len(n.Content) && i < before.Len() && i < after.Len(); i++ {
			errs = append(errs, w.explicitZeros(n.Content[i], before.Index(i), after.Index(i), p.Index(i))...)
		}
		return errs
	case reflect.String, reflect.Int, reflect.Int64, reflect.Float64:
		if n.Kind != yaml.ScalarNode || !before.IsZero() || after.IsZero() || w.covered[p] {
			return nil
		}
		shown := n.Value
		if shown == "" {
			shown = "an empty value"
		}
		def := fmt.Sprint(after.Interface())
		if after.Kind() == reflect.String {
			def = fmt.Sprintf("%q", def)
		}
		pos := posOf(n)
		return Errors{{File: w.file, Line: pos.line, Column: pos.col, Path: string(p),
			Msg: fmt.Sprintf("%s would be replaced by the default %s: omit the field for the default, or set another value", shown, def)}}
	}
	return nil
}
