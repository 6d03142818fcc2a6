package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/coalmine-dev/coalmine/internal/model"
)

// A run with kayenta metrics shows its score under the run's line, with
// the labels behind it in a fixed order.
func TestWriteRunTableShowsTheKayentaScore(t *testing.T) {
	var b bytes.Buffer
	writeRunTable(&b, "", []model.AnalysisRunStatus{{
		ID: "checkout-3-step-2", Phase: "Running", Kind: "step", Step: 1, Template: "kayenta",
		Score: &model.KayentaScore{Score: 50, Classification: "Fail", PassAt: 95, MarginalAt: 75,
			Labels: map[string]string{"p99": "Pass", "errors": "High"}},
	}})
	want := "  kayenta score 50 (Fail; pass ≥ 95, marginal ≥ 75; not decided): errors High, p99 Pass\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("got\n%s\nwant a line\n%s", b.String(), want)
	}
	b.Reset()
	writeRunTable(&b, "", []model.AnalysisRunStatus{{
		ID: "checkout-3-step-2", Phase: "Failed", Kind: "step", Step: 1, Template: "kayenta",
		Score: &model.KayentaScore{Score: 90, Classification: "Marginal", PassAt: 95, MarginalAt: 75, Decided: true,
			Labels:      map[string]string{"p99": "High", "errors": "Pass"},
			GroupScores: map[string]float64{"http": 100, "latency": 0}},
	}})
	want = "  kayenta score 90 (Marginal; pass ≥ 95, marginal ≥ 75; decided the run): errors Pass, p99 High; groups: http 100, latency 0\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("got\n%s\nwant a line\n%s", b.String(), want)
	}
	b.Reset()
	writeRunTable(&b, "", []model.AnalysisRunStatus{{ID: "r", Phase: "Running", Kind: "background"}})
	if strings.Contains(b.String(), "score") {
		t.Errorf("a run without kayenta metrics shows a score:\n%s", b.String())
	}
}
