package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/analysis"
	"github.com/coalmine-dev/coalmine/internal/spec"
	"github.com/coalmine-dev/coalmine/internal/store/bolt"
)

func commandTemplate(name string) spec.AnalysisTemplate {
	return spec.AnalysisTemplate{APIVersion: spec.APIVersion, Kind: spec.KindAnalysisTemplate, Metadata: spec.Metadata{Name: name},
		Spec: spec.AnalysisTemplateSpec{Metrics: []spec.Metric{{Name: "smoke",
			Provider: spec.Provider{Command: &spec.CommandProvider{Command: []string{"/opt/checks/smoke.sh"}}}}}}}
}

// TestAPICommandsNeedTheFlag: a template with a command metric comes from
// the -f files, or through the API only on a server that allows it; one
// applied while allowed is refused to run after a restart without it.
func TestAPICommandsNeedTheFlag(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := newFakeClock()
	start := func(allow bool, files ...spec.AnalysisTemplate) *Controller {
		c := New(Config{Router: newFakeRouter(st), Store: st, Now: clock.Now, AllowAPICommands: allow})
		if err := c.Load(ctx, nil, files, true); err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := start(false, commandTemplate("from-file"))
	if _, ok := c.templateMap()["from-file"]; !ok {
		t.Fatalf("a file's command template is not usable: refused %v", c.refusedTemplates())
	}
	_, err = c.ApplyTemplate(ctx, commandTemplate("from-api"))
	var fes spec.FieldErrors
	if !errors.As(err, &fes) || len(fes) != 1 || fes[0].Path != "spec.metrics[0].provider.command" ||
		!strings.Contains(fes[0].Msg, "start coalmine serve with --allow-command-provider") {
		t.Fatalf("apply without the flag: %v", err)
	}

	c = start(true, commandTemplate("from-file"))
	if _, err := c.ApplyTemplate(ctx, commandTemplate("from-api")); err != nil {
		t.Fatalf("apply with the flag: %v", err)
	}
	if _, ok := c.templateMap()["from-api"]; !ok {
		t.Fatal("the applied template is not usable")
	}

	c = start(false, commandTemplate("from-file"))
	if _, ok := c.templateMap()["from-api"]; ok {
		t.Fatal("an API command template runs on a server restarted without the flag")
	}
	if why := c.refusedTemplates()["from-api"]; !strings.Contains(why, "was applied through the API with a command metric") {
		t.Errorf("refusal = %q", why)
	}
	if _, err := c.GetTemplate(ctx, "from-api"); err != nil {
		t.Errorf("the refused template should still be listed (so it can be deleted): %v", err)
	}
	obs := Observation{Templates: c.templateMap(), RefusedTemplates: c.refusedTemplates()}
	err = startRun(&State{}, &obs, "step", 0, analysis.Request{Refs: []spec.TemplateRef{{TemplateName: "from-api"}}}, clock.Now(), func(string, string, map[string]any) {})
	if err == nil || !strings.Contains(err.Error(), `AnalysisTemplate "from-api" was applied through the API with a command metric`) {
		t.Errorf("startRun = %v", err)
	}
}
