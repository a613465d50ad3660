package core

import "github.com/flowscript/flowscript/dag"

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
