package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateCorpus = flag.Bool("update-argo-corpus", false, "rewrite testdata/argo/warnings.txt")

// TestArgoCorpusLints lints the Argo-shaped corpus (testdata/argo, written
// for issue 11 in Argo's own shapes): no error, and exactly the warnings of
// warnings.txt, each telling an Argo user what coalmine ignores or does
// differently.
func TestArgoCorpusLints(t *testing.T) {
	chdirRoot(t)
	env := map[string]string{"COALMINE_SECRETS_DIR": "/secrets"}
	files := map[string]string{}
	for _, f := range []string{"prometheus/password", "prometheus-oauth/client-secret", "status-api/token", "gate-oauth/client-secret"} {
		files["/secrets/"+f] = "s3cret\n"
	}
	warnings, err := Lint([]string{"testdata/argo"}, fakeEnv(env), fakeFiles(files))
	if err != nil {
		t.Fatalf("the Argo corpus does not lint:\n%v", err)
	}
	got := warnings.Warnings() + "\n"
	golden := filepath.Join("testdata", "argo", "warnings.txt")
	if *updateCorpus {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("warnings differ from %s (-update-argo-corpus to rewrite):\n--- got\n%s--- want\n%s", golden, got, want)
	}
	b, err := Load("testdata/argo")
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Templates) != 10 || len(b.Rollouts) != 2 {
		t.Errorf("loaded %d templates and %d rollouts, want 10 and 2", len(b.Templates), len(b.Rollouts))
	}
	for _, tpl := range b.Templates {
		if tpl.APIVersion != "coalmine.dev/v1alpha1" || tpl.Kind != "AnalysisTemplate" {
			t.Errorf("template %s read as %s %s", tpl.Metadata.Name, tpl.APIVersion, tpl.Kind)
		}
	}
	if !strings.Contains(got, "spec.rollbackWindow: rollbackWindow is not set") {
		t.Error("the rollout without rollbackWindow is not warned")
	}
}
