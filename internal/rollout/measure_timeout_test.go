package rollout

import (
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/spec"
)

func TestQueryTimeout(t *testing.T) {
	d := func(x time.Duration) *spec.Duration { v := spec.Duration(x); return &v }
	secs := func(n int) *int { return &n }
	for _, tt := range []struct {
		name string
		sp   spec.Provider
		want time.Duration
	}{
		{"builtin", spec.Provider{Builtin: &spec.BuiltinProvider{}}, defaultQueryTimeout},
		{"prometheus timeout", spec.Provider{Prometheus: &spec.PrometheusProvider{Timeout: d(40 * time.Second)}}, 41 * time.Second},
		{"web timeout", spec.Provider{Web: &spec.WebProvider{Timeout: d(5 * time.Second)}}, 6 * time.Second},
		{"web timeoutSeconds (Argo)", spec.Provider{Web: &spec.WebProvider{TimeoutSeconds: secs(45)}}, 46 * time.Second},
		{"web default", spec.Provider{Web: &spec.WebProvider{}}, defaultQueryTimeout},
	} {
		if got := queryTimeout(tt.sp); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
