package dag

import (
	"sort"
	"strings"
)

// Validate checks one workflow on its own: step ids, references, secrets,
// params and step cycles. Checks across workflows (children, depth) belong
// to the lang package. Every problem found is returned, sorted.
func Validate(w *Workflow) ErrorList {
	var errs ErrorList
	if len(w.Steps) == 0 {
		errs.Add(w.Pos, "workflow %q declares no steps", w.Name)
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
				errs.Add(r.Pos, "reference to unknown step %q%s", r.Step, DidYouMean(r.Step, ids))
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
	for _, s := range w.Steps {
		for _, d := range s.After {
			if _, ok := first[d.Step]; !ok {
				errs.Add(d.Pos, "after: unknown step %q%s", d.Step, DidYouMean(d.Step, ids))
			}
		}
		s.walkRefs(func(_ string, r *Ref) { checkRef(r, s) })
		if s.Kind == KindSubWorkflow {
			WalkRefs(s.Inputs, func(r *Ref) {
				if r.Kind == RefSecret {
					errs.Add(r.Pos, "sub_workflow %q: inputs pass %s to a child; a child declares and resolves its own secrets", s.ID, r)
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
	errs = append(errs, findCycles(w, first)...)
	errs.Sort()
	return errs
}

// findCycles reports each strongly connected group of steps once, as one
// path through it that starts and ends at its first-declared step.
func findCycles(w *Workflow, byID map[string]*Step) ErrorList {
	// edges go from upstream to downstream, the order in which steps run
	succ := make(map[string][]string, len(w.Steps))
	for _, s := range w.Steps {
		if byID[s.ID] != s {
			continue
		}
		for _, d := range s.Deps() {
			if _, ok := byID[d.Step]; ok {
				succ[d.Step] = append(succ[d.Step], s.ID)
			}
		}
	}
	var errs ErrorList
	for _, comp := range stronglyConnected(w, byID, succ) {
		start := comp[0]
		inComp := make(map[string]bool, len(comp))
		for _, id := range comp {
			inComp[id] = true
		}
		path := cyclePath(start, succ, inComp)
		if path == nil {
			continue
		}
		errs.Add(byID[start].Pos, "step cycle: %s", strings.Join(path, " -> "))
	}
	return errs
}

// stronglyConnected returns the groups of steps that lie on a cycle (a group
// of one only when the step depends on itself), each sorted by declaration
// order. Tarjan's algorithm, iterative so that deep graphs cannot overflow
// the stack.
func stronglyConnected(w *Workflow, byID map[string]*Step, succ map[string][]string) [][]string {
	order := make(map[string]int, len(w.Steps))
	for i, s := range w.Steps {
		if _, ok := order[s.ID]; !ok {
			order[s.ID] = i
		}
	}
	index := make(map[string]int, len(order))
	low := make(map[string]int, len(order))
	onStack := make(map[string]bool)
	var stack []string
	var comps [][]string
	next := 0
	type frame struct {
		id string
		i  int
	}
	for _, s := range w.Steps {
		if _, seen := index[s.ID]; seen || byID[s.ID] != s {
			continue
		}
		work := []frame{{id: s.ID}}
		index[s.ID], low[s.ID] = next, next
		next++
		stack = append(stack, s.ID)
		onStack[s.ID] = true
		for len(work) > 0 {
			top := &work[len(work)-1]
			if top.i < len(succ[top.id]) {
				n := succ[top.id][top.i]
				top.i++
				if _, seen := index[n]; !seen {
					index[n], low[n] = next, next
					next++
					stack = append(stack, n)
					onStack[n] = true
					work = append(work, frame{id: n})
				} else if onStack[n] {
					low[top.id] = min(low[top.id], index[n])
				}
				continue
			}
			id := top.id
			work = work[:len(work)-1]
			if len(work) > 0 {
				parent := work[len(work)-1].id
				low[parent] = min(low[parent], low[id])
			}
			if low[id] != index[id] {
				continue
			}
			var comp []string
			for {
				n := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[n] = false
				comp = append(comp, n)
				if n == id {
					break
				}
			}
			if len(comp) == 1 && !contains(succ[id], id) {
				continue
			}
			sortByOrder(comp, order)
			comps = append(comps, comp)
		}
	}
	return comps
}

// cyclePath finds a shortest path from start back to start inside a group.
func cyclePath(start string, succ map[string][]string, in map[string]bool) []string {
	prev := map[string]string{}
	queue := []string{start}
	visited := map[string]bool{}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, n := range succ[cur] {
			if !in[n] {
				continue
			}
			if n == start {
				path := []string{start}
				for c := cur; c != start; c = prev[c] {
					path = append(path, c)
				}
				// path is start, cur, ..., reversed after the first element
				for i, j := 1, len(path)-1; i < j; i, j = i+1, j-1 {
					path[i], path[j] = path[j], path[i]
				}
				return append(path, start)
			}
			if !visited[n] {
				visited[n] = true
				prev[n] = cur
				queue = append(queue, n)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func sortByOrder(ids []string, order map[string]int) {
	// not an insertion sort: a group comes off Tarjan's stack in reverse,
	// its worst case, and a cycle through thousands of steps must not take
	// seconds
	sort.Slice(ids, func(i, j int) bool { return order[ids[i]] < order[ids[j]] })
}
