package cli

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// Step marks of the rollout view.
const (
	markDone    = "✔"
	markCurrent = "▶"
	markStopped = "✘"
	markPending = "·"
)

// barWidth is the width of progress bars, in cells.
const barWidth = 20

// phaseText is the phase with its pause reason, e.g. "Paused (Manual)".
func phaseText(s model.Status) string {
	if s.Phase == "" {
		return "-"
	}
	if s.PauseReason != model.PauseNone {
		return string(s.Phase) + " (" + string(s.PauseReason) + ")"
	}
	return string(s.Phase)
}

// stepCount is the number of steps: the status says, and older servers
// that do not are answered by the spec.
func stepCount(v model.View) int {
	if v.Status.StepCount > 0 {
		return v.Status.StepCount
	}
	return len(v.Spec.Strategy.Canary.Steps)
}

// stepText is "completed/total", Argo's STEP column; "-" without steps.
func stepText(v model.View) string {
	n := stepCount(v)
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", min(max(v.Status.StepIndex, 0), n), n)
}

// currentStep returns the step the rollout is at, or nil when every step
// is done (or the spec has fewer steps than the status counts).
func currentStep(v model.View) *spec.Step {
	i, steps := v.Status.StepIndex, v.Spec.Strategy.Canary.Steps
	if i < 0 || i >= len(steps) || i >= stepCount(v) {
		return nil
	}
	return &steps[i]
}

// position says where a rollout stands in one phrase:
//
//	Paused (PauseStep) at step 4/8 (pause 5m), canary weight 1%
//	Healthy: v1.5.0 is stable
//	Degraded: <message>
func position(v model.View) string {
	s := v.Status
	switch s.Phase {
	case model.PhaseHealthy:
		return "Healthy: " + orDash(s.StableVersion) + " is stable"
	case model.PhaseDegraded:
		if s.Message != "" {
			return "Degraded: " + s.Message
		}
		return "Degraded"
	}
	if at := where(v); at != "" {
		return phaseText(s) + " " + at
	}
	return phaseText(s)
}

// where is the step and weight of a rollout in progress, e.g.
// "at step 4/8 (pause 5m), canary weight 1%".
func where(v model.View) string {
	s := v.Status
	var out string
	if st := currentStep(v); st != nil {
		out = fmt.Sprintf("at step %d/%d (%s)", s.StepIndex+1, stepCount(v), describeStep(*st))
	} else if n := stepCount(v); n > 0 {
		out = fmt.Sprintf("after all %d steps", n)
	}
	if s.CanaryVersion != "" {
		if out != "" {
			out += ", "
		}
		out += "canary weight " + percent(s.Weight)
	}
	return out
}

// writeRolloutView is the human view of one rollout: `get rollout NAME`
// prints it once, `get rollout NAME -w` on every change.
func writeRolloutView(w io.Writer, v model.View, now time.Time) error {
	var b bytes.Buffer // one write, so that a redraw never shows half a view
	s := v.Status
	tw := newTable(&b)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("Name", v.Metadata.Name)
	field("Phase", phaseText(s))
	if s.Message != "" {
		field("Message", s.Message)
	}
	field("Revision", fmt.Sprint(s.Revision))
	switch r := v.Spec.TrafficRouting.Router; {
	case r.External() && s.RouterError != "":
		field("Router", r.Kind()+" NOT ROUTING AS SAID (no step completes until it does): "+s.RouterError)
	case r.External():
		field("Router", r.Kind())
	case s.ListenError != "":
		field("Listen", orDash(v.Spec.Listen)+" NOT LISTENING: "+s.ListenError)
	default:
		field("Listen", orDash(v.Spec.Listen))
	}
	if s.Unsaved != "" {
		field("Unsaved", "the state shown is "+s.Unsaved)
	}
	if s.Controller != "" {
		field("Controller", s.Controller)
	}
	field("Stable", orDash(s.StableVersion))
	field("Canary", orDash(s.CanaryVersion))
	field("Weight", percent(s.Weight)+" applied, "+percent(s.ObservedWeight)+" observed by the proxy")
	if len(s.Replicas) > 1 {
		// Several replicas share the store: each one's proxy, the one
		// answering first; "(behind)" until it routes the state that set
		// the weight.
		parts := make([]string, len(s.Replicas))
		for i, r := range s.Replicas {
			parts[i] = r.Replica + " " + percent(r.ObservedWeight)
			if !r.Current {
				parts[i] += " (behind)"
			}
		}
		field("Replicas", strings.Join(parts, ", "))
	}
	if n := stepCount(v); n > 0 {
		done := min(max(s.StepIndex, 0), n)
		field("Progress", fmt.Sprintf("%s %d/%d steps done", bar(float64(done)/float64(n)), done, n))
	}
	updated := "-"
	if !s.UpdatedAt.IsZero() {
		updated = s.UpdatedAt.UTC().Format(time.RFC3339) + " (" + ago(now, s.UpdatedAt) + ")"
	}
	field("Updated", updated)
	_ = tw.Flush()

	writeSteps(&b, v, now)

	if a := v.Spec.Strategy.Canary.Analysis; a != nil && len(a.Templates) > 0 {
		fmt.Fprintf(&b, "\nBackground analysis: %s, from step %d\n", templateNames(a.Templates), a.StartingStep+1)
	}

	fmt.Fprintln(&b)
	if len(s.AnalysisRuns) == 0 {
		fmt.Fprintln(&b, "Analysis runs: none")
	} else {
		fmt.Fprintln(&b, "Analysis runs:")
		writeRunTable(&b, "  ", s.AnalysisRuns)
	}

	fmt.Fprintln(&b)
	if len(s.Endpoints) == 0 {
		fmt.Fprintln(&b, "Endpoints: none reported")
	} else {
		fmt.Fprintln(&b, "Endpoints:")
		tw = newTable(&b)
		fmt.Fprintln(tw, "  ROLE\tVERSION\tURL\tHEALTH\tIN FLIGHT")
		for _, e := range s.Endpoints {
			health := "healthy"
			switch {
			case e.Ejected:
				health = "ejected"
			case !e.Healthy:
				health = "unhealthy"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", e.Role, e.Version, e.URL, health, e.InFlight)
		}
		_ = tw.Flush()
	}

	if len(s.Notifications) > 0 {
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "Notifications:")
		tw = newTable(&b)
		fmt.Fprintln(tw, "  #\tKIND\tDELIVERED\tPENDING\tSTATE")
		for _, c := range s.Notifications {
			fmt.Fprintf(tw, "  %d\t%s\tseq %d\t%d\t%s\n", c.Index, c.Kind, c.DeliveredSeq, c.Pending, channelState(c, now))
		}
		_ = tw.Flush()
	}
	_, err := w.Write(b.Bytes())
	return err
}

// writeRunTable lists analysis runs with an indent: each run, then its
// metrics with the counters of SPEC §5.1 and the latest measurement's
// explanation, so "why" is on the screen without -o json.
func writeRunTable(w io.Writer, indent string, runs []model.AnalysisRunStatus) {
	for i, r := range runs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		kind := r.Kind
		if kind == "step" {
			kind = fmt.Sprintf("step %d", r.Step+1)
		}
		fmt.Fprintf(w, "%s%s  %s  %s  %s\n", indent, r.ID, r.Phase, kind, r.Template)
		if r.Message != "" {
			fmt.Fprintf(w, "%s  %s\n", indent, oneLine(r.Message))
		}
		if sc := r.Score; sc != nil {
			fmt.Fprintf(w, "%s  %s\n", indent, kayentaScoreLine(*sc))
		}
		if len(r.Metrics) == 0 {
			continue
		}
		tw := newTable(w)
		fmt.Fprintln(tw, indent+"  METRIC\tPHASE\tOK\tFAILED\tINCONCL.\tERRORS\tNODATA\tLATEST")
		for _, m := range r.Metrics {
			name := m.Name
			if m.DryRun {
				name += " (dry run)"
			}
			latest := "-"
			if m.Phase == "Skipped" {
				// No verdict: say why, instead of a blank.
				latest = oneLine(m.Message)
			} else if n := len(m.Measurements); n > 0 {
				last := m.Measurements[n-1]
				latest = last.Phase
				if last.Message != "" {
					latest += ": " + oneLine(last.Message)
				}
			}
			fmt.Fprintf(tw, "%s  %s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", indent, name, m.Phase, m.Successful, m.Failed, m.Inconclusive, m.Error, m.NoData, latest)
		}
		_ = tw.Flush()
	}
}

// channelState says whether a notification channel keeps up.
func channelState(c model.ChannelStatus, now time.Time) string {
	if c.Failures == 0 && c.LastError == "" {
		return "ok"
	}
	out := fmt.Sprintf("%d failed attempts", c.Failures)
	if c.Failures == 1 {
		out = "1 failed attempt"
	}
	if c.NextRetry != nil {
		if d := c.NextRetry.Sub(now); d > 0 {
			out += ", retry in " + roundDuration(d)
		} else {
			out += ", retrying"
		}
	}
	if c.LastError != "" {
		out += ": " + c.LastError
	}
	return out
}

// writeSteps lists every step with its mark, and a progress bar on a timed
// pause in progress.
func writeSteps(w io.Writer, v model.View, now time.Time) {
	steps := v.Spec.Strategy.Canary.Steps
	fmt.Fprintln(w)
	if len(steps) == 0 {
		fmt.Fprintln(w, "Steps: none (the canary goes to 100% at once)")
		return
	}
	fmt.Fprintln(w, "Steps:")
	cur := v.Status.StepIndex
	width := len(fmt.Sprint(len(steps)))
	for i, st := range steps {
		mark := markPending
		switch {
		case i < cur || v.Status.Phase == model.PhaseHealthy:
			mark = markDone
		case i == cur && v.Status.Phase == model.PhaseDegraded:
			mark = markStopped
		case i == cur:
			mark = markCurrent
		}
		line := fmt.Sprintf("  %s %*d. %s", mark, width, i+1, describeStep(st))
		if mark == markCurrent {
			if p := pauseProgress(v, st, now); p != "" {
				line += "  " + p
			}
		}
		fmt.Fprintln(w, line)
	}
}

// pauseProgress is the bar of a timed pause step in progress, e.g.
// "[██████░░░░░░░░░░░░░░] 1m30s of 5m, 3m30s left"; empty for other steps
// or when the server did not say when the pause started or ends.
func pauseProgress(v model.View, st spec.Step, now time.Time) string {
	if st.Pause == nil || st.Pause.Duration == nil {
		return ""
	}
	s := v.Status
	if s.Phase != model.PhasePaused && s.Phase != model.PhaseProgressing {
		return ""
	}
	total := st.Pause.Duration.D()
	var start, end time.Time
	switch {
	case s.StepStartedAt != nil && s.PauseUntil != nil:
		start, end = *s.StepStartedAt, *s.PauseUntil
	case s.PauseUntil != nil:
		start, end = s.PauseUntil.Add(-total), *s.PauseUntil
	case s.StepStartedAt != nil:
		start, end = *s.StepStartedAt, s.StepStartedAt.Add(total)
	default:
		return ""
	}
	if !end.After(start) {
		return ""
	}
	total = end.Sub(start)
	elapsed := min(max(now.Sub(start), 0), total)
	out := fmt.Sprintf("%s %s of %s", bar(float64(elapsed)/float64(total)), roundDuration(elapsed), roundDuration(total))
	if left := total - elapsed; left > 0 {
		out += ", " + roundDuration(left) + " left"
	} else {
		out += ", done"
	}
	return out
}

// bar draws a progress bar of barWidth cells for frac in [0, 1].
func bar(frac float64) string {
	frac = min(max(frac, 0), 1)
	full := int(frac*barWidth + 0.5)
	return "[" + strings.Repeat("█", full) + strings.Repeat("░", barWidth-full) + "]"
}

// roundDuration formats a duration to the second without zero units:
// 5m, 1m30s, 45s, 0s.
func roundDuration(d time.Duration) string {
	return shortDuration(d.Round(time.Second))
}

// describeStep is one line for a step, e.g. "setWeight 25%", "pause 5m".
func describeStep(st spec.Step) string {
	switch {
	case st.SetWeight != nil:
		return "setWeight " + percent(*st.SetWeight)
	case st.Pause != nil:
		if st.Pause.Duration == nil {
			return "pause until promoted"
		}
		return "pause " + shortDuration(st.Pause.Duration.D())
	case st.Analysis != nil:
		return "analysis " + templateNames(st.Analysis.Templates)
	case st.SetHeaderRoute != nil:
		r := st.SetHeaderRoute
		if len(r.Match) == 0 {
			return "setHeaderRoute " + r.Name + " (remove)"
		}
		to := r.To
		if to == "" {
			to = spec.RoleCanary
		}
		return "setHeaderRoute " + r.Name + " -> " + string(to)
	case st.SetMirrorRoute != nil:
		r := st.SetMirrorRoute
		if len(r.Match) == 0 && r.Percentage == nil {
			return "setMirrorRoute " + r.Name + " (remove)"
		}
		pct := 100.0
		if r.Percentage != nil {
			pct = *r.Percentage
		}
		return "setMirrorRoute " + r.Name + " (" + percent(pct) + " mirrored to canary)"
	}
	return "(empty step)"
}

func templateNames(refs []spec.TemplateRef) string {
	names := make([]string, len(refs))
	for i, r := range refs {
		names[i] = r.TemplateName
	}
	return strings.Join(names, ", ")
}

// kayentaScoreLine is a run's Kayenta score in one line, e.g. `kayenta
// score 50 (Fail; pass ≥ 95, marginal ≥ 75; decided the run): error-rate
// High, latency Pass`, with the groups' scores when groups other than the
// metrics' own are configured.
func kayentaScoreLine(sc model.KayentaScore) string {
	names := slices.Sorted(maps.Keys(sc.Labels))
	labels := make([]string, len(names))
	for i, n := range names {
		labels[i] = n + " " + sc.Labels[n]
	}
	why := ""
	if sc.Reason != "" {
		why = ", " + sc.Reason
	}
	decided := "not decided"
	if sc.Decided {
		decided = "decided the run"
	}
	line := fmt.Sprintf("kayenta score %s (%s%s; pass ≥ %s, marginal ≥ %s; %s): %s",
		formatScore(sc.Score), sc.Classification, why,
		formatScore(sc.PassAt), formatScore(sc.MarginalAt), decided, strings.Join(labels, ", "))
	var groups []string
	own := true
	for _, g := range slices.Sorted(maps.Keys(sc.GroupScores)) {
		_, isMetric := sc.Labels[g]
		own = own && isMetric
		groups = append(groups, g+" "+formatScore(sc.GroupScores[g]))
	}
	if !own {
		line += "; groups: " + strings.Join(groups, ", ")
	}
	return line
}

func formatScore(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
