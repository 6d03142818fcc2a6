package spec

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// TimeExpr is a compiled rangeQuery start or end: an expr-lang expression
// that gives a time, written as in Argo Rollouts (`now()`,
// `now() - duration("1h")`; expr-lang's date functions are available).
type TimeExpr struct {
	program *vm.Program
}

var timeType = reflect.TypeFor[time.Time]()

// timeEnv gives now() the caller's clock instead of expr-lang's builtin, so
// a query's start and end come from one instant and tests need no clock.
func timeEnv(now time.Time) map[string]any {
	return map[string]any{"now": func() time.Time { return now }}
}

// CompileTimeExpr compiles a time expression. One whose type is known not
// to be a time (`now() + 1`, `"yesterday"`) is rejected here rather than at
// the first measurement.
func CompileTimeExpr(src string) (*TimeExpr, error) {
	p, err := expr.Compile(src, expr.Env(timeEnv(time.Time{})))
	if err != nil {
		return nil, exprError(err)
	}
	if t := p.Node().Type(); t != nil && t.Kind() != reflect.Interface && t != timeType {
		return nil, fmt.Errorf("gives %s, not a time: write now(), or now() - duration(\"1h\")", t)
	}
	return &TimeExpr{program: p}, nil
}

// Eval computes the time, with now() returning now.
func (e *TimeExpr) Eval(now time.Time) (time.Time, error) {
	out, err := expr.Run(e.program, timeEnv(now))
	if err != nil {
		return time.Time{}, exprError(err)
	}
	t, ok := out.(time.Time)
	if !ok {
		return time.Time{}, fmt.Errorf("gives %T, not a time", out)
	}
	return t, nil
}

// exprError keeps expr-lang's message and drops its source excerpt, which
// spans several lines and repeats what the error's field already shows.
func exprError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return errors.New(fe.Message)
	}
	return err
}
