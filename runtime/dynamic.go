package runtime

// This file: the children of for_each and loop steps (SPEC §4b).
//
// A dynamic step takes no worker. Its attempt is driven by a goroutine
// (startDynamic) that creates child runs, waits for them and ends the
// step with one StepEnded. What it knows lives in the store, never only in
// memory: each child's id derives from the parent run, the child's step
// id (`load[3]`), the attempt and the attempt's start time, and a child is
// created only if no run of that id exists, in the same commit as its
// first transition and its place among the parent's children. After a
// crash the step keeps its attempt (core resumes it with ReattachChild)
// and the driver runs again: the children that exist are waited for
// (those that ended are read back), the others are created. So no index
// ever gets two children, and the step's output is the same as without
// the crash.

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// DefaultMaxConcurrency is how many children of one for_each step run at
// once when it sets no max_concurrency.
const DefaultMaxConcurrency = 256

// spawnBatch is how many children one driver creates before it waits for
// their commits: they share transactions.
const spawnBatch = 128

// iterationRunID derives the run id of child i of a dynamic step's
// attempt. Ids of one attempt sort by i.
func iterationRunID(parentID, step string, index, attempt, i int, started time.Time) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", parentID, dag.DynamicChildID(step, i), attempt)))
	return runIDAt(started.Add(time.Duration(i)*time.Microsecond), index, sum[:6])
}

// dynamicStep is one attempt of a for_each or loop step being driven.
type dynamicStep struct {
	e       *Engine
	ar      *activeRun
	def     *dag.Step
	index   int
	attempt int
	started time.Time

	prog     *lang.Program
	info     childInfo
	lineage  []string
	priority int
	// priorityRef is the step's priority= as resolved when the driver
	// started (core.DriveView), nil when it sets none
	priorityRef any
	inputs      map[string]any // the step's resolved inputs (dict inputs)
	// fresh: the attempt started in this process, so no child of it
	// exists in the store but those this driver made
	fresh bool
	// stub: the children are stand-ins (dynamic_standin.go), one program
	// per set of param names
	stub  bool
	stubs map[string]childSource
}

// startDynamic starts driving a running for_each or loop attempt, in a
// goroutine of its own: on StartStep, and again on ReattachChild after a
// restart. fresh says the attempt has just started here, so none of its
// children can exist yet.
func (e *Engine) startDynamic(ar *activeRun, index, attempt int, fresh bool) {
	// what the driver needs of the run's state is a view taken under the
	// run's lock (core.Drive): the attempt, its inputs, items and
	// priority resolved; the driver never looks at the machine again
	ar.mu.Lock()
	def := ar.prog.Workflow.Steps[index]
	v, running := ar.m.Drive(def.ID, attempt)
	if !running || ar.broken != nil {
		ar.mu.Unlock()
		return
	}
	if _, driven := ar.attempts[index]; driven {
		ar.mu.Unlock()
		return
	}
	if v.CancelRequested {
		ar.mu.Unlock()
		e.apply(ar, core.StepEnded{Step: def.ID, Attempt: attempt, Error: "cancelled", At: e.now()})
		return
	}
	ctx, cancel := context.WithCancel(e.base)
	if def.Timeout > 0 {
		ctx, cancel = context.WithDeadline(e.base, v.StartedAt.Add(def.Timeout))
	}
	ar.attempts[index] = &attemptState{attempt: attempt, cancel: cancel}
	ar.mu.Unlock()
	d := &dynamicStep{e: e, ar: ar, def: def, index: index, attempt: attempt, started: v.StartedAt, fresh: fresh, priorityRef: v.Priority}
	d.inputs, _ = v.Inputs.(map[string]any)
	items, inErr := v.Items, v.Err

	go func() {
		var out any
		err := inErr
		if err == nil {
			err = d.prepare(ctx)
		}
		if err == nil {
			if def.Kind == dag.KindForEach {
				out, err = d.forEach(ctx, items)
			} else {
				out, err = d.loop(ctx)
			}
		}
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancel()
		ar.mu.Lock()
		delete(ar.attempts, index)
		ar.mu.Unlock()
		if e.base.Err() != nil {
			return // the engine closes: resume drives the attempt again
		}
		ev := core.StepEnded{Step: def.ID, Attempt: attempt, Output: out, At: e.now()}
		switch {
		case timedOut:
			ev.Error = fmt.Sprintf("timed out after %s", dag.FormatDuration(def.Timeout))
		case err != nil:
			ev.Error = err.Error()
		}
		e.apply(ar, ev)
	}()
}

// prepare finds the child workflow once for every child of the attempt
// and checks the depth and cycle limits against the parent-run chain.
func (d *dynamicStep) prepare(ctx context.Context) error {
	parent := d.ar.rec
	if d.stub = d.stubbed(); d.stub {
		// the stand-ins are made as the children's inputs are known
		lineage, err := childLineage(parent.Lineage, parent.MaxDepth, d.def.Child.Name)
		if err != nil {
			return err
		}
		d.lineage = lineage
	} else {
		prog, info, _, err := d.e.childProgram(ctx, d.ar, d.def, nil)
		if err != nil {
			return err
		}
		lineage, err := childLineage(parent.Lineage, parent.MaxDepth, prog.Workflow.Name)
		if err != nil {
			return err
		}
		if err := d.e.checkHandlers(prog.Workflow); err != nil {
			return err
		}
		d.prog, d.info, d.lineage = prog, info, lineage
	}
	d.priority = parent.Priority
	if d.def.Priority != nil {
		p, err := resolvedPriority(d.priorityRef)
		if err != nil {
			return err
		}
		d.priority = p
	}
	return nil
}

// childLineage is the chain of workflows down to a new child named name,
// refused when it makes a workflow cycle or nests deeper than maxDepth.
func childLineage(lineage []string, maxDepth int, name string) ([]string, error) {
	next := append(append([]string{}, lineage...), name)
	for i, n := range lineage {
		if n == name {
			return nil, fmt.Errorf("workflow cycle: %s", strings.Join(next[i:], " -> "))
		}
	}
	if len(next) > maxDepth {
		return nil, fmt.Errorf("sub-workflow nesting depth %d exceeds the limit of %d (chain: %s)", len(next), maxDepth, strings.Join(next, " -> "))
	}
	return next, nil
}

// limitError is the error of a step that would pass the children limit.
func (e *Engine) limitError(def *dag.Step, want int) error {
	return fmt.Errorf("%s %q needs %d child runs, past the limit of %d child runs per run (max_children: raise it with --max-children or the engine option MaxChildren, or split the work)", def.Kind, def.ID, want, e.maxChildren())
}

// childOutcome is how one child ended.
type childOutcome struct {
	i   int
	rec *RunRecord
	err error // the child could not be created or waited for
}

// spawned is a child the driver created or found.
type spawned struct {
	i  int
	id string
}

// spawn creates the children of indexes idx that do not exist yet, all
// committed before it returns (they share transactions), and returns the
// id of each. inputs gives each child's inputs.
func (d *dynamicStep) spawn(ctx context.Context, idx []int, inputs func(i int) (map[string]any, error)) ([]spawned, error) {
	e, parent := d.e, d.ar
	out := make([]spawned, 0, len(idx))
	type pending struct {
		i     int
		child *activeRun
		first *decision
		cms   []*journal.Commit
	}
	var made []pending
	// one child, made or found; an error stops the batch, and the children
	// made before it are still committed and returned
	one := func(i int) error {
		id := iterationRunID(parent.rec.ID, d.def.ID, d.index, d.attempt, i, d.started)
		if !d.fresh {
			exists, err := e.runExists(ctx, id)
			if err != nil {
				return err
			}
			if exists {
				out = append(out, spawned{i: i, id: id}) // made before a crash
				return nil
			}
		}
		in, err := inputs(i)
		if err != nil {
			return fmt.Errorf("%s: inputs: %v", dag.DynamicChildID(d.def.ID, i), err)
		}
		cp, err := d.programFor(ctx, in)
		if err != nil {
			return fmt.Errorf("%s: %v", dag.DynamicChildID(d.def.ID, i), err)
		}
		params, err := mergeParams(cp.prog.Workflow, in)
		if err != nil {
			return fmt.Errorf("%s: %v", dag.DynamicChildID(d.def.ID, i), err)
		}
		secrets, err := lookupSecrets(cp.prog.Workflow, parent.lookup, true)
		if err != nil {
			return err
		}
		parent.mu.Lock()
		if parent.rec.Children >= e.maxChildren() {
			parent.mu.Unlock()
			return e.limitError(d.def, parent.rec.Children+1)
		}
		parent.rec.Children++
		rec := parent.rec
		parent.mu.Unlock()
		child := newRun(cp.prog, RunRecord{
			ID: id, Workflow: cp.prog.Workflow.Name, Version: cp.info.version, Status: core.RunPending,
			Params: params, ParentRunID: &rec.ID, ParentStepID: optString(dag.DynamicChildID(d.def.ID, i)),
			RootRunID: rec.RootRunID, Depth: rec.Depth + 1, Priority: d.priority,
			CreatedAt: d.started, Hash: cp.prog.Hash, Workspace: rec.Workspace,
			MaxDepth: rec.MaxDepth, Lineage: d.lineage,
		}, secrets, parent.lookup)
		child.inheritMasks(parent)
		e.admitter(child)
		parentID := rec.ID
		create, err := child.creation(func(tx *journal.Tx) error {
			if cp.src != nil {
				if err := tx.PutRunSource(id, cp.src); err != nil {
					return err
				}
			}
			return tx.AddChild(parentID, id)
		})
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.active[id] = child
		e.mu.Unlock()
		child.mu.Lock()
		first := e.decideAll(ctx, child, core.Start{At: e.now()})
		child.mu.Unlock()
		if first == nil {
			e.forget(child)
			return fmt.Errorf("%s: the child run could not start", dag.DynamicChildID(d.def.ID, i))
		}
		units := first.units()
		units[0] = append(create, units[0]...)
		made = append(made, pending{i: i, child: child, first: first, cms: e.c.submitAll(units, child)})
		return nil
	}
	var firstErr error
	for _, i := range idx {
		if firstErr = one(i); firstErr != nil {
			break
		}
	}
	for _, p := range made {
		if err := e.c.waitAll(p.cms); err != nil {
			p.first.abandon(e)
			e.forget(p.child)
			if firstErr == nil {
				firstErr = fmt.Errorf("cannot create child run %s: %w", p.child.rec.ID, err)
			}
			continue
		}
		e.afterCommit(p.first)
		out = append(out, spawned{i: p.i, id: p.child.rec.ID})
	}
	return out, firstErr
}

// forget drops a child that was never created.
func (e *Engine) forget(child *activeRun) {
	e.mu.Lock()
	if e.active[child.rec.ID] == child {
		delete(e.active, child.rec.ID)
	}
	e.mu.Unlock()
	child.release()
}

// await waits until run id ends and returns its record. A child that
// exists but is not active here yet (a resume that has not reached it)
// is looked for again shortly.
func (e *Engine) await(ctx context.Context, id string) (*RunRecord, error) {
	for {
		e.mu.Lock()
		c := e.active[id]
		e.mu.Unlock()
		if c != nil {
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			c.mu.Lock()
			rec := c.rec // kept in step with what was committed
			c.mu.Unlock()
			if rec.Status.Terminal() {
				return &rec, nil
			}
		}
		rec, err := e.runRecord(ctx, id)
		if err != nil {
			return nil, err
		}
		if rec.Status.Terminal() {
			return rec, nil
		}
		if c != nil {
			c.mu.Lock()
			broken := c.broken
			c.mu.Unlock()
			if broken != nil {
				return nil, fmt.Errorf("child run %s stopped: %v", id, broken)
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// forEach runs one child per item, at most max_concurrency at once, and
// returns {"results": [...], "failed": [...]}.
func (d *dynamicStep) forEach(ctx context.Context, itemsVal any) (any, error) {
	items, ok := itemsVal.([]any)
	if !ok {
		if itemsVal == nil {
			return nil, fmt.Errorf("items resolved to None; they must be a list")
		}
		return nil, fmt.Errorf("items must resolve to a list, got %s", dag.FormatValue(itemsVal))
	}
	n := len(items)
	if n > d.e.maxChildren() {
		return nil, d.e.limitError(d.def, n)
	}
	var inputsFn func(i int) (map[string]any, error)
	if fn := d.ar.prog.Bodies[dag.BodyKey(d.def.ID, "inputs")]; fn != nil && d.def.Dynamic.InputsFn {
		inputsFn = func(i int) (map[string]any, error) { return lang.ChildInputs(ctx, fn, items[i]) }
	} else {
		inputsFn = func(int) (map[string]any, error) { return d.inputs, nil }
	}
	limit := d.def.Dynamic.MaxConcurrency
	if limit <= 0 {
		limit = DefaultMaxConcurrency
	}
	failFast := d.def.Dynamic.OnFailure != dag.Continue
	// rerun --failed: the children of earlier attempts that succeeded
	// are kept (dynamic_rerun.go)
	d.ar.mu.Lock()
	keep := d.ar.keeps(d.index)
	d.ar.mu.Unlock()
	var kept map[int]*RunRecord
	if keep {
		var err error
		kept, err = d.e.succeededIterations(ctx, d.ar.rec.ID, d.def.ID, func(i int) string {
			return iterationRunID(d.ar.rec.ID, d.def.ID, d.index, d.attempt, i, d.started)
		})
		if err != nil {
			return nil, err
		}
	}

	results := make([]any, n)
	var failed []int
	errs := map[int]string{}
	ended := make(chan childOutcome, limit+spawnBatch)
	running := map[int]string{} // index -> child id
	next := 0
	stopping := false // fail_fast tripped, or the step was stopped
	var stopErr error
	// children are started in batches that share commits: once half the
	// bound is free (or all that is left fits), not one by one as each
	// child ends, which would sync one transaction per child
	refill := max(1, min(limit/2, spawnBatch))
	for (next < n && !stopping) || len(running) > 0 {
		free := limit - len(running)
		if !stopping && next < n && (free >= min(refill, n-next) || len(running) == 0) {
			var idx []int
			for next < n && len(running)+len(idx) < limit && len(idx) < spawnBatch {
				if k, ok := kept[next]; ok {
					results[next] = k.Output
				} else {
					idx = append(idx, next)
				}
				next++
			}
			kids, err := d.spawn(ctx, idx, inputsFn)
			for _, k := range kids {
				running[k.i] = k.id
				go func(k spawned) {
					// a stopped step still waits for its children to end:
					// it cancels them, and a cancel is over once the tree is
					rec, err := d.e.await(d.e.base, k.id)
					ended <- childOutcome{i: k.i, rec: rec, err: err}
				}(k)
			}
			if err != nil {
				stopping, stopErr = true, err
				d.cancelAll(running)
			}
			continue
		}
		var o childOutcome
		select {
		case o = <-ended:
		case <-ctx.Done():
			if !stopping {
				stopping = true
				d.cancelAll(running)
			}
			o = <-ended
		}
		delete(running, o.i)
		if o.err != nil {
			if ctx.Err() == nil && stopErr == nil {
				stopErr = o.err
			}
			failed = append(failed, o.i)
			continue
		}
		if o.rec.Status == core.RunSucceeded {
			results[o.i] = o.rec.Output
			continue
		}
		failed = append(failed, o.i)
		errs[o.i] = childError(o.rec)
		if failFast && !stopping {
			stopping = true
			d.cancelAll(running)
		}
	}
	sort.Ints(failed)
	out := map[string]any{"results": results, "failed": intsToData(failed)}
	switch {
	case ctx.Err() != nil:
		return out, ctx.Err()
	case stopErr != nil:
		return out, stopErr
	case len(failed) > 0:
		return out, d.failures(n, failed, errs, failFast)
	}
	return out, nil
}

// cancelAll cancels the running children (and their trees).
func (d *dynamicStep) cancelAll(running map[int]string) {
	for _, id := range running {
		if err := d.e.cancelTree(context.Background(), id); err != nil {
			d.e.log.Warn("cannot cancel a child run", "run", d.ar.rec.ID, "child", id, "error", err)
		}
	}
}

// failures is the error of a for_each step some of whose children failed.
func (d *dynamicStep) failures(n int, failed []int, errs map[int]string, failFast bool) error {
	first := -1
	for _, i := range failed {
		if _, ok := errs[i]; ok && (first < 0 || i < first) && !strings.HasPrefix(errs[i], "cancelled") {
			first = i
		}
	}
	if first < 0 {
		first = failed[0]
	}
	msg := errs[first]
	if failFast {
		return fmt.Errorf("%s failed: %s (on_failure = \"fail_fast\": the others were cancelled or never started; %d of %d did not succeed)", dag.DynamicChildID(d.def.ID, first), msg, len(failed), n)
	}
	children := "children"
	if n == 1 {
		children = "child"
	}
	return fmt.Errorf("%d of %d %s failed; the first, %s: %s", len(failed), n, children, dag.DynamicChildID(d.def.ID, first), msg)
}

// childError is what a child that did not succeed says.
func childError(rec *RunRecord) string {
	if rec.Error != nil && *rec.Error != "" {
		return fmt.Sprintf("child run %s %s: %s", rec.ID, rec.Status, *rec.Error)
	}
	return fmt.Sprintf("child run %s %s", rec.ID, rec.Status)
}

func intsToData(xs []int) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = int64(x)
	}
	return out
}

// loop runs the child again and again, one child run per iteration, until
// until(output, iteration) is true; the step's output is the last
// child's.
func (d *dynamicStep) loop(ctx context.Context) (any, error) {
	until := d.ar.prog.Bodies[dag.BodyKey(d.def.ID, "until")]
	if until == nil {
		return nil, fmt.Errorf("loop %q has no until function", d.def.ID)
	}
	max := d.def.Dynamic.MaxIterations
	inputs := func(int) (map[string]any, error) { return d.inputs, nil }
	for it := 0; it < max; it++ {
		kids, err := d.spawn(ctx, []int{it}, inputs)
		if err != nil {
			return nil, err
		}
		// a stopped step cancels its child and waits for it to end
		id := kids[0].id
		stop := context.AfterFunc(ctx, func() {
			if err := d.e.cancelTree(context.Background(), id); err != nil {
				d.e.log.Warn("cannot cancel a child run", "run", d.ar.rec.ID, "child", id, "error", err)
			}
		})
		rec, err := d.e.await(d.e.base, id)
		stop()
		if err == nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			return nil, err
		}
		if rec.Status != core.RunSucceeded {
			return nil, fmt.Errorf("%s: %s", dag.DynamicChildID(d.def.ID, it), childError(rec))
		}
		v, err := lang.CallUntil(ctx, until, rec.Output, it)
		if err != nil {
			return rec.Output, fmt.Errorf("%s: until: %v", dag.DynamicChildID(d.def.ID, it), err)
		}
		if v {
			return rec.Output, nil
		}
		if it+1 == max {
			return rec.Output, fmt.Errorf("until was still false after %d iterations (max_iterations = %d)", max, max)
		}
		if delay := d.def.Dynamic.Delay; delay > 0 {
			// a delay that a crash cut short is waited again in full
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return nil, fmt.Errorf("loop %q: max_iterations is %d", d.def.ID, max)
}
