package lang

import (
	"context"
	"fmt"
	"sort"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
)

// The cross-workflow checks of the dynamic steps (SPEC §4b). for_each and
// loop steps are edges of the workflow graph like sub_workflow steps
// (reach follows them), so an unknown child, a workflow cycle and the
// nesting depth are found through them as through sub_workflow; this file
// adds what only they have.

// maxCheckedItems bounds how many literal items validation feeds to a
// for_each's inputs function.
const maxCheckedItems = 100

// checkDynamic checks a for_each step whose items are a literal list and
// whose inputs are a function of the item: the function is called on
// each item (up to maxCheckedItems), and what it returns must be a dict
// naming only params the child declares. Items known only at run time
// are checked when each child is spawned.
func (c *checker) checkDynamic(p *Program, s *dag.Step, child *Program) {
	if s.Kind != dag.KindForEach || s.Dynamic == nil || !s.Dynamic.InputsFn {
		return
	}
	items, ok := s.Dynamic.Items.([]any)
	if !ok {
		return
	}
	refs := false
	dag.WalkRefs(items, func(*dag.Ref) { refs = true })
	if refs {
		return
	}
	fn := p.Bodies[dag.BodyKey(s.ID, "inputs")]
	if fn == nil {
		return
	}
	cw := child.Workflow
	reported := map[string]bool{}
	for i, item := range items {
		if i == maxCheckedItems {
			break
		}
		in, err := ChildInputs(c.ctx, fn, item)
		if err != nil {
			c.errs.Add(s.Pos, "for_each %q: inputs of item %d: %v", s.ID, i, err)
			return
		}
		keys := make([]string, 0, len(in))
		for k := range in {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if cw.Param(k) == nil && !reported[k] {
				reported[k] = true
				c.errs.Add(s.Pos, "%s has no param %q%s", cw.Name, k, dag.DidYouMean(k, cw.ParamNames()))
			}
		}
	}
}

// ChildInputs calls a for_each's inputs function on one item; what it
// returns must be a dict (None means no inputs).
func ChildInputs(ctx context.Context, fn starlark.Callable, item any) (map[string]any, error) {
	v, err := builtins.CallDynamic(ctx, fn, item)
	if err != nil {
		return nil, err
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return v, nil
	}
	return nil, fmt.Errorf("the inputs function must return a dict of the child's params, got %s", dag.FormatValue(v))
}

// CallUntil calls a loop's until function with the child's output and
// the iteration (0 for the first child); it must return a bool.
func CallUntil(ctx context.Context, fn starlark.Callable, output any, iteration int) (bool, error) {
	v, err := builtins.CallDynamic(ctx, fn, output, int64(iteration))
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("until must return True or False, got %s", dag.FormatValue(v))
	}
	return b, nil
}
