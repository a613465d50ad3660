package core

import (
	"fmt"
	"sort"
	"strings"

	"github.com/flowscript/flowscript/dag"
)

// Resolve replaces the references in v by what they point at now: step
// outputs (None unless the step succeeded), params and child run ids.
// Secret references are left in place: only a running step resolves them.
func (m *Machine) Resolve(v any) any {
	return dag.ReplaceRefs(v, m.resolveRef)
}

func (m *Machine) resolveRef(r *dag.Ref) any {
	var base any
	switch r.Kind {
	case dag.RefSecret:
		return r
	case dag.RefParam:
		base = m.Run.Params[r.Name]
	case dag.RefOutput:
		st := m.StepState(r.Step)
		if st == nil || st.Status != StepSucceeded {
			return nil
		}
		base = st.Output
	case dag.RefChildRunID:
		st := m.StepState(r.Step)
		if st == nil || st.ChildRunID == "" {
			return nil
		}
		return st.ChildRunID
	}
	return walkPath(base, r.Path)
}

// walkPath follows keys into a value; a missing key or index gives None.
func walkPath(v any, path []any) any {
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int64:
			l, ok := v.([]any)
			if !ok {
				return nil
			}
			i := int(k)
			if i < 0 {
				i += len(l)
			}
			if i < 0 || i >= len(l) {
				return nil
			}
			v = l[i]
		default:
			return nil
		}
	}
	return v
}

// ResolveInputs resolves a step's inputs as Resolve does, except that a
// reference into a succeeded step's output that names a key the output
// does not have is an error naming the input, the key and the keys the
// output has (SPEC §4). A reference to a step that did not succeed still
// resolves to None.
func (m *Machine) ResolveInputs(inputs any) (any, error) {
	in, ok := inputs.(map[string]any)
	if !ok {
		return dag.MapRefs(inputs, m.resolveStrict)
	}
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]any, len(in))
	for _, k := range names {
		v, err := dag.MapRefs(in[k], m.resolveStrict)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

func (m *Machine) resolveStrict(r *dag.Ref) (any, error) {
	if r.Kind != dag.RefOutput || len(r.Path) == 0 {
		return m.resolveRef(r), nil
	}
	st := m.StepState(r.Step)
	if st == nil || st.Status != StepSucceeded {
		return nil, nil
	}
	v := st.Output
	where := r.Step + "'s output"
	for _, k := range r.Path {
		switch k := k.(type) {
		case string:
			d, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s has no key %q (it is %s, not a dict)", where, k, kindOf(v))
			}
			x, ok := d[k]
			if !ok {
				return nil, fmt.Errorf("%s has no key %q (it has: %s)", where, k, keyList(d))
			}
			v = x
			where += fmt.Sprintf("[%q]", k)
		case int64:
			l, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("%s has no index %d (it is %s, not a list)", where, k, kindOf(v))
			}
			i := int(k)
			if i < 0 {
				i += len(l)
			}
			if i < 0 || i >= len(l) {
				return nil, fmt.Errorf("%s has no index %d (it has %d items)", where, k, len(l))
			}
			v = l[i]
			where += fmt.Sprintf("[%d]", k)
		default:
			return nil, nil
		}
	}
	return v, nil
}

func keyList(d map[string]any) string {
	if len(d) == 0 {
		return "no keys"
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case map[string]any:
		return "a dict"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case int64:
		return "an int"
	case float64:
		return "a float"
	}
	return fmt.Sprintf("%T", v)
}
