package dag

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Validate checks one workflow on its own: step ids, references, secrets,
// params and step cycles. Checks across workflows (children, depth) belong
// to the lang package. Every problem found is returned, sorted.
func Validate(w *Workflow) ErrorList {
	var errs ErrorList
	if len(w.Steps) == 0 {
		errs.Add(w.Pos, "workflow %q declares no steps", w.Name)
	}
	if err := CheckText("workflow name", w.Name); err != nil {
		errs.Add(w.Pos, "%v", err)
	}
	ids := make([]string, 0, len(w.Steps))
	first := make(map[string]*Step, len(w.Steps))
	for _, s := range w.Steps {
		if prev, dup := first[s.ID]; dup {
			errs.Add(s.Pos, "duplicate step id %q (first declared at %s)", s.ID, prev.Pos)
			continue
		}
		first[s.ID] = s
		ids = append(ids, s.ID)
	}
	checkRef := func(r *Ref, owner *Step) {
		switch r.Kind {
		case RefOutput, RefChildRunID:
			target, ok := first[r.Step]
			if !ok {
				errs.Add(r.Pos, "reference to unknown step %q%s", r.Step, DidYouMean(r.Step, otherIDs(ids, stepID(owner))))
				return
			}
			if r.Kind == RefChildRunID && target.Kind != KindSubWorkflow {
				errs.Add(r.Pos, "%s.child_run_id: step %q is a %s step; only sub_workflow steps have a child run", r.Step, r.Step, target.Kind)
			}
		case RefParam:
			if w.Param(r.Name) == nil {
				errs.Add(r.Pos, "param(%q): no such param in workflow(params=...)%s", r.Name, DidYouMean(r.Name, w.ParamNames()))
			}
		case RefSecret:
			if !w.HasSecret(r.Name) {
				errs.Add(r.Pos, "secret(%q) is not declared in workflow(secrets=...)%s", r.Name, DidYouMean(r.Name, w.Secrets))
			}
		}
	}
	deps := make([][]Dep, len(w.Steps))
	for i, s := range w.Steps {
		deps[i] = s.Deps()
		for _, d := range s.After {
			if _, ok := first[d.Step]; !ok {
				errs.Add(d.Pos, "after: unknown step %q%s", d.Step, DidYouMean(d.Step, otherIDs(ids, s.ID)))
			}
		}
		s.walkRefs(func(_ string, r *Ref) { checkRef(r, s) })
		if s.Child != nil {
			if err := CheckText("sub_workflow name", s.Child.Name); err != nil {
				errs.Add(s.Pos, "%v", err)
			}
			if k, ok := s.Child.IdempotencyKey.(string); ok {
				if err := CheckText("idempotency_key", k); err != nil {
					errs.Add(s.Pos, "%v", err)
				}
			}
		}
		if s.Kind.RunsChildren() {
			WalkRefs(s.Inputs, func(r *Ref) {
				if r.Kind == RefSecret {
					errs.Add(r.Pos, "%s %q: inputs pass %s to a child; a child declares and resolves its own secrets", s.Kind, s.ID, r)
				}
			})
		}
	}
	WalkRefs(w.Output, func(r *Ref) {
		if r.Kind == RefSecret {
			errs.Add(r.Pos, "output: %s would expose a secret; outputs cannot hold secrets", r)
			return
		}
		checkRef(r, nil)
	})
	errs = append(errs, findCycles(w, first, deps)...)
	errs = append(errs, validateDynamic(w, first)...) // dynamic.go
	errs.Sort()
	return errs
}

// findCycles reports each strongly connected group of steps once, as one
// path through it that starts and ends at its first-declared step.
func findCycles(w *Workflow, byID map[string]*Step, deps [][]Dep) ErrorList {
	// index the steps that count (the first of duplicate ids) and build
	// the graph on indexes: edges go from upstream to downstream, the
	// order in which steps run
	index := make(map[string]int, len(w.Steps))
	var nodes []*Step
	var nodeDeps [][]Dep
	for i, s := range w.Steps {
		if byID[s.ID] != s {
			continue
		}
		index[s.ID] = len(nodes)
		nodes = append(nodes, s)
		nodeDeps = append(nodeDeps, deps[i])
	}
	succ := make([][]int, len(nodes))
	for i := range nodes {
		for _, d := range nodeDeps[i] {
			if j, ok := index[d.Step]; ok {
				succ[j] = append(succ[j], i)
			}
		}
	}
	var errs ErrorList
	for _, comp := range stronglyConnected(succ) {
		path := cyclePath(comp[0], succ, comp)
		if path == nil {
			continue
		}
		ids := make([]string, len(path))
		for k, i := range path {
			ids[k] = nodes[i].ID
		}
		errs.Add(nodes[comp[0]].Pos, "step cycle: %s", strings.Join(ids, " -> "))
	}
	return errs
}

// stronglyConnected returns the groups of nodes that lie on a cycle (a
// group of one only when the node depends on itself), each sorted, in the
// order of their first node. Tarjan's algorithm, iterative so that deep
// graphs cannot overflow the stack.
func stronglyConnected(succ [][]int) [][]int {
	n := len(succ)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var comps [][]int
	next := 0
	type frame struct{ node, edge int }
	var work []frame
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		work = append(work[:0], frame{node: root})
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(work) > 0 {
			top := &work[len(work)-1]
			if top.edge < len(succ[top.node]) {
				m := succ[top.node][top.edge]
				top.edge++
				if index[m] < 0 {
					index[m], low[m] = next, next
					next++
					stack = append(stack, m)
					onStack[m] = true
					work = append(work, frame{node: m})
				} else if onStack[m] {
					low[top.node] = min(low[top.node], index[m])
				}
				continue
			}
			v := top.node
			work = work[:len(work)-1]
			if len(work) > 0 {
				parent := work[len(work)-1].node
				low[parent] = min(low[parent], low[v])
			}
			if low[v] != index[v] {
				continue
			}
			var comp []int
			for {
				m := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[m] = false
				comp = append(comp, m)
				if m == v {
					break
				}
			}
			if len(comp) == 1 && !slices.Contains(succ[v], v) {
				continue
			}
			slices.Sort(comp)
			comps = append(comps, comp)
		}
	}
	slices.SortFunc(comps, func(a, b []int) int { return a[0] - b[0] })
	return comps
}

// cyclePath finds a shortest path from start back to start inside a
// group (sorted node indexes).
func cyclePath(start int, succ [][]int, group []int) []int {
	in := func(n int) bool { _, ok := slices.BinarySearch(group, n); return ok }
	prev := map[int]int{}
	queue := []int{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, n := range succ[cur] {
			if !in(n) {
				continue
			}
			if n == start {
				path := []int{start}
				for c := cur; c != start; c = prev[c] {
					path = append(path, c)
				}
				slices.Reverse(path[1:])
				return append(path, start)
			}
			if _, seen := prev[n]; !seen {
				prev[n] = cur
				queue = append(queue, n)
			}
		}
	}
	return nil
}

// otherIDs is ids without self: a step never depends on itself, so it is
// no suggestion for its own unknown dependency.
func otherIDs(ids []string, self string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != self {
			out = append(out, id)
		}
	}
	return out
}

func stepID(s *Step) string {
	if s == nil {
		return ""
	}
	return s.ID
}

// CheckText refuses a name or key that holds a control character: such
// values are part of stored keys and of what users read, and must not be
// able to pass for another value.
func CheckText(what, v string) error {
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q contains the control character %U; use printable text", what, v, r)
		}
	}
	return nil
}
