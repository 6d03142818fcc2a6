package spec

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// ConditionVar is the name under which a measurement's value is visible in
// successCondition and failureCondition.
const ConditionVar = "result"

// ConditionOptions are the expr-lang options of every metric condition:
// a `result` variable of any shape, the helpers of SPEC §5.1 and a boolean
// result. Validation compiles with them and the analysis engine must compile
// and run with them too, so a condition that passes lint behaves the same at
// run time. Run a program with env map[string]any{ConditionVar: value}.
func ConditionOptions() []expr.Option {
	return []expr.Option{
		expr.Env(types.Map{ConditionVar: types.Any}),
		expr.AsBool(),
		expr.Function("isNaN", func(args ...any) (any, error) {
			f, ok := toFloat(args[0])
			return ok && math.IsNaN(f), nil
		}, new(func(any) bool)),
		expr.Function("isInf", func(args ...any) (any, error) {
			f, ok := toFloat(args[0])
			return ok && math.IsInf(f, 0), nil
		}, new(func(any) bool)),
		expr.Function("isNil", func(args ...any) (any, error) {
			return isNil(args[0]), nil
		}, new(func(any) bool)),
		expr.Function("default", func(args ...any) (any, error) {
			if isNil(args[0]) {
				return args[1], nil
			}
			return args[0], nil
		}, new(func(any, any) any)),
		expr.Function("asFloat", func(args ...any) (any, error) {
			if s, ok := args[0].(string); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil {
					return nil, fmt.Errorf("asFloat: %q is not a number", s)
				}
				return f, nil
			}
			f, ok := toFloat(args[0])
			if !ok {
				return nil, fmt.Errorf("asFloat: cannot convert %T to a number", args[0])
			}
			return f, nil
		}, new(func(any) float64)),
		expr.Function("asInt", func(args ...any) (any, error) {
			if s, ok := args[0].(string); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
				if err != nil {
					return nil, fmt.Errorf("asInt: %q is not an integer", s)
				}
				return int(n), nil
			}
			f, ok := toFloat(args[0])
			if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("asInt: cannot convert %v to an integer", args[0])
			}
			return int(f), nil
		}, new(func(any) int)),
	}
}

// CompileCondition compiles a metric condition with ConditionOptions. Its
// error is one line, with the position inside the condition.
func CompileCondition(src string) (*vm.Program, error) {
	prog, err := expr.Compile(src, ConditionOptions()...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%s (line %d, column %d of the condition)", fe.Message, fe.Line, fe.Column+1)
		}
		return nil, errors.New(strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return prog, nil
}

func isNil(x any) bool {
	if x == nil {
		return true
	}
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// toFloat converts any Go number, as decoded from JSON or produced by a
// provider, to float64.
func toFloat(x any) (float64, bool) {
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		return v.Float(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(v.Uint()), true
	}
	return 0, false
}
