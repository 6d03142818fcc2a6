package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The demo runs the real proxy, store and API; these tests play two
// scenarios end to end with shorter steps.
func TestScenarios(t *testing.T) {
	for _, sc := range []Scenario{Errors, Healthy} {
		t.Run(string(sc), func(t *testing.T) {
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			o, err := Run(ctx, Options{Scenario: sc, Out: &out, StepDuration: 3 * time.Second})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			if !o.Expected(sc) {
				t.Fatalf("outcome %+v is not what %s expects\n%s", o, sc, out.String())
			}
			want := "COMPLETED"
			if sc == Errors {
				want = `ROLLED BACK: aborted: metric "error-rate" assessed Failed: canary error rate`
			}
			if !strings.Contains(out.String(), want) {
				t.Fatalf("output lacks %q:\n%s", want, out.String())
			}
		})
	}
}
