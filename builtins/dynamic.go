package builtins

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
)

// The dynamic definition builtins of SPEC §4b: for_each, loop and
// planner. They declare one step each; what the step starts is known only
// at run time. The Starlark functions they take are kept in the
// builder's Bodies under dag.BodyKey, found again at run time by
// re-evaluating the run's source snapshot.

// dynamicBuiltins are the dynamic definition builtins, merged into
// Definition().
func dynamicBuiltins() starlark.StringDict {
	return starlark.StringDict{
		"for_each": starlark.NewBuiltin("for_each", forEachFn),
		"loop":     starlark.NewBuiltin("loop", loopFn),
		"planner":  starlark.NewBuiltin("planner", plannerFn),
	}
}

// childArgs are what for_each and loop share: the child workflow and the
// common step arguments other than inputs.
type childArgs struct {
	workflow string
	version  int
	inputs   starlark.Value
	sa       stepArgs
}

func (c *childArgs) pairs() []any {
	return append([]any{"workflow", &c.workflow, "inputs?", &c.inputs, "version?", &c.version}, c.sa.common()...)
}

// fill records the child and the common arguments into s. A dict of
// inputs becomes the step's inputs; a function is returned for the
// caller to check and keep.
func (c *childArgs) fill(b *Builder, fn string, s *dag.Step) (*starlark.Function, error) {
	if c.workflow == "" {
		b.errorf(s.Pos, "%s: the workflow name is empty", fn)
	}
	if c.version < 0 {
		b.errorf(s.Pos, "%s: version must be 0 (the latest) or more, got %d", fn, c.version)
	}
	s.Child = &dag.Child{Name: c.workflow, Version: c.version}
	s.Dynamic = &dag.Dynamic{}
	var inputsFn *starlark.Function
	switch v := c.inputs.(type) {
	case nil, starlark.NoneType:
	case *starlark.Dict:
		c.sa.inputs = v
	case *starlark.Function:
		inputsFn = v
	default:
		return nil, fmt.Errorf("%s: inputs must be a dict or a function of the item such as lambda item: {\"path\": item}, got %s", fn, c.inputs.Type())
	}
	if err := c.sa.fill(b, fn, s); err != nil {
		return nil, err
	}
	return inputsFn, nil
}

// keep records a function the step declares under dag.BodyKey(id, part),
// after checking that it can be called with want arguments.
func (b *Builder) keep(fn string, s *dag.Step, part string, f *starlark.Function, want int, args string) {
	if problem := arity(f, want); problem != "" {
		b.errorf(s.Pos, "%s: %s %s must take %s (%s)", fn, part, f.Name(), args, problem)
	}
	if b.steps[s.ID] == s { // a duplicate id keeps the first step's functions
		b.Bodies[dag.BodyKey(s.ID, part)] = f
	}
}

func forEachFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "for_each")
	if err != nil {
		return nil, err
	}
	var (
		id        string
		items     starlark.Value
		maxConc   = 0
		onFailure = dag.FailFast
		c         childArgs
	)
	pairs := append([]any{"id", &id, "items", &items}, c.pairs()...)
	pairs = append(pairs, "max_concurrency?", &maxConc, "on_failure?", &onFailure)
	if err := starlark.UnpackArgs("for_each", args, kwargs, pairs...); err != nil {
		return nil, err
	}
	s := &dag.Step{ID: id, Kind: dag.KindForEach, Pos: callerPos(thread)}
	inputsFn, err := c.fill(b, "for_each", s)
	if err != nil {
		return nil, err
	}
	switch it := items.(type) {
	case *starlark.List, starlark.Tuple:
		v, err := ToData(it, s.Pos, true)
		if err != nil {
			return nil, fmt.Errorf("for_each: items%w", prefixIndex(err))
		}
		s.Dynamic.Items = v
	case *RefValue:
		r := *it.Ref
		if r.Pos.File == "" {
			r.Pos = s.Pos
		}
		if r.Kind == dag.RefSecret {
			b.errorf(s.Pos, "for_each: items cannot be a secret: items are stored with the run, and secret values never are")
		}
		s.Dynamic.Items = &r
	default:
		return nil, fmt.Errorf("for_each: items must be a list or a reference to one (a step's output, a param), got %s", items.Type())
	}
	if maxConc < 0 {
		b.errorf(s.Pos, "for_each: max_concurrency must be 0 (no bound) or more, got %d", maxConc)
	}
	s.Dynamic.MaxConcurrency = maxConc
	if !validPolicy(onFailure) {
		b.errorf(s.Pos, "for_each: on_failure %q is not one of %s%s", onFailure, strings.Join(dag.OnFailurePolicies, ", "), dag.DidYouMean(onFailure, dag.OnFailurePolicies))
	}
	s.Dynamic.OnFailure = onFailure
	v := b.addStep("for_each", s)
	if inputsFn != nil {
		s.Dynamic.InputsFn = true
		b.keep("for_each", s, "inputs", inputsFn, 1, "one parameter, the item")
	}
	return v, nil
}

func validPolicy(p string) bool {
	for _, q := range dag.OnFailurePolicies {
		if p == q {
			return true
		}
	}
	return false
}

func loopFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "loop")
	if err != nil {
		return nil, err
	}
	var (
		id      string
		until   starlark.Value
		maxIter = dag.DefaultMaxIterations
		delay   starlark.Value
		c       childArgs
	)
	pairs := append([]any{"id", &id}, c.pairs()...)
	pairs = append(pairs, "until", &until, "max_iterations?", &maxIter, "delay?", &delay)
	if err := starlark.UnpackArgs("loop", args, kwargs, pairs...); err != nil {
		return nil, err
	}
	s := &dag.Step{ID: id, Kind: dag.KindLoop, Pos: callerPos(thread)}
	inputsFn, err := c.fill(b, "loop", s)
	if err != nil {
		return nil, err
	}
	if inputsFn != nil {
		return nil, fmt.Errorf("loop: inputs must be a dict (every iteration's child gets the same inputs), got a function")
	}
	untilFn, ok := until.(*starlark.Function)
	if !ok {
		return nil, fmt.Errorf("loop: until must be a function of the child's output and the iteration, such as lambda out, i: out[\"ready\"], got %s", until.Type())
	}
	if maxIter < 1 {
		b.errorf(s.Pos, "loop: max_iterations must be 1 or more, got %d", maxIter)
	}
	s.Dynamic.MaxIterations = maxIter
	if d, ok := b.duration(s.Pos, "loop", "delay", delay); ok {
		s.Dynamic.Delay = d
	}
	v := b.addStep("loop", s)
	b.keep("loop", s, "until", untilFn, 2, "two parameters, the child's output and the iteration")
	return v, nil
}

func plannerFn(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	b, err := builderFor(thread, "planner")
	if err != nil {
		return nil, err
	}
	var (
		id   string
		body starlark.Value
		sa   stepArgs
	)
	pairs := append([]any{"id", &id, "body", &body}, sa.pairs()...)
	if err := starlark.UnpackArgs("planner", args, kwargs, pairs...); err != nil {
		return nil, err
	}
	f, ok := body.(*starlark.Function)
	if !ok {
		return nil, fmt.Errorf("planner: body must be a function def body(ctx) that declares steps, got %s", body.Type())
	}
	s := &dag.Step{ID: id, Kind: dag.KindPlanner, Pos: callerPos(thread), Body: f.Name()}
	if err := sa.fill(b, "planner", s); err != nil {
		return nil, err
	}
	v := b.addStep("planner", s)
	if problem := arity(f, 1); problem != "" {
		b.errorf(s.Pos, "planner: body %s must take one parameter, ctx (%s)", f.Name(), problem)
	}
	if b.steps[id] == s {
		b.Bodies[id] = f
	}
	return v, nil
}

// DynamicFnMaxSteps bounds the Starlark execution steps of one call of a
// dynamic step's function (for_each's inputs, loop's until).
const DynamicFnMaxSteps = 1_000_000

// CallDynamic calls a function a dynamic step declared, on a fresh thread
// bounded to DynamicFnMaxSteps, with args converted from workflow data,
// and returns its result as workflow data. Errors carry the function's
// file:line:col. These functions run at run time (and at validation, on
// literal items) but declare nothing and see no step context: calling sh
// or http in them is refused.
func CallDynamic(ctx context.Context, fn starlark.Callable, args ...any) (any, error) {
	thread := &starlark.Thread{Name: "dynamic " + fn.Name()}
	thread.SetMaxExecutionSteps(DynamicFnMaxSteps)
	tooMany := false
	thread.OnMaxSteps = func(t *starlark.Thread) {
		tooMany = true
		t.Cancel("too many steps")
	}
	stop := context.AfterFunc(ctx, func() { thread.Cancel("the step's context ended") })
	defer stop()
	sargs := make(starlark.Tuple, len(args))
	for i, a := range args {
		v, err := FromData(a)
		if err != nil {
			return nil, err
		}
		sargs[i] = v
	}
	v, err := starlark.Call(thread, fn, sargs, nil)
	if err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			pos := innermostPos(ee.CallStack)
			msg := ee.Msg
			if tooMany {
				msg = fmt.Sprintf("%s ran more than %d Starlark execution steps and was stopped (an endless loop?)", fn.Name(), DynamicFnMaxSteps)
			}
			if pos.File != "" {
				return nil, fmt.Errorf("%s: %s", pos, msg)
			}
			return nil, errors.New(msg)
		}
		return nil, err
	}
	pos := dag.Pos{}
	if f, ok := fn.(*starlark.Function); ok {
		p := f.Position()
		pos = dag.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
	}
	return ToData(v, pos, false)
}
