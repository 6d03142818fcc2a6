package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/coalmine-dev/coalmine/internal/model"
	"github.com/coalmine-dev/coalmine/internal/spec"
)

// verdict is what one evaluation says before it is booked on a metric.
type verdict struct {
	phase    Phase
	message  string
	evidence *model.Evidence
	// byJudge: the judge's verdict, not a condition's beside it.
	byJudge bool
}

// assessConditions turns a provider's value into a measurement verdict by
// the metric's conditions, exactly as Argo's EvaluateResult does (SPEC
// §5.1):
//   - only successCondition: true = Successful, false = Failed;
//   - only failureCondition: true = Failed, false = Successful;
//   - both: failure wins, neither true = Inconclusive;
//   - neither = Successful, as in Argo: the measurement worked, which is
//     all such a metric asks (a reachability check, say); an error is
//     still an Error. (A metric that only has a judge never gets here.)
//
// A condition that cannot be evaluated is an Error, except when the value
// is empty (null, an empty list or map): then the condition failed because
// there was nothing to look at, e.g. `result[0]` on [], which is NoData and
// not a broken query. A condition that handles emptiness itself
// (`len(result) == 0 || ...`, `default(result, 0) < 0.05`) decides as
// written, as in Argo.
func assessConditions(m spec.Metric, value any) verdict {
	s, f := strings.TrimSpace(m.SuccessCondition), strings.TrimSpace(m.FailureCondition)
	shown := showValue(value)
	if s == "" && f == "" {
		return verdict{PhaseSuccessful, fmt.Sprintf("result %s (no condition: a measurement that works is Successful, as in Argo)", shown), nil, false}
	}
	var succeeded, failed bool
	if s != "" {
		ok, err := evalCondition(s, value)
		if err != nil {
			return conditionError("successCondition", s, value, err)
		}
		succeeded = ok
	}
	if f != "" {
		ok, err := evalCondition(f, value)
		if err != nil {
			return conditionError("failureCondition", f, value, err)
		}
		failed = ok
	}
	switch {
	case f == "" && succeeded:
		return verdict{PhaseSuccessful, fmt.Sprintf("result %s satisfied %s", shown, oneLine(s)), nil, false}
	case f == "":
		return verdict{PhaseFailed, fmt.Sprintf("result %s did not satisfy %s", shown, oneLine(s)), nil, false}
	case failed:
		return verdict{PhaseFailed, fmt.Sprintf("result %s met failureCondition %s", shown, oneLine(f)), nil, false}
	case s == "":
		return verdict{PhaseSuccessful, fmt.Sprintf("result %s did not meet failureCondition %s", shown, oneLine(f)), nil, false}
	case succeeded:
		return verdict{PhaseSuccessful, fmt.Sprintf("result %s satisfied %s", shown, oneLine(s)), nil, false}
	}
	return verdict{PhaseInconclusive, fmt.Sprintf("result %s met neither successCondition %s nor failureCondition %s", shown, oneLine(s), oneLine(f)), nil, false}
}

// conditionError tells an empty result (NoData) from a condition that
// broke on a real value (Error).
func conditionError(which, src string, value any, err error) verdict {
	if isEmpty(value) {
		return verdict{PhaseNoData, fmt.Sprintf("no data: result %s is empty, so %s %s could not be evaluated (%s)",
			showValue(value), which, oneLine(src), oneLine(err.Error())), nil, false}
	}
	return verdict{PhaseError, fmt.Sprintf("%s %s could not be evaluated on result %s: %s",
		which, oneLine(src), showValue(value), oneLine(err.Error())), nil, false}
}

// isEmpty reports whether a provider value holds nothing to measure: nil,
// or a list or map without elements.
func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map:
		return rv.Len() == 0 || rv.IsNil()
	case reflect.Array:
		return rv.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// conditions caches compiled conditions by their text. Validation compiled
// every condition already; the cache saves recompiling one on every
// measurement while keeping Run plain data. It is safe for concurrent use.
var conditions = struct {
	sync.Mutex
	programs map[string]*vm.Program
}{programs: map[string]*vm.Program{}}

// maxCachedConditions bounds the cache; it is emptied when full, which
// only costs a recompilation.
const maxCachedConditions = 1024

// evalCondition runs a condition with spec.ConditionOptions on value.
func evalCondition(src string, value any) (bool, error) {
	prog, err := compiled(src)
	if err != nil {
		return false, err
	}
	out, err := expr.Run(prog, map[string]any{spec.ConditionVar: value})
	if err != nil {
		// expr's error renders the source with a caret on extra lines; the
		// message quotes the condition already.
		var fe *file.Error
		if errors.As(err, &fe) {
			return false, errors.New(fe.Message)
		}
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("condition returned %T, not a boolean", out)
	}
	return b, nil
}

func compiled(src string) (*vm.Program, error) {
	conditions.Lock()
	defer conditions.Unlock()
	if p, ok := conditions.programs[src]; ok {
		return p, nil
	}
	p, err := spec.CompileCondition(src)
	if err != nil {
		return nil, fmt.Errorf("condition does not compile: %w", err)
	}
	if len(conditions.programs) >= maxCachedConditions {
		clear(conditions.programs)
	}
	conditions.programs[src] = p
	return p, nil
}

// maxShownValue bounds a value quoted in a message.
const maxShownValue = 120

// showValue renders a value for a message as compact JSON, shortened.
func showValue(v any) string {
	s := string(encodeValue(v))
	if s == "" {
		s = "null"
	}
	if len(s) > maxShownValue {
		s = s[:maxShownValue] + "…"
	}
	return s
}

// encodeValue stores a provider value as JSON. Non-finite floats become
// the strings "NaN", "+Inf" and "-Inf"; a value JSON cannot encode at all
// is stored as its Go rendering in a string, so recording never fails.
func encodeValue(v any) json.RawMessage {
	if v == nil {
		return nil
	}
	b, err := json.Marshal(finite(v))
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	return b
}

// finite copies lists and maps, replacing non-finite floats with their
// names. Other values are returned as they are.
func finite(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case float64:
		return finiteFloat(x)
	case float32:
		return finiteFloat(float64(x))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && (rv.IsNil() || rv.Type().Elem().Kind() == reflect.Uint8) {
			return v
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = finite(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.IsNil() || rv.Type().Key().Kind() != reflect.String {
			return v
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[it.Key().String()] = finite(it.Value().Interface())
		}
		return out
	}
	return v
}

func finiteFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// finiteEvidence returns a copy of e that JSON can encode, so a judge's
// NaN or infinity can never make the run impossible to persist: a
// non-finite optional number is dropped, an infinite bound of an interval
// becomes ±math.MaxFloat64 (the interval stays open on that side), and any
// other NaN becomes 0.
func finiteEvidence(e *model.Evidence) *model.Evidence {
	if e == nil {
		return nil
	}
	c := *e
	opt := func(p *float64) *float64 {
		if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
			return nil
		}
		v := *p
		return &v
	}
	num := func(f float64) float64 {
		switch {
		case math.IsNaN(f):
			return 0
		case math.IsInf(f, 1):
			return math.MaxFloat64
		case math.IsInf(f, -1):
			return -math.MaxFloat64
		}
		return f
	}
	c.Statistic, c.PValue, c.EValue = opt(e.Statistic), opt(e.PValue), opt(e.EValue)
	c.Threshold, c.Alpha = num(e.Threshold), num(e.Alpha)
	if e.Interval != nil {
		c.Interval = make([]float64, len(e.Interval))
		for i, f := range e.Interval {
			c.Interval[i] = num(f)
		}
	}
	sample := func(s model.EvidenceSample) model.EvidenceSample {
		s.ErrorRate = num(s.ErrorRate)
		if s.Quantiles != nil {
			q := make(map[string]float64, len(s.Quantiles))
			for k, v := range s.Quantiles {
				q[k] = num(v)
			}
			s.Quantiles = q
		}
		return s
	}
	c.Canary, c.Stable = sample(e.Canary), sample(e.Stable)
	return &c
}

// oneLine collapses the whitespace of a condition or an error so that a
// multi-line expression reads as one sentence.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// emptyRE finds what only a condition written for an empty result uses.
var emptyRE = regexp.MustCompile(`\b(default|isNil)\s*\(`)

// handlesEmpty reports whether the metric's conditions say what a missing
// result means: they call default() or isNil(), which exist for that. Such
// a metric is evaluated on the empty value when its provider finds
// nothing, as Argo does; any other waits for data (NoData), where Argo
// would fail it. len() does not count: `len(result) > 0 && result[0] > x`
// is how coalmine's own examples wait for data, and a canary is never
// rolled back for lack of it.
func handlesEmpty(m spec.Metric) bool {
	return emptyRE.MatchString(m.SuccessCondition) || emptyRE.MatchString(m.FailureCondition)
}

// emptyValue is the result Argo's provider of m passes to conditions when
// it finds nothing: an empty list for Prometheus, nil for the others.
func emptyValue(m spec.Metric) any {
	if m.Provider.Prometheus != nil {
		return []any{}
	}
	return nil
}
