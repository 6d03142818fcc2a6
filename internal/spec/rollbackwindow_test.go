package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestRollbackWindowShapes(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, json string
		want             RollbackWindow
	}{
		{"coalmine's integer", "2", "2", 2},
		{"Argo's mapping", "{revisions: 3}", `{"revisions": 3}`, 3},
		{"Argo's mapping, zero", "{revisions: 0}", `{"revisions":0}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fromYAML RollbackWindow
			if err := yaml.Unmarshal([]byte(tc.yaml), &fromYAML); err != nil {
				t.Fatalf("yaml %s: %v", tc.yaml, err)
			}
			var fromJSON RollbackWindow
			if err := json.Unmarshal([]byte(tc.json), &fromJSON); err != nil {
				t.Fatalf("json %s: %v", tc.json, err)
			}
			if fromYAML != tc.want || fromJSON != tc.want {
				t.Errorf("yaml %s = %d, json %s = %d; want %d", tc.yaml, fromYAML, tc.json, fromJSON, tc.want)
			}
		})
	}
}

// TestRollbackWindowWritesAnInteger: whichever shape was read, the API and
// `get -o yaml` show the integer, so there is one canonical form.
func TestRollbackWindowWritesAnInteger(t *testing.T) {
	var w RollbackWindow
	if err := yaml.Unmarshal([]byte("{revisions: 4}"), &w); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct {
		W *RollbackWindow `json:"rollbackWindow"`
	}{&w})
	if err != nil || string(b) != `{"rollbackWindow":4}` {
		t.Errorf("json = %s, %v; want {\"rollbackWindow\":4}", b, err)
	}
}

func TestRollbackWindowErrorsSayWhatToWrite(t *testing.T) {
	for _, tc := range []struct{ name, yaml, json, want string }{
		{"unknown field", "{revision: 1}", `{"revision":1}`, "revision"},
		{"no revisions", "{}", `{}`, "needs revisions"},
		{"a string", `"1"`, `"1"`, "integer"},
		{"a list", "[1]", `[1]`, "integer"},
		{"revisions not a number", "{revisions: many}", `{"revisions":"many"}`, "revisions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w RollbackWindow
			for _, err := range []error{yaml.Unmarshal([]byte(tc.yaml), &w), json.Unmarshal([]byte(tc.json), &w)} {
				if err == nil {
					t.Fatalf("%s was accepted", tc.yaml)
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "{revisions: 1}") {
					t.Errorf("error %q should mention %q and show the accepted shapes", err, tc.want)
				}
			}
		})
	}
}

func TestRollbackWindowArgoNote(t *testing.T) {
	note := RollbackWindowArgoNote()
	for _, want := range []string{"rollbackWindow: {revisions: 0}", "Argo", "skipping the steps and analysis"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q does not mention %q", note, want)
		}
	}
	if strings.Count(note, ". ") > 0 || strings.HasSuffix(note, ".") {
		t.Errorf("note %q should be one sentence without a final period, like the other lint messages", note)
	}
}
