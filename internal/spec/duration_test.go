package spec

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestDurationSeconds pins Argo's reading of a bare number: whole seconds,
// in YAML (`duration: 10`, `timeout: "40"`) and JSON, written back with a unit.
func TestDurationSeconds(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"10", 10 * time.Second},
		{`"40"`, 40 * time.Second},
		{"0", 0},
		{"1m30s", 90 * time.Second},
		{`"500ms"`, 500 * time.Millisecond},
	} {
		var d Duration
		if err := yaml.Unmarshal([]byte(tc.yaml), &d); err != nil || d.D() != tc.want {
			t.Errorf("yaml %s = %v, %v; want %v", tc.yaml, d.D(), err, tc.want)
		}
	}
	for _, bad := range []string{"-5", "10.5", "1e3", `"10 min"`, "99999999999999999999", "0x10"} {
		var d Duration
		if err := yaml.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("yaml %s accepted as %v", bad, d.D())
		}
	}
	var d Duration
	if err := json.Unmarshal([]byte("40"), &d); err != nil || d.D() != 40*time.Second {
		t.Errorf("json 40 = %v, %v", d.D(), err)
	}
	if b, _ := json.Marshal(Duration(40 * time.Second)); string(b) != `"40s"` {
		t.Errorf("marshal = %s, want \"40s\"", b)
	}
	if err := json.Unmarshal([]byte("-1"), &d); err == nil {
		t.Error("json -1 accepted")
	}
}
