package web

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

// FuzzJSONPath checks that no path, parsed as lint parses it and evaluated
// as a measurement evaluates it, can take the process down.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{"", "{$}", "$.a.b", "{$.a[0]['b']}", `{$.a[?(@.x == "y")].v}`, "{..v}", "{$.a[*].b}",
		"{.a[-1]}", "{.a[0:2:1]}", "{.a['x','y']}", "{$.data.ok", "{range .a[*]}{.b}{end}", "{.a[?(@.b)]}", "{.a[?(@.b > 1.5)]}"} {
		f.Add(s)
	}
	var doc any
	if err := json.Unmarshal([]byte(`{"a":[{"b":1,"x":"y","v":[1,2]},{"b":null},2,"s"],"data":{"ok":true},"v":{"v":3}}`), &doc); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			jp, err := spec.ParseJSONPath(path)
			if err != nil {
				return
			}
			_, _ = evalPath(jp, doc)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("path %q did not finish", path)
		}
	})
}
