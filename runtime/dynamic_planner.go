package runtime

// This file: planner steps (SPEC §4b). A planner's body runs at run time
// like a task body (on a worker, with ctx, sh and http), and declares
// steps with the definition builtins. When it returns, the steps are
// validated against the run as it is at that moment (ids, references,
// step cycles, children, params, depth), and the attempt ends with
// core.StepsPlanned: in the one commit that ends the planner step, its
// record takes the plan (the steps, encoded, and where each of their
// Starlark functions is found: a global of the run's source) and the new
// steps' records are written, pending. A crash before that commit runs the
// body again (the attempt was running); after it, loading the run lays the
// plans out again after the declared steps (withPlans). A rerun that
// resets the planner re-plans: its earlier steps, the last of the run,
// are replaced by the new ones.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// dynamicState is what a run knows of its planner steps, and of the
// for_each steps a rerun --failed reopened.
type dynamicState struct {
	// keep marks the for_each steps whose attempts reuse the succeeded
	// children of earlier attempts (rerun --failed), by step index; it is
	// stored with the step's record
	keep map[int]bool
	// plans holds the stored plan of each planner step that made one,
	// by step index
	plans map[int]json.RawMessage
	// proposed is the plan an attempt made, waiting for its StepsPlanned
	proposed map[int]*proposal
	// overwrite marks the step records a re-plan rewrites in place: they
	// held other steps, so the forward-only check does not apply
	overwrite map[int]bool
	// ops are the writes a re-plan adds to its commit (records and logs
	// of the steps it dropped)
	ops []journal.Op
}

// proposal is a plan an attempt made.
type proposal struct {
	attempt int
	steps   []*dag.Step
	bodies  map[string]starlark.Callable
	plan    json.RawMessage
	replace []string
}

func (ar *activeRun) dynamic() *dynamicState {
	if ar.dyn == nil {
		ar.dyn = &dynamicState{keep: map[int]bool{}, plans: map[int]json.RawMessage{}, proposed: map[int]*proposal{}, overwrite: map[int]bool{}}
	}
	return ar.dyn
}

// runPlanner runs a planner's body, validates the steps it declared and
// proposes them for the attempt's end (plannedEvent). Its output is what
// the body returned, with "steps": the ids it planned.
func (e *Engine) runPlanner(ctx context.Context, ar *activeRun, def *dag.Step, attempt int, sc *builtins.StepContext) (any, error) {
	body, ok := ar.prog.Bodies[def.ID]
	if !ok {
		return nil, fmt.Errorf("planner %q has no body", def.ID)
	}
	b := builtins.NewBuilder(ar.prog.Workflow.File)
	b.Planner = def.ID
	sc.Builder = b
	out, err := builtins.CallBody(sc, body, e.opts.BodyMaxSteps)
	if err != nil {
		return nil, err
	}
	if len(b.Errors) > 0 {
		b.Errors.Sort()
		return nil, b.Errors
	}
	p, err := e.checkPlan(ctx, ar, def, b)
	if err != nil {
		return nil, err
	}
	p.attempt = attempt
	ids := make([]any, 0, len(b.Workflow.Steps))
	for _, s := range b.Workflow.Steps {
		ids = append(ids, s.ID)
	}
	output := map[string]any{}
	for k, v := range out {
		output[k] = v
	}
	output["steps"] = ids
	ar.mu.Lock()
	ar.dynamic().proposed[ar.prog.Workflow.StepIndex(def.ID)] = p
	ar.mu.Unlock()
	return output, nil
}

// plannedEvent is how a planner's attempt ends: StepsPlanned with the
// plan it proposed, when it succeeded; ev otherwise.
func (ar *activeRun) plannedEvent(index int, ev core.StepEnded) core.Event {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if ar.dyn == nil {
		return ev
	}
	p := ar.dyn.proposed[index]
	if p == nil || p.attempt != ev.Attempt {
		return ev
	}
	if ev.Error != "" {
		delete(ar.dyn.proposed, index)
		return ev
	}
	return core.StepsPlanned{Step: ev.Step, Attempt: ev.Attempt, Steps: p.steps, Replace: p.replace, Output: ev.Output, At: ev.At}
}

// adoptPlan makes the run use the workflow a StepsPlanned just gave its
// machine: the program grows by the plan's steps and bodies, and the
// planner's record will carry the plan. Called with the run's lock held,
// after the machine applied the event and changed its workflow.
func (ar *activeRun) adoptPlan(sp core.StepsPlanned) {
	index := ar.prog.Workflow.StepIndex(sp.Step)
	p := ar.dynamic().proposed[index]
	if p == nil || p.attempt != sp.Attempt {
		// no plan of this attempt (cannot happen): the steps run without
		// their bodies rather than out of step with the machine
		p = &proposal{attempt: sp.Attempt, replace: sp.Replace}
	}
	delete(ar.dyn.proposed, index)
	old := len(ar.prog.Workflow.Steps)
	from := old - len(p.replace)
	next := *ar.prog
	next.Workflow = ar.m.Workflow()
	next.Bodies = make(map[string]starlark.Callable, len(ar.prog.Bodies)+len(p.bodies))
	for k, v := range ar.prog.Bodies {
		next.Bodies[k] = v
	}
	for k, v := range p.bodies {
		next.Bodies[k] = v
	}
	ar.prog = &next
	n := len(ar.prog.Workflow.Steps)
	id := ar.rec.ID
	for i := from; i < max(old, n); i++ {
		delete(ar.inputs, i)
		delete(ar.inputErrs, i)
		delete(ar.logs, i)
		delete(ar.children, i)
		delete(ar.dyn.plans, i)
		delete(ar.dyn.keep, i)
		if i < n {
			ar.epochs[i] = ar.rec.Epoch
			ar.dyn.overwrite[i] = true
		} else {
			delete(ar.epochs, i)
		}
	}
	// records past the run's new last step go: a re-plan's that dropped
	// more than it added, or those of a plan whose commit was cut short by
	// a crash (withPlans ignores them)
	ar.dyn.ops = append(ar.dyn.ops, journal.DropStepsFrom(id, n))
	if len(p.replace) > 0 {
		// the logs of the dropped steps go with them
		ar.dyn.ops = append(ar.dyn.ops, journal.DropLogsFrom(id, from))
	}
	ar.dyn.plans[index] = p.plan
}

// planOps hands over the writes of an adopted re-plan.
func (ar *activeRun) planOps() []journal.Op {
	if ar.dyn == nil || len(ar.dyn.ops) == 0 {
		return nil
	}
	ops := ar.dyn.ops
	ar.dyn.ops = nil
	return ops
}

// planOf is the stored plan of step i, if it is a planner that made one.
func (ar *activeRun) planOf(i int) json.RawMessage {
	if ar.dyn == nil {
		return nil
	}
	return ar.dyn.plans[i]
}

// takeOverwrite reports whether step i's record is rewritten in place
// (a re-plan), once.
func (ar *activeRun) takeOverwrite(i int) bool {
	if ar.dyn == nil || !ar.dyn.overwrite[i] {
		return false
	}
	delete(ar.dyn.overwrite, i)
	return true
}

// plannedBy lists the steps that planner step index added, and those
// added by the planners among them, in index order.
func plannedBy(w *dag.Workflow, plans map[int]json.RawMessage, index int) map[int]bool {
	out := map[int]bool{}
	queue := []int{index}
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		p, err := dag.DecodePlan(plans[i])
		if plans[i] == nil || err != nil {
			continue
		}
		for _, s := range p.Steps {
			if j := w.StepIndex(s.ID); j >= 0 && !out[j] {
				out[j] = true
				queue = append(queue, j)
			}
		}
	}
	return out
}

// checkPlan validates what a planner's body declared against the run,
// registers the workspace workflows its children name, and returns the
// run's next program.
func (e *Engine) checkPlan(ctx context.Context, ar *activeRun, def *dag.Step, b *builtins.Builder) (*proposal, error) {
	ar.mu.Lock()
	cur := ar.prog
	index := cur.Workflow.StepIndex(def.ID)
	var earlier map[int]bool
	if ar.dyn != nil && ar.dyn.plans[index] != nil {
		earlier = plannedBy(cur.Workflow, ar.dyn.plans, index)
	}
	lineage, maxDepth := ar.rec.Lineage, ar.rec.MaxDepth
	workspace := ar.rec.Workspace
	ar.mu.Unlock()

	// a re-plan replaces the steps planned before: they must be the last
	keep := len(cur.Workflow.Steps) - len(earlier)
	for i := range earlier {
		if i < keep {
			return nil, fmt.Errorf("planner %q cannot re-plan: the steps it planned before are followed by steps planned by another planner (re-planning is built only for the last planner to have planned); rerun from a step after the planner instead", def.ID)
		}
	}
	w := *cur.Workflow
	w.Steps = append(append([]*dag.Step{}, cur.Workflow.Steps[:keep]...), b.Workflow.Steps...)
	planned := b.Workflow.Steps
	for _, s := range planned {
		// planned steps join the run after their planner: a rerun from it
		// resets them
		if !hasDep(s, def.ID) {
			s.After = append(s.After, dag.Dep{Step: def.ID, Cond: dag.Succeeded, Implicit: true, Via: "planner", Pos: s.Pos})
		}
	}
	var errs dag.ErrorList
	if len(w.Steps) > maxWorkflowSteps {
		errs.Add(def.Pos, "planner %q: the run would have %d steps, more than the limit of %d", def.ID, len(w.Steps), maxWorkflowSteps)
		return nil, errs
	}
	fresh := map[*dag.Step]bool{}
	for _, s := range planned {
		fresh[s] = true
	}
	for _, err := range dag.Validate(&w) {
		errs = append(errs, err)
	}
	// the planned steps' Starlark functions must be found again after a
	// restart: each must be a global of one of the run's files
	bodies := map[string]dag.GlobalRef{}
	keys := make([]string, 0, len(b.Bodies))
	for k := range b.Bodies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		step, part, _ := strings.Cut(k, "#")
		s := b.Workflow.Step(step)
		if s == nil {
			continue
		}
		ref, ok := globalOf(cur, b.Bodies[k])
		if !ok {
			what := "body"
			if part != "" {
				what = part + " function"
			}
			errs.Add(s.Pos, "%s %q: its %s must be a function defined at the top level of a file, found again by name after a restart; a lambda or a def inside the planner is not", s.Kind, s.ID, what)
			continue
		}
		bodies[k] = ref
	}
	// children: known, with the params they are given, not nesting too
	// deep or back into the chain of runs above
	ws, err := e.rootWorkspace(workspace)
	if err != nil {
		return nil, err
	}
	reported := map[dag.Pos]bool{}
	for _, s := range planned {
		if !s.Kind.RunsChildren() || s.Child == nil || !s.Child.Static() || s.Child.Name == "" {
			continue
		}
		if _, err := childLineage(lineage, maxDepth, s.Child.Name); err != nil {
			errs.Add(s.Pos, "%s %q: %v", s.Kind, s.ID, err)
			reported[s.Pos] = true
		}
	}
	part := &lang.Program{
		Workflow:  &dag.Workflow{Name: w.Name, File: w.File, Params: w.Params, Secrets: w.Secrets, Steps: planned, MaxDepth: max(1, maxDepth-len(lineage)+1)},
		Bodies:    b.Bodies,
		Workspace: ws,
	}
	for _, err := range ws.Check(ctx, part) {
		if reported[err.Pos] && strings.HasPrefix(err.Msg, "sub-workflow nesting depth") {
			continue
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	if reach := ws.Reachable(ctx, part); len(reach) > 0 {
		if _, err := e.registerAll(ctx, reach); err != nil {
			return nil, fmt.Errorf("the workflows the planned steps run cannot be registered: %w", err)
		}
	}
	data, err := dag.EncodePlan(&dag.Plan{Steps: planned, Bodies: bodies})
	if err != nil {
		return nil, fmt.Errorf("the plan cannot be stored: %v", err)
	}
	// the plan is stored, and secret values never are
	ar.mu.Lock()
	masks := ar.masks
	ar.mu.Unlock()
	for _, m := range masks {
		quoted, _ := json.Marshal(m)
		if m != "" && (bytes.Contains(data, []byte(m)) || bytes.Contains(data, quoted[1:len(quoted)-1])) {
			return nil, fmt.Errorf("planner %q: a planned step holds the value of a secret, and plans are stored; pass secret(\"NAME\") in its inputs or env instead", def.ID)
		}
	}
	replace := make([]string, 0, len(earlier))
	for i := range earlier {
		replace = append(replace, cur.Workflow.Steps[i].ID)
	}
	sort.Strings(replace)
	return &proposal{steps: planned, bodies: b.Bodies, plan: data, replace: replace}, nil
}

// maxWorkflowSteps is how many steps a run may have, planned ones
// included (SPEC §8).
const maxWorkflowSteps = 100_000

func hasDep(s *dag.Step, id string) bool {
	for _, d := range s.Deps() {
		if d.Step == id {
			return true
		}
	}
	return false
}

// globalOf finds the global of prog's files that holds fn.
func globalOf(prog *lang.Program, fn starlark.Callable) (dag.GlobalRef, bool) {
	f, ok := fn.(*starlark.Function)
	if !ok {
		return dag.GlobalRef{}, false
	}
	file := f.Position().Filename()
	mod := prog.Modules[file]
	if mod == nil {
		return dag.GlobalRef{}, false
	}
	if v, ok := mod[f.Name()]; ok && v == fn {
		return dag.GlobalRef{File: file, Name: f.Name()}, true
	}
	names := make([]string, 0, len(mod))
	for n, v := range mod {
		if v == fn {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return dag.GlobalRef{}, false
	}
	sort.Strings(names)
	return dag.GlobalRef{File: file, Name: names[0]}, true
}

// withPlans lays a stored run's plans out after its declared steps: the
// program the run runs, and the plans by planner index. A run without
// plans keeps prog. Step records past the planned ones are ignored: a
// crash cut the commit of a plan after its steps' records and before its
// planner's, and the planner, still running, plans again.
func withPlans(prog *lang.Program, rec *RunRecord) (*lang.Program, map[int]json.RawMessage, error) {
	declared := len(prog.Workflow.Steps)
	if len(rec.Steps) <= declared {
		return prog, nil, nil
	}
	plans := map[int]json.RawMessage{}
	steps := map[string]*dag.Step{}
	bodies := map[string]starlark.Callable{}
	for i, s := range rec.Steps {
		if len(s.Plan) == 0 {
			continue
		}
		p, err := dag.DecodePlan(s.Plan)
		if err != nil {
			return nil, nil, fmt.Errorf("run %s: the plan of step %s: %v", rec.ID, s.ID, err)
		}
		plans[i] = s.Plan
		for _, ps := range p.Steps {
			steps[ps.ID] = ps
		}
		for k, ref := range p.Bodies {
			fn, ok := prog.Modules[ref.File][ref.Name].(starlark.Callable)
			if !ok {
				return nil, nil, fmt.Errorf("run %s: step %s planned a step whose function %s of %s is not in the run's source", rec.ID, s.ID, ref.Name, ref.File)
			}
			bodies[k] = fn
		}
	}
	w := *prog.Workflow
	w.Steps = append([]*dag.Step{}, prog.Workflow.Steps...)
	for _, s := range rec.Steps[declared:] {
		def := steps[s.ID]
		if def == nil {
			break
		}
		w.Steps = append(w.Steps, def)
	}
	w.Freeze()
	next := *prog
	next.Workflow = &w
	next.Bodies = make(map[string]starlark.Callable, len(prog.Bodies)+len(bodies))
	for k, v := range prog.Bodies {
		next.Bodies[k] = v
	}
	for k, v := range bodies {
		next.Bodies[k] = v
	}
	return &next, plans, nil
}
