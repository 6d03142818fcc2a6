package docgen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/configuration-reference.md from the Go types")

const referencePath = "../../../docs/configuration-reference.md"

// TestConfigReferenceIsCurrent fails when the committed reference differs
// from what the Go types produce: a field, default or comment changed
// without `go run ./cmd/docgen`.
func TestConfigReferenceIsCurrent(t *testing.T) {
	got, err := ConfigReference("..")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(referencePath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatalf("read %s: %v; generate it with: go run ./cmd/docgen", filepath.Clean(referencePath), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/configuration-reference.md is out of date; regenerate it with: go run ./cmd/docgen\n%s", firstDifference(want, got))
	}
}

// TestProbeFindsDefaultsAndRequiredFields pins the generator's inference on
// fields whose answer is known, so a broken probe cannot produce a
// plausible but wrong table.
func TestProbeFindsDefaultsAndRequiredFields(t *testing.T) {
	got, err := ConfigReference("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `spec.listen` | string | **required** |",
		"| `spec.stable.endpoints` | list of strings | **required** |",
		"| `spec.canary` | object | — |",
		"| `spec.healthCheck.interval` | duration | `10s` |",
		"| `spec.trafficRouting.timeouts.idle` | duration | `1m30s` |",
		"| `spec.rollbackWindow` | integer | `1` |",
		"| `spec.strategy.canary.steps[].setMirrorRoute.percentage` | number | `100` |",
		"| `spec.trafficRouting.headerRoutes[].to` | string: `canary`, `stable` | `canary` |",
		"| `spec.notifications[].slack.webhookURLFrom` | object | **required** |",
		"| `spec.metrics[].failureLimit` | integer | `0` |",
		"| `spec.metrics[].consecutiveErrorLimit` | integer | `4` |",
		"| `spec.metrics[].judge.compare` | string: `error-rate`, `latency` | **required** |",
		"| `spec.metrics[].judge.method` | string: `sequential`, `fixed`, `kayenta` | `sequential` |",
	} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the reference lacks the row starting %s", want)
		}
	}
}

func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "first difference at line " + itoa(i+1) + ":\n  committed: " + wl + "\n  generated: " + gl
		}
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }
