package builtins

// The arguments every step builtin shares, and how they become a step.

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowscript/flowscript/dag"
	"go.starlark.net/starlark"
)

// MaxRetries bounds a step's retries=.
const MaxRetries = 100

// stepArgs are the keyword arguments every step builtin shares.
type stepArgs struct {
	inputs     starlark.Value
	after      starlark.Value
	retries    int
	retryDelay starlark.Value
	timeout    starlark.Value
	optional   bool
	priority   starlark.Value
}

// pairs are the UnpackArgs pairs of every shared argument.
func (a *stepArgs) pairs() []any {
	return append([]any{"inputs?", &a.inputs}, a.common()...)
}

// common are the pairs of the shared arguments other than inputs, for a
// builtin whose inputs= takes more than a dict.
func (a *stepArgs) common() []any {
	return []any{
		"after?", &a.after, "retries?", &a.retries,
		"retry_delay?", &a.retryDelay, "timeout?", &a.timeout,
		"optional?", &a.optional, "priority?", &a.priority,
	}
}

// fill copies the shared arguments into the step, recording problems.
func (a *stepArgs) fill(b *Builder, fn string, s *dag.Step) error {
	pos := s.Pos
	if a.inputs != nil && a.inputs != starlark.None {
		if _, ok := a.inputs.(*starlark.Dict); !ok {
			return fmt.Errorf("%s: inputs must be a dict, got %s", fn, a.inputs.Type())
		}
		v, err := ToData(a.inputs, pos, true)
		if err != nil {
			return fmt.Errorf("%s: inputs%w", fn, prefixIndex(err))
		}
		s.Inputs = v.(map[string]any)
	}
	after, err := parseAfter(fn, a.after, pos)
	if err != nil {
		return err
	}
	s.After = after
	if a.retries < 0 {
		b.errorf(pos, "%s: retries must be 0 or more, got %d", fn, a.retries)
	}
	if a.retries > MaxRetries {
		b.errorf(pos, "%s: retries is %d, more than the limit of %d (max_retries, fixed): a step that fails this often needs fixing, not retrying", fn, a.retries, MaxRetries)
	}
	s.Retries = a.retries
	s.RetryDelay = time.Second
	if d, ok := b.duration(pos, fn, "retry_delay", a.retryDelay); ok && a.retryDelay != nil && a.retryDelay != starlark.None {
		s.RetryDelay = d
	}
	if d, ok := b.duration(pos, fn, "timeout", a.timeout); ok {
		s.Timeout = d
	}
	s.Optional = a.optional
	if a.priority != nil && a.priority != starlark.None {
		switch p := a.priority.(type) {
		case starlark.Int:
			n, ok := p.Int64()
			if !ok || !dag.PriorityInRange(n) {
				b.errorf(pos, "%s: priority must be between %d and %d, got %s", fn, dag.MinPriority, dag.MaxPriority, p)
			}
			s.Priority = n
		case *RefValue:
			r := *p.Ref
			if r.Pos.File == "" {
				r.Pos = pos
			}
			if r.Kind == dag.RefSecret {
				b.errorf(pos, "%s: priority cannot be a secret: a priority is stored with the run, and secret values never are", fn)
			}
			s.Priority = &r
		default:
			return fmt.Errorf("%s: priority must be an int from %d to %d or a reference, got %s", fn, dag.MinPriority, dag.MaxPriority, a.priority.Type())
		}
	}
	return nil
}

// prefixIndex turns `["k"]: msg` from ToData into `["k"]: msg` after the
// argument name, and a bare message into `: msg`.
func prefixIndex(err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "[") {
		return fmt.Errorf("%s", msg)
	}
	return fmt.Errorf(": %s", msg)
}

func parseAfter(fn string, v starlark.Value, pos dag.Pos) ([]dag.Dep, error) {
	if v == nil || v == starlark.None {
		return nil, nil
	}
	var items []starlark.Value
	switch v := v.(type) {
	case *starlark.List:
		for i := 0; i < v.Len(); i++ {
			items = append(items, v.Index(i))
		}
	case starlark.Tuple:
		items = v
	default:
		items = []starlark.Value{v}
	}
	deps := make([]dag.Dep, 0, len(items))
	for _, it := range items {
		switch it := it.(type) {
		case *StepValue:
			deps = append(deps, dag.Dep{Step: it.ID, Cond: dag.Succeeded, Pos: pos})
		case *CondValue:
			deps = append(deps, dag.Dep{Step: it.Step, Cond: it.Cond, Pos: pos})
		case starlark.String:
			id, cond := string(it), dag.Succeeded
			if i := strings.LastIndexByte(id, '.'); i >= 0 {
				switch suffix := id[i+1:]; suffix {
				case "failed", "done", "succeeded":
					id, cond = id[:i], dag.Condition(suffix)
				default:
					return nil, fmt.Errorf("%s: after: %q: a condition is .succeeded, .failed or .done, not .%s", fn, string(it), suffix)
				}
			}
			deps = append(deps, dag.Dep{Step: id, Cond: cond, Pos: pos})
		default:
			return nil, fmt.Errorf("%s: after: want steps, conditions such as s.failed, or step ids, got %s", fn, it.Type())
		}
	}
	return deps, nil
}

// duration parses an optional duration argument; ok is false when it was
// given and is not valid (the problem is recorded).
func (b *Builder) duration(pos dag.Pos, fn, arg string, v starlark.Value) (time.Duration, bool) {
	if v == nil || v == starlark.None {
		return 0, true
	}
	s, ok := v.(starlark.String)
	if !ok {
		b.errorf(pos, "%s: %s must be a duration string such as \"30s\", \"5m\" or \"1h\", got %s", fn, arg, v.Type())
		return 0, false
	}
	d, err := time.ParseDuration(string(s))
	if err != nil {
		b.errorf(pos, "%s: %s: %q is not a duration (write it like \"500ms\", \"30s\", \"5m\" or \"1h\")", fn, arg, string(s))
		return 0, false
	}
	if d <= 0 {
		b.errorf(pos, "%s: %s must be more than zero, got %q", fn, arg, string(s))
		return 0, false
	}
	return d, true
}

// addStep records a new step, checking its id.
func (b *Builder) addStep(fn string, s *dag.Step) *StepValue {
	switch {
	case s.ID == "":
		b.errorf(s.Pos, "%s: the step id is empty", fn)
	case len(s.ID) > dag.MaxStepIDLen:
		b.errorf(s.Pos, "%s: step id %s is %d characters long; the most is %d", fn, dag.ShortQuote(s.ID), len(s.ID), dag.MaxStepIDLen)
	case !dag.ValidStepID(s.ID):
		b.errorf(s.Pos, "%s: step id %s is not valid: use letters, digits, _ and -", fn, dag.ShortQuote(s.ID))
	}
	if prev, dup := b.steps[s.ID]; dup {
		first := prev.Pos.String() + calledFrom(b.chains[s.ID])
		b.errorf(s.Pos, "duplicate step id %s (first declared at %s)", dag.ShortQuote(s.ID), first)
		return &StepValue{ID: s.ID, Kind: s.Kind, pos: s.Pos}
	}
	b.steps[s.ID] = s
	if c := chainOf(b.thread); c != nil {
		if b.chains == nil {
			b.chains = map[string][]string{}
		}
		b.chains[s.ID] = c
	}
	b.Workflow.AddStep(s)
	return &StepValue{ID: s.ID, Kind: s.Kind, pos: s.Pos}
}

// arity says why fn cannot be called with n positional arguments, or
// returns "".
func arity(fn *starlark.Function, n int) string {
	positional := fn.NumParams() - fn.NumKwonlyParams()
	if fn.HasVarargs() {
		positional--
	}
	if fn.HasKwargs() {
		positional--
	}
	required := 0
	for i := 0; i < positional; i++ {
		if fn.ParamDefault(i) == nil {
			required++
		}
	}
	for i := positional; i < positional+fn.NumKwonlyParams(); i++ {
		if fn.ParamDefault(i) == nil {
			name, _ := fn.Param(i)
			return fmt.Sprintf("its keyword-only parameter %s has no default", name)
		}
	}
	switch {
	case required > n:
		return fmt.Sprintf("it requires %d", required)
	case positional < n && !fn.HasVarargs():
		if positional == 0 {
			return "it takes none"
		}
		return fmt.Sprintf("it takes %d", positional)
	}
	return ""
}
