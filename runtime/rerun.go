package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// RerunOptions tunes Rerun.
type RerunOptions struct {
	// DryRun only plans: nothing changes.
	DryRun bool
	// Latest resolves the run's own workflow anew (the workspace file it
	// came from when it still exists, else the latest registered version)
	// and the children of reset sub_workflow steps, instead of running
	// the stored snapshot and the versions they ran.
	Latest bool
	// From lists more steps to reset, each with everything downstream of
	// it; the step argument of Rerun joins them.
	From []string
	// Failed resets every step that ended failed, cancelled or skipped,
	// with everything downstream of them; a blocking sub_workflow step
	// whose own child failed or was cancelled waits again for that child,
	// which is rerun with Failed in place, down the tree.
	Failed bool
}

// RerunPlan lists, for the runs of the tree from the root down, the steps
// of each run that run again.
type RerunPlan struct {
	Root string     `json:"root_run_id"`
	Runs []RerunRun `json:"runs"`
}

// RerunRun is what a rerun does to one run.
type RerunRun struct {
	RunID    string   `json:"run_id"`
	Workflow string   `json:"workflow"`
	Steps    []string `json:"steps"`
	// Reopen lists the sub_workflow steps that wait again for their child,
	// which is rerun in place.
	Reopen []string `json:"reopen,omitempty"`
	// Version is the version the run ran; NewVersion, with Latest, the
	// one it runs now when that changed. Snapshot says the stored
	// snapshot of Version runs (without Latest).
	Version    int  `json:"version"`
	NewVersion int  `json:"new_version,omitempty"`
	Snapshot   bool `json:"snapshot"`
	// Reattach maps a reset sub_workflow step with an idempotency key to
	// the run the key binds it to, which it waits for again instead of
	// spawning a new child.
	Reattach map[string]string `json:"reattach,omitempty"`
	// KeepIterations lists the for_each steps (--failed) whose children
	// that succeeded are kept: only the others run again.
	KeepIterations []string `json:"keep_iterations,omitempty"`
	// KeptIterations and NewIterations (a dry run's plan) map each step
	// of KeepIterations to the indexes whose succeeded children are kept
	// and to those that get a new child.
	KeptIterations map[string][]int `json:"kept_iterations,omitempty"`
	NewIterations  map[string][]int `json:"new_iterations,omitempty"`
}

// rerunTarget is one run of a rerun: its record, the program it runs
// from now on, what it resets and reopens, and the step waiting for it.
type rerunTarget struct {
	rec     *RunRecord
	prog    *lang.Program // nil: its stored program
	migrate bool          // Latest gave it another definition
	plan    RerunRun
	parent  int // index of the target waiting for it, -1: none
	step    string
	ar      *activeRun
}

// Rerun resets steps of an ended run and everything downstream of them,
// keeping the outputs upstream, and runs the run to its end again (SPEC
// §7 Control). When the run is a blocking child, its parent's
// sub_workflow step (and what follows it) is reopened too, up to the
// root: each parent continues with the child's new outcome. It refuses
// while the tree is active. Wait for the plan's Root to see the outcome.
func (e *Engine) Rerun(ctx context.Context, idOrPrefix, step string, opts RerunOptions) (*RerunPlan, error) {
	rec, err := e.stored(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	root, err := e.runRecord(ctx, rec.RootRunID)
	if err != nil {
		return nil, err
	}
	if !root.Status.Terminal() || !rec.Status.Terminal() {
		return nil, inputErrorf("run %s cannot be rerun while its tree is active (root run %s is %s); wait for it to end or cancel it", rec.ID, root.ID, root.Status)
	}
	from := opts.From
	if step != "" {
		from = append([]string{step}, from...)
	}
	switch {
	case len(from) == 0 && !opts.Failed:
		return nil, inputErrorf("say what to rerun: --from STEP (one or more) or --failed")
	case len(from) > 0 && opts.Failed:
		return nil, inputErrorf("--from and --failed cannot be combined: --failed finds the steps to rerun itself")
	}

	// the run itself, and with --failed the children it reruns in place
	var targets []*rerunTarget
	if err := e.planRerun(ctx, &targets, rec, from, opts, -1, ""); err != nil {
		return nil, err
	}
	// the chain of blocking parents up to the root, each reopening the
	// step that waits for the run below it
	var up []*rerunTarget
	cur := rec
	for cur.ParentRunID != nil && !cur.Detached {
		parent, err := e.stored(ctx, *cur.ParentRunID)
		if err != nil {
			return nil, err
		}
		pstep := deref(cur.ParentStepID)
		if current := parentStepChild(parent, pstep); current != cur.ID {
			// a later rerun gave the parent's step a newer child: this one
			// no longer decides anything
			return nil, inputErrorf("run %s is no longer the child of step %s of run %s: a later rerun gave that step the child run %s; rerun that one instead", cur.ID, pstep, parent.ID, current)
		}
		prog, err := e.storedProgram(ctx, parent)
		if err != nil {
			return nil, err
		}
		up = append(up, &rerunTarget{rec: parent, parent: -1, plan: RerunRun{
			RunID: parent.ID, Workflow: parent.Workflow, Version: parent.Version, Snapshot: true,
			Steps: prog.Workflow.Downstream(pstep)[1:], Reopen: []string{pstep},
		}})
		cur = parent
	}
	// order: the root first, down to the run, then its children, so that
	// every parent waits before its child can end
	all := make([]*rerunTarget, 0, len(up)+len(targets))
	for i := len(up) - 1; i >= 0; i-- {
		all = append(all, up[i])
	}
	offset := len(up)
	if offset > 0 {
		targets[0].parent, targets[0].step = offset-1, deref(rec.ParentStepID)
	}
	for i, t := range targets {
		if i > 0 {
			t.parent += offset
		}
		all = append(all, t)
	}
	for i := 1; i < offset; i++ {
		all[i].parent, all[i].step = i-1, deref(all[i].rec.ParentStepID)
	}
	plan := &RerunPlan{Root: all[0].rec.ID}
	for _, t := range all {
		plan.Runs = append(plan.Runs, t.plan)
	}
	if opts.DryRun {
		return plan, nil
	}
	for _, t := range all {
		if err := e.rerunOne(ctx, t, all, rec, step, opts); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// planRerun plans the rerun of one run in place and, with Failed, of the
// failed children it reopens.
func (e *Engine) planRerun(ctx context.Context, targets *[]*rerunTarget, rec *RunRecord, from []string, opts RerunOptions, parent int, pstep string) error {
	old, err := e.storedProgram(ctx, rec)
	if err != nil {
		return err
	}
	t := &rerunTarget{rec: rec, parent: parent, step: pstep, plan: RerunRun{RunID: rec.ID, Workflow: rec.Workflow, Version: rec.Version, Snapshot: !opts.Latest}}
	w := old.Workflow
	if opts.Latest {
		prog, version, err := e.latestOwnProgram(ctx, rec, old)
		if err != nil {
			return err
		}
		if prog != nil && prog.Hash != old.Hash {
			t.prog, t.migrate, t.plan.NewVersion = prog, true, version
			w = prog.Workflow
		}
	}
	ids := make([]string, 0, len(w.Steps))
	for _, s := range w.Steps {
		ids = append(ids, s.ID)
	}
	state := map[string]StepRecord{}
	for _, s := range rec.Steps {
		state[s.ID] = s
	}
	var children []*RunRecord
	if opts.Failed {
		from = nil
		for _, s := range w.Steps {
			st, ok := state[s.ID]
			if !ok || (st.Status != core.StepFailed && st.Status != core.StepCancelled && st.Status != core.StepSkipped) {
				continue
			}
			if child := e.ownFailedChild(ctx, rec, s, st); child != nil {
				t.plan.Reopen = append(t.plan.Reopen, s.ID)
				children = append(children, child)
				continue
			}
			from = append(from, s.ID)
		}
		if len(from) == 0 && len(t.plan.Reopen) == 0 {
			return inputErrorf("run %s (%s) has no failed, cancelled or skipped step to rerun", rec.ID, rec.Workflow)
		}
	}
	for _, f := range from {
		if w.Step(f) == nil {
			if t.migrate {
				return inputErrorf("rerun --latest: version %d of %s has no step %q to rerun from%s", t.plan.NewVersion, rec.Workflow, f, dag.DidYouMean(f, ids))
			}
			return inputErrorf("run %s (%s) has no step %q%s", rec.ID, rec.Workflow, f, dag.DidYouMean(f, ids))
		}
	}
	if opts.Failed {
		t.plan.KeepIterations = keepIterations(w, state, from) // dynamic_rerun.go
		if opts.DryRun {
			if err := e.planIterations(ctx, rec, &t.plan); err != nil {
				return err
			}
		}
	}
	reset := w.DownstreamOf(append(append([]string{}, from...), t.plan.Reopen...))
	reopened := map[string]bool{}
	for _, r := range t.plan.Reopen {
		reopened[r] = true
	}
	for _, s := range reset {
		if !reopened[s] {
			t.plan.Steps = append(t.plan.Steps, s)
		}
	}
	if t.migrate {
		// every step the rerun keeps must be there in the new version,
		// with the same kind
		inReset := map[string]bool{}
		for _, s := range reset {
			inReset[s] = true
		}
		var missing []string
		for _, s := range rec.Steps {
			if inReset[s.ID] {
				continue
			}
			if ns := w.Step(s.ID); ns == nil || string(ns.Kind) != s.Kind {
				missing = append(missing, s.ID)
			}
		}
		if len(missing) > 0 {
			return inputErrorf("rerun --latest: version %d of %s does not have the kept step(s) %s with the same id and kind; rerun from an earlier step, or without --latest", t.plan.NewVersion, rec.Workflow, strings.Join(missing, ", "))
		}
	}
	// a reset sub_workflow step with an idempotency key waits again for
	// the run its key binds it to
	for _, id := range t.plan.Steps {
		if bound := e.boundChild(ctx, rec, w.Step(id)); bound != "" {
			if t.plan.Reattach == nil {
				t.plan.Reattach = map[string]string{}
			}
			t.plan.Reattach[id] = bound
		}
	}
	*targets = append(*targets, t)
	self := len(*targets) - 1
	for i, child := range children {
		if err := e.planRerun(ctx, targets, child, nil, opts, self, t.plan.Reopen[i]); err != nil {
			return err
		}
	}
	return nil
}

// ownFailedChild is the child run of a failed blocking sub_workflow step
// that --failed reruns in place: one this run spawned (not reused through
// an idempotency key) that failed or was cancelled.
func (e *Engine) ownFailedChild(ctx context.Context, rec *RunRecord, s *dag.Step, st StepRecord) *RunRecord {
	if s.Kind != dag.KindSubWorkflow || s.Child == nil || s.Child.Detach || st.Status != core.StepFailed || st.ChildRunID == nil {
		return nil
	}
	child, err := e.stored(ctx, *st.ChildRunID)
	if err != nil || deref(child.ParentRunID) != rec.ID {
		return nil
	}
	if child.Status != core.RunFailed && child.Status != core.RunCancelled {
		return nil
	}
	return child
}

// boundChild is the run a sub_workflow step's idempotency key binds it
// to, when the key resolves now from the run's kept state.
func (e *Engine) boundChild(ctx context.Context, rec *RunRecord, s *dag.Step) string {
	if s == nil || s.Child == nil || s.Child.IdempotencyKey == nil {
		return ""
	}
	key, ok := s.Child.IdempotencyKey.(string)
	if !ok {
		// a reference: resolvable only from what the run keeps
		out := map[string]any{}
		for _, st := range rec.Steps {
			if st.Status == core.StepSucceeded {
				out[st.ID] = st.Output
			}
		}
		v := dag.ReplaceRefs(s.Child.IdempotencyKey, func(r *dag.Ref) any {
			switch r.Kind {
			case dag.RefParam:
				return rec.Params[r.Name]
			case dag.RefOutput:
				if o, ok := out[r.Step]; ok {
					return walkRefPath(o, r.Path)
				}
			}
			return nil
		})
		key, ok = v.(string)
		if !ok || key == "" || key == "***" {
			return ""
		}
	}
	name := s.Child.Name
	if s.Child.Script != nil {
		return ""
	}
	bound, _, err := e.boundRun(ctx, name, key)
	if err != nil {
		return ""
	}
	return bound
}

// walkRefPath follows a reference's keys into a stored value.
func walkRefPath(v any, path []any) any {
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
			if !ok || int(k) < 0 || int(k) >= len(l) {
				return nil
			}
			v = l[k]
		default:
			return nil
		}
	}
	return v
}

// rerunOne carries out the rerun of one run of the plan.
func (e *Engine) rerunOne(ctx context.Context, t *rerunTarget, all []*rerunTarget, rec *RunRecord, step string, opts RerunOptions) error {
	cur := t.rec
	if t.migrate {
		var err error
		if cur, err = e.migrateRun(ctx, t.rec, t.prog, t.plan.NewVersion); err != nil {
			return err
		}
	}
	ar, err := e.loadRun(ctx, cur)
	if err != nil {
		return err
	}
	t.ar = ar
	ar.latest = opts.Latest
	ar.rec.Epoch++
	for _, s := range append(append([]string{}, t.plan.Steps...), t.plan.Reopen...) {
		if j := ar.prog.Workflow.StepIndex(s); j >= 0 {
			ar.epochs[j] = ar.rec.Epoch
		}
	}
	ar.setKeeps(t.plan.Steps, t.plan.KeepIterations) // dynamic_rerun.go
	for s, bound := range t.plan.Reattach {
		if ar.rebind == nil {
			ar.rebind = map[int]string{}
		}
		ar.rebind[ar.prog.Workflow.StepIndex(s)] = bound
	}
	e.mu.Lock()
	e.active[ar.rec.ID] = ar
	e.mu.Unlock()
	id := ar.rec.ID
	writes := []func(tx *journal.Tx) error{func(tx *journal.Tx) error { return tx.MarkUnfinished(id) }}
	if t.parent >= 0 {
		// the parent's reopened step waits for this run again
		p := all[t.parent].ar
		index := p.prog.Workflow.StepIndex(t.step)
		p.mu.Lock()
		at, _ := p.m.Current(t.step) // reopened: running as a new attempt
		p.mu.Unlock()
		attempt := at.Attempt
		ar.waiter = &waiterRef{run: p, step: t.step, index: index, attempt: attempt}
		waiter := p.rec.ID
		writes = append(writes, func(tx *journal.Tx) error { return tx.AddWaiter(id, waiter, index, attempt) })
	}
	extra := func(tx *journal.Tx) error {
		for _, w := range writes {
			if err := w(tx); err != nil {
				return err
			}
		}
		return nil
	}
	from := append([]string{}, opts.From...)
	if step != "" {
		from = append([]string{step}, from...)
	}
	var detail string
	switch {
	case isBelow(all, t, rec.ID):
		detail = fmt.Sprintf("rerun of its failed steps, for step %s of run %s", t.step, all[t.parent].rec.ID)
	case t.rec.ID != rec.ID:
		detail = fmt.Sprintf("rerun of child run %s", rec.ID)
	case opts.Failed:
		detail = "rerun of its failed steps"
	case len(from) == 1:
		detail = "rerun from step " + from[0]
	default:
		detail = "rerun from steps " + strings.Join(from, ", ")
	}
	if t.migrate {
		detail += fmt.Sprintf(" with version %d (was %d)", t.plan.NewVersion, t.plan.Version)
	}
	e.applyWith(ar, core.Rerun{Reset: t.plan.Steps, Reopen: t.plan.Reopen, Detail: detail, At: e.now()}, []journal.Op{journal.Func(extra)}, nil)
	e.armRunTimeout(ar)
	return nil
}

// isBelow reports whether t is a descendant of the run rerun (not one
// of its parents).
func isBelow(all []*rerunTarget, t *rerunTarget, id string) bool {
	for p := t.parent; p >= 0; p = all[p].parent {
		if all[p].rec.ID == id {
			return true
		}
	}
	return false
}

// latestOwnProgram resolves a run's own workflow anew for rerun
// --latest: the workspace file it came from when it still exists
// (registered now, all of its tree or nothing), else the latest
// registered version of its name. A script= child keeps its snapshot:
// nil.
func (e *Engine) latestOwnProgram(ctx context.Context, rec *RunRecord, old *lang.Program) (*lang.Program, int, error) {
	if e.hasSnapshot(ctx, rec.ID) {
		return nil, 0, nil
	}
	if rec.Workspace != "" && old.Root != "" {
		if _, err := os.Stat(filepath.Join(rec.Workspace, filepath.FromSlash(old.Root))); err == nil {
			ws, err := lang.OpenWorkspace(rec.Workspace, e.LangOptions())
			if err != nil {
				return nil, 0, err
			}
			prog, err := ws.Load(ctx, old.Root)
			if err != nil {
				return nil, 0, inputErrorf("rerun --latest: %s does not evaluate: %v", filepath.Join(rec.Workspace, old.Root), err)
			}
			if errs := ws.Check(ctx, prog); len(errs) > 0 {
				return nil, 0, errs
			}
			if prog.Workflow.Name != rec.Workflow {
				return nil, 0, inputErrorf("rerun --latest: %s now declares workflow %q, not %q", filepath.Join(rec.Workspace, old.Root), prog.Workflow.Name, rec.Workflow)
			}
			regs, err := e.RegisterTree(ctx, prog)
			if err != nil {
				return nil, 0, err
			}
			return prog, regs[0].Version, nil
		}
	}
	def, err := e.definition(ctx, rec.Workflow, 0)
	if err != nil {
		return nil, 0, fmt.Errorf("rerun --latest: cannot find the latest definition of %s: %w", rec.Workflow, err)
	}
	prog, err := e.program(ctx, def)
	if err != nil {
		return nil, 0, err
	}
	return prog, def.Version, nil
}

// hasSnapshot reports whether a run has its own stored source (a
// script= child).
func (e *Engine) hasSnapshot(ctx context.Context, id string) bool {
	found := false
	e.j.View(ctx, func(tx *journal.Tx) error {
		_, err := tx.RunSource(id)
		found = err == nil
		return nil
	})
	return found
}

// migrateRun moves an ended run onto another definition of its workflow
// (rerun --latest): in one transaction its record takes the new version
// and content hash, and its steps and logs are laid out in the new
// declaration order, a step new in this version pending. The run is
// ended and its tree inactive, so nothing else writes it meanwhile; a
// crash after this commit leaves an ended run of the new version, whose
// kept steps keep their states.
func (e *Engine) migrateRun(ctx context.Context, rec *RunRecord, prog *lang.Program, version int) (*RunRecord, error) {
	w := prog.Workflow
	old := map[string]int{}
	for i, s := range rec.Steps {
		old[s.ID] = i
	}
	next := *rec
	next.Version, next.Hash, next.Epoch = version, prog.Hash, rec.Epoch+1
	next.Steps = make([]StepRecord, len(w.Steps))
	for i, s := range w.Steps {
		if j, ok := old[s.ID]; ok {
			next.Steps[i] = rec.Steps[j]
		} else {
			next.Steps[i] = StepRecord{ID: s.ID, Kind: string(s.Kind), Status: core.StepPending}
		}
		next.Steps[i].Kind = string(s.Kind)
		// a higher epoch: a key that held another step's later state
		// takes this one
		next.Steps[i].Epoch = next.Epoch
	}
	// logs follow their steps to the new indexes
	err := e.c.write(func(tx *journal.Tx) error { return tx.Relayout(rec, &next, w.StepIndex) })
	if err != nil {
		return nil, fmt.Errorf("rerun --latest: cannot move run %s to version %d: %w", rec.ID, version, err)
	}
	return &next, nil
}

// storedProgram is the program a run ran: its definition or snapshot.
func (e *Engine) storedProgram(ctx context.Context, rec *RunRecord) (*lang.Program, error) {
	def, err := e.runSource(ctx, rec)
	if err != nil {
		return nil, err
	}
	prog, err := e.program(ctx, def)
	if err != nil {
		return nil, err
	}
	prog, _, err = withPlans(prog, rec) // a planner's steps (dynamic_planner.go)
	return prog, err
}

// parentStepChild is the child run a step of rec points at now.
func parentStepChild(rec *RunRecord, step string) string {
	for _, s := range rec.Steps {
		if s.ID == step {
			return deref(s.ChildRunID)
		}
	}
	return ""
}
