package hascale

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coalmine-dev/coalmine/internal/config"
)

func TestGeneratedConfigurationIsValid(t *testing.T) {
	r := Rollouts{Count: 3, Pause: 5 * time.Second, BasePort: 21000, Stable: "http://127.0.0.1:9001", Canary: "http://127.0.0.1:9002"}
	b, err := config.Parse("rollouts.yaml", []byte(r.YAML()))
	if err != nil {
		t.Fatalf("the generated configuration does not load: %v", err)
	}
	if errs := config.Check(b.Rollouts, b.Templates); len(errs) > 0 {
		t.Fatalf("the generated configuration is invalid: %v", errs)
	}
	var names, listens []string
	for _, ro := range b.Rollouts {
		names = append(names, ro.Metadata.Name)
		listens = append(listens, ro.Spec.Listen)
	}
	if want := []string{"ro-0000", "ro-0001", "ro-0002", "probe"}; !slices.Equal(names, want) {
		t.Errorf("rollouts %v, want %v", names, want)
	}
	if want := []string{"127.0.0.1:21000", "127.0.0.1:21001", "127.0.0.1:21002", "127.0.0.1:21003"}; !slices.Equal(listens, want) {
		t.Errorf("listen addresses %v, want %v", listens, want)
	}
	if n := len(b.Rollouts[0].Spec.Strategy.Canary.Steps); n != StepsPerRollout {
		t.Errorf("a progressing rollout has %d steps, want %d", n, StepsPerRollout)
	}

	empty, err := config.Parse("empty.yaml", []byte(EmptyYAML))
	if err != nil {
		t.Fatalf("the empty configuration does not load: %v", err)
	}
	if errs := config.Check(empty.Rollouts, empty.Templates); len(errs) > 0 || len(empty.Rollouts) != 0 {
		t.Fatalf("the empty configuration: %d rollouts, errors %v", len(empty.Rollouts), errs)
	}
}

func TestListenOverridesPutEachReplicaOnItsOwnLoopbackAddress(t *testing.T) {
	r := Rollouts{Count: 1, BasePort: 21000}
	got := strings.Join(r.ListenOverrides(2), " ")
	if want := "--listen-override ro-0000=127.0.0.3:21000 --listen-override probe=127.0.0.3:21001"; got != want {
		t.Errorf("replica 3's overrides: %q, want %q", got, want)
	}
}

func TestParseCPU(t *testing.T) {
	// A command name with a space and a parenthesis, as a process may
	// choose; utime 250 and stime 50 ticks.
	stat := "4242 (co (al) mine) S 1 4242 4242 0 -1 4194560 9000 0 0 0 250 50 0 0 20 0 9 0 100 2000000 3000 18446744073709551615"
	got, err := ParseCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Errorf("CPU %v, want %v", got, want)
	}
	if _, err := ParseCPU("4242 (x) S 1 2"); err == nil {
		t.Error("a truncated stat line was accepted")
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tcoalmine\nVmPeak:\t 2000000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n"
	got, err := ParseMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{RSS: 40 << 20, Peak: 50 << 20}); got != want {
		t.Errorf("memory %+v, want %+v", got, want)
	}
	if _, err := ParseMemory("Name:\tcoalmine\nState:\tZ (zombie)\n"); err == nil {
		t.Error("a status without VmRSS was accepted")
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarise(ds)
	want := Quantiles{P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, N: 100}
	if got != want {
		t.Errorf("quantiles %+v, want %+v", got, want)
	}
	if ds[0] != 100*time.Millisecond {
		t.Error("Summarise sorted its argument")
	}
	if (Summarise(nil) != Quantiles{}) {
		t.Error("no samples should summarise to zero")
	}
	if PerItem(time.Second, 0) != 0 || PerItem(time.Second, 4) != 250*time.Millisecond {
		t.Error("PerItem")
	}
}

func TestTimeSteps(t *testing.T) {
	at := func(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }
	events := []EventTiming{
		{"rollout-started", at(0)},
		{"rollout-weight-changed", at(0.1)},
		{"rollout-step-completed", at(1.5)},
		{"rollout-paused", at(1.5)},
		{"rollout-step-completed", at(6.5)},
		{"rollout-step-completed", at(7)},
		{"rollout-completed", at(7)},
	}
	got, err := TimeSteps(events)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{1500 * time.Millisecond, 5 * time.Second, 500 * time.Millisecond}
	if got.Total != 7*time.Second || !slices.Equal(got.Steps, want) {
		t.Errorf("timing %+v, want total 7s and steps %v", got, want)
	}
	if _, err := TimeSteps(events[:3]); err == nil {
		t.Error("a rollout that has not completed was timed")
	}
}
