package builtins

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
)

// ToData converts a Starlark value into workflow data (see dag's value
// rules). References are kept when allowRefs is set, and those made without
// a position of their own take pos.
func ToData(v starlark.Value, pos dag.Pos, allowRefs bool) (any, error) {
	return toData(v, pos, allowRefs, 0)
}

// MaxValueDepth bounds how deeply lists and dicts may nest in a value that
// leaves Starlark (a task output, inputs, arguments of builtins). Deeper
// values would overflow the stack of the code that stores them.
const MaxValueDepth = 1000

// errTooDeep is returned as is, without the path of a thousand indexes.
var errTooDeep = fmt.Errorf("lists and dicts are nested more than %d deep (the value depth limit, fixed)", MaxValueDepth)

func toData(v starlark.Value, pos dag.Pos, allowRefs bool, depth int) (any, error) {
	switch v.(type) {
	case *starlark.List, starlark.Tuple, *starlark.Dict:
		if depth >= MaxValueDepth {
			return nil, errTooDeep
		}
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case starlark.Bool:
		return bool(v), nil
	case starlark.Int:
		if i, ok := v.Int64(); ok {
			return i, nil
		}
		return nil, fmt.Errorf("integer %s is too large", v)
	case starlark.Float:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s cannot be stored (values are kept as JSON, which has no NaN or infinity)", v)
		}
		return f, nil
	case starlark.String:
		return string(v), nil
	case *RefValue:
		if !allowRefs {
			return nil, fmt.Errorf("%s is a run-time reference and cannot be used here", v.Ref)
		}
		r := *v.Ref
		if r.Pos.File == "" {
			r.Pos = pos
		}
		return &r, nil
	case *StepValue:
		return nil, fmt.Errorf("got the step %q itself; to pass its result write %s.output (or %s.output[\"key\"])", v.ID, v.ID, v.ID)
	case *CondValue:
		return nil, fmt.Errorf("got the condition %s.%s, which only after= takes; to pass the step's result write %s.output", v.Step, v.Cond, v.Step)
	case *starlark.List:
		return iterToData(v, v.Len(), pos, allowRefs, depth)
	case starlark.Tuple:
		return iterToData(v, v.Len(), pos, allowRefs, depth)
	case *starlark.Dict:
		out := make(map[string]any, v.Len())
		for _, item := range v.Items() {
			k, ok := item[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("dict keys must be strings, got %s %s", item[0].Type(), item[0])
			}
			e, err := toData(item[1], pos, allowRefs, depth+1)
			if err != nil {
				return nil, indexError(fmt.Sprintf("[%q]", string(k)), err)
			}
			out[string(k)] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("a value of type %s cannot be stored (use None, bools, numbers, strings, lists and dicts)", v.Type())
}

// indexError puts the index of a nested value in front of the problem
// found inside it: `["k"][0]: msg`.
func indexError(index string, err error) error {
	if err == errTooDeep {
		return err
	}
	if msg := err.Error(); strings.HasPrefix(msg, "[") {
		return fmt.Errorf("%s%w", index, err)
	}
	return fmt.Errorf("%s: %w", index, err)
}

func iterToData(v starlark.Iterable, n int, pos dag.Pos, allowRefs bool, depth int) (any, error) {
	out := make([]any, 0, n)
	it := v.Iterate()
	defer it.Done()
	var x starlark.Value
	for i := 0; it.Next(&x); i++ {
		e, err := toData(x, pos, allowRefs, depth+1)
		if err != nil {
			return nil, indexError(fmt.Sprintf("[%d]", i), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// FromData converts workflow data (without references) into a Starlark
// value. It accepts what encoding/json produces too.
func FromData(v any) (starlark.Value, error) {
	switch v := v.(type) {
	case nil:
		return starlark.None, nil
	case bool:
		return starlark.Bool(v), nil
	case int:
		return starlark.MakeInt(v), nil
	case int64:
		return starlark.MakeInt64(v), nil
	case float64:
		if v == float64(int64(v)) && v >= -(1<<53) && v <= 1<<53 {
			return starlark.Float(v), nil
		}
		return starlark.Float(v), nil
	case *big.Int:
		return starlark.MakeBigInt(v), nil
	case string:
		return starlark.String(v), nil
	case []any:
		elems := make([]starlark.Value, len(v))
		for i, e := range v {
			x, err := FromData(e)
			if err != nil {
				return nil, err
			}
			elems[i] = x
		}
		return starlark.NewList(elems), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		d := starlark.NewDict(len(v))
		for _, k := range keys {
			x, err := FromData(v[k])
			if err != nil {
				return nil, err
			}
			if err := d.SetKey(starlark.String(k), x); err != nil {
				return nil, err
			}
		}
		return d, nil
	case *dag.Ref:
		return &RefValue{Ref: v}, nil
	}
	return nil, fmt.Errorf("cannot convert %T to a Starlark value", v)
}
