package kube

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Diff returns the JSON patch operations that turn old into new, both
// decoded JSON (map[string]any, []any, scalars) at path. It descends into
// objects and into arrays of equal length, so a changed weight is one
// operation on that weight and whatever else is in the object is not
// written at all; an array whose length changes is replaced whole.
func Diff(path string, old, new any) []Op {
	if reflect.DeepEqual(normal(old), normal(new)) {
		return nil
	}
	switch o := old.(type) {
	case map[string]any:
		n, ok := new.(map[string]any)
		if !ok {
			break
		}
		var ops []Op
		keys := make([]string, 0, len(o)+len(n))
		for k := range o {
			keys = append(keys, k)
		}
		for k := range n {
			if _, ok := o[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			ov, inOld := o[k]
			nv, inNew := n[k]
			p := path + Pointer(k)
			switch {
			case inOld && !inNew:
				ops = append(ops, Op{Op: "remove", Path: p})
			case !inOld && inNew:
				ops = append(ops, Op{Op: "add", Path: p, Value: nv})
			default:
				ops = append(ops, Diff(p, ov, nv)...)
			}
		}
		return ops
	case []any:
		n, ok := new.([]any)
		if !ok || len(n) != len(o) {
			break
		}
		var ops []Op
		for i := range o {
			ops = append(ops, Diff(path+"/"+strconv.Itoa(i), o[i], n[i])...)
		}
		return ops
	}
	return []Op{{Op: "replace", Path: path, Value: new}}
}

// normal makes numbers comparable whatever decoded them (JSON gives
// int64 or float64 through unstructured, coalmine's code gives int64).
func normal(v any) any {
	switch x := v.(type) {
	case int:
		return float64(x)
	case int32:
		return float64(x)
	case int64:
		return float64(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = normal(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = normal(e)
		}
		return s
	}
	return v
}

// ListOps returns the operations that turn list (as read) into owned
// followed by user, where user is the read list without the owned items,
// changed in place. The user's items are patched field by field, never
// rewritten; the owned ones are removed and added whole when their number
// changes.
func ListOps(path string, list, owned, user []any, isOwned func(any) bool) []Op {
	if len(list) == len(owned)+len(user) {
		return Diff(path, list, append(append([]any{}, owned...), user...))
	}
	var ops []Op
	var kept []any
	for i := len(list) - 1; i >= 0; i-- {
		if isOwned(list[i]) {
			ops = append(ops, Op{Op: "remove", Path: path + "/" + strconv.Itoa(i)})
		}
	}
	for _, r := range list {
		if !isOwned(r) {
			kept = append(kept, r)
		}
	}
	ops = append(ops, Diff(path, kept, user)...)
	for i, r := range owned {
		ops = append(ops, Op{Op: "add", Path: path + "/" + strconv.Itoa(i), Value: r})
	}
	return ops
}

// Label turns a name into a DNS label (lowercase letters, digits and
// inner '-'), as HTTPRoute rule names are made of.
func Label(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if len(out) > 63 {
		out = strings.Trim(out[:63], "-")
	}
	if out == "" {
		out = "x"
	}
	return out
}
