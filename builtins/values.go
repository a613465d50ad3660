package builtins

import (
	"fmt"
	"hash/fnv"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/flowscript/flowscript/dag"
)

// StepValue is what task, shell and sub_workflow return.
type StepValue struct {
	ID   string
	Kind dag.Kind
	pos  dag.Pos
}

var (
	_ starlark.HasAttrs  = (*StepValue)(nil)
	_ starlark.Mapping   = (*RefValue)(nil)
	_ starlark.Container = (*RefValue)(nil)
	_ starlark.HasAttrs  = (*RefValue)(nil)
)

func (s *StepValue) String() string        { return fmt.Sprintf("<step %s>", s.ID) }
func (s *StepValue) Type() string          { return "step" }
func (s *StepValue) Freeze()               {}
func (s *StepValue) Truth() starlark.Bool  { return starlark.True }
func (s *StepValue) Hash() (uint32, error) { return hashString(s.ID), nil }

var stepAttrs = []string{"child_run_id", "done", "failed", "id", "output", "succeeded"}

func (s *StepValue) AttrNames() []string { return stepAttrs }

func (s *StepValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "id":
		return starlark.String(s.ID), nil
	case "output":
		return &RefValue{Ref: &dag.Ref{Kind: dag.RefOutput, Step: s.ID}}, nil
	case "succeeded":
		return &CondValue{Step: s.ID, Cond: dag.Succeeded}, nil
	case "failed":
		return &CondValue{Step: s.ID, Cond: dag.Failed}, nil
	case "done":
		return &CondValue{Step: s.ID, Cond: dag.Done}, nil
	case "child_run_id":
		if s.Kind != dag.KindSubWorkflow {
			return nil, fmt.Errorf("step %q is a %s step: only sub_workflow steps have .child_run_id", s.ID, s.Kind)
		}
		return &RefValue{Ref: &dag.Ref{Kind: dag.RefChildRunID, Step: s.ID}}, nil
	}
	return nil, nil
}

// CondValue is s.succeeded, s.failed or s.done: an entry for after=.
type CondValue struct {
	Step string
	Cond dag.Condition
}

func (c *CondValue) String() string        { return fmt.Sprintf("<%s.%s>", c.Step, c.Cond) }
func (c *CondValue) Type() string          { return "condition" }
func (c *CondValue) Freeze()               {}
func (c *CondValue) Truth() starlark.Bool  { return starlark.True }
func (c *CondValue) Hash() (uint32, error) { return hashString(c.Step + "." + string(c.Cond)), nil }

// RefValue is a reference resolved at run time: a step's output (or a
// field in it), a param, a secret, or a child run id.
type RefValue struct {
	Ref *dag.Ref
}

func (r *RefValue) String() string        { return "<ref " + r.Ref.String() + ">" }
func (r *RefValue) Type() string          { return "reference" }
func (r *RefValue) Freeze()               {}
func (r *RefValue) Truth() starlark.Bool  { return starlark.True }
func (r *RefValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: reference") }

// Get makes r["key"] and r[0] references one level deeper.
func (r *RefValue) Get(k starlark.Value) (starlark.Value, bool, error) {
	if r.Ref.Kind == dag.RefSecret {
		return nil, false, fmt.Errorf("%s cannot be indexed", r.Ref)
	}
	switch k := k.(type) {
	case starlark.String:
		return &RefValue{Ref: r.Ref.WithKey(string(k), r.Ref.Pos)}, true, nil
	case starlark.Int:
		i, ok := k.Int64()
		if !ok {
			return nil, false, fmt.Errorf("index %s out of range", k)
		}
		return &RefValue{Ref: r.Ref.WithKey(i, r.Ref.Pos)}, true, nil
	}
	return nil, false, fmt.Errorf("%s: index must be a string or an int, not %s", r.Ref, k.Type())
}

// Has refuses `x in r`: without it, Starlark would answer True through
// Get, for a value that exists only at run time.
func (r *RefValue) Has(x starlark.Value) (bool, error) {
	return false, fmt.Errorf("%s is only known at run time: `in` cannot look inside it while the workflow is declared; pass it in inputs= and test it inside a step body", r.Ref)
}

// AttrNames and Attr exist to give a clear message for r.field.
func (r *RefValue) AttrNames() []string { return nil }

func (r *RefValue) Attr(name string) (starlark.Value, error) {
	return nil, fmt.Errorf("%s is a reference resolved at run time: write [%q] to reach a field, not .%s", r.Ref, name, name)
}

// Binary refuses operators with a message that explains why.
func (r *RefValue) Binary(op syntax.Token, y starlark.Value, side starlark.Side) (starlark.Value, error) {
	return nil, fmt.Errorf("%s is only known at run time and cannot be used with %s while the workflow is declared; pass it in inputs= and compute inside a step body", r.Ref, op)
}

func hashString(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
