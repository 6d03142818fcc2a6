package spec

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/client-go/util/jsonpath"
)

// ParseJSONPath parses a web metric's jsonPath with the library Argo
// Rollouts uses (Kubernetes' JSONPath, as in kubectl -o jsonpath), so
// every path Argo accepts means the same here: `{$.data.value}`, filters
// `[?(@.name == "x")]`, wildcards `[*]`, recursive descent `..`, slices
// and unions.
//
// Two things differ, each to turn a silent surprise into something that
// works or an error: the braces may be left out (`$.data.value` is read as
// `{$.data.value}`, where Kubernetes would return the text itself), and the
// path must be a single {…} expression with no text around it and no
// range/end blocks, because a metric takes one value, not a rendered
// template. An empty path selects the whole document, as Argo's default
// `{$}` does.
//
// The returned JSONPath reports a missing key as no result rather than an
// error (so the provider can call it no data); it is not safe for
// concurrent use, so parse once per query.
func ParseJSONPath(src string) (*jsonpath.JSONPath, error) {
	return parseJSONPathAs(src, src)
}

// parseJSONPathAs parses text and names it src in errors: validation
// parses a path with its substitutions filled but shows it as written.
func parseJSONPathAs(src, text string) (jp *jsonpath.JSONPath, err error) {
	defer func() {
		if r := recover(); r != nil {
			jp, err = nil, fmt.Errorf("invalid JSONPath %q", src)
		}
	}()
	text = NormalizeJSONPath(text)
	parsed, err := jsonpath.Parse("jsonPath", text)
	if err != nil {
		return nil, fmt.Errorf("invalid JSONPath %q: %s; write it as {$.field.sub[0]}", src, err)
	}
	if err := singleExpression(parsed.Root); err != nil {
		return nil, fmt.Errorf("invalid JSONPath %q: %w", src, err)
	}
	jp = jsonpath.New("jsonPath").AllowMissingKeys(true)
	if err := jp.Parse(text); err != nil {
		return nil, fmt.Errorf("invalid JSONPath %q: %s", src, err)
	}
	return jp, nil
}

// NormalizeJSONPath returns the template form of a path: `{$}` for an empty
// one, the path in braces when it has none.
func NormalizeJSONPath(src string) string {
	s := strings.TrimSpace(src)
	switch {
	case s == "":
		return "{$}"
	case !strings.Contains(s, "{"):
		return "{" + s + "}"
	}
	return s
}

// singleExpression checks that a parsed template is one {…} expression.
func singleExpression(root *jsonpath.ListNode) error {
	if root == nil || len(root.Nodes) == 0 {
		return nil // NormalizeJSONPath never gives an empty template
	}
	if len(root.Nodes) > 1 {
		return errors.New("a metric takes one value: write a single {…} expression with no text around it")
	}
	list, ok := root.Nodes[0].(*jsonpath.ListNode)
	if !ok {
		return errors.New("it is plain text, not an expression: write it as {$.field}")
	}
	// An empty list ({$} or {}) selects the whole document.
	if len(list.Nodes) > 0 {
		if id, ok := list.Nodes[0].(*jsonpath.IdentifierNode); ok {
			if id.Name == "range" || id.Name == "end" {
				return fmt.Errorf("%s blocks are not supported: a metric takes one value; select it with a filter such as {$.items[?(@.name == \"x\")].value}", id.Name)
			}
			return fmt.Errorf("a path starts with $ or '.', such as {$.%s}, not with a bare name", id.Name)
		}
	}
	return nil
}
