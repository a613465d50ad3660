package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

// ErrAlreadyEnded: the run to cancel had already ended; nothing changed.
var ErrAlreadyEnded = errors.New("the run already ended")

// Cancel cancels a run and every non-detached run below it. The cancel
// of each run is committed before it is carried out: running bodies are
// stopped, shell process groups get SIGTERM and then SIGKILL, pending
// steps end cancelled and nothing starts afterwards. A run that is not
// running in this engine (its process died) is ended cancelled at once.
func (e *Engine) Cancel(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	rec, err := e.Get(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	id := rec.ID
	if rec.Status.Terminal() {
		return rec, ErrAlreadyEnded
	}
	if err := e.cancelTree(ctx, id); err != nil {
		return rec, err
	}
	return rec, nil
}

// cancelTree cancels a run, then its non-detached children. The run's
// own cancel commits first: a spawn decided before it is in the store
// (and active here) when the children are listed, and none is decided
// after it.
func (e *Engine) cancelTree(ctx context.Context, id string) error {
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()
	if ar != nil {
		e.apply(ar, core.Cancel{At: e.now()})
	} else if err := e.cancelStored(ctx, id); err != nil {
		return err
	}
	return e.cancelChildren(ctx, id)
}

// cancelChildren cancels the unfinished non-detached children of a run
// (and their trees).
func (e *Engine) cancelChildren(ctx context.Context, id string) error {
	kids, err := e.childIDs(ctx, id)
	if err != nil {
		return err
	}
	// Siblings are cancelled concurrently, so that their cancels share
	// transactions (and syncs) instead of each waiting for its own; each
	// still commits its own cancel before listing its children.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, cancelFanOut)
	)
	for _, kid := range kids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := e.cancelChild(ctx, kid); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cancelFanOut bounds the children of one run that are cancelled at once.
const cancelFanOut = 64

// cancelChild cancels a child and its subtree, unless it is detached
// (detached subtrees are outside the cancel) or already ended.
func (e *Engine) cancelChild(ctx context.Context, kid string) error {
	rec, err := e.runRecord(ctx, kid)
	if err != nil {
		return err
	}
	if rec.Detached || rec.Status.Terminal() {
		return nil
	}
	return e.cancelTree(ctx, kid)
}

// cancelStored cancels an unfinished run that no process is running: the
// request is written, then the run is loaded and ends cancelled (nothing
// it was running survived its process).
func (e *Engine) cancelStored(ctx context.Context, id string) error {
	err := e.c.write(func(tx store.Tx) error {
		data, err := tx.Get(runKey(id))
		if err != nil {
			return err
		}
		var rec RunRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		if rec.Status.Terminal() || rec.CancelRequested {
			return nil
		}
		rec.CancelRequested = true
		val, err := json.Marshal(&rec)
		if err != nil {
			return err
		}
		return tx.Set(runKey(id), val)
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	_, running := e.active[id]
	e.mu.Unlock()
	if running {
		return nil
	}
	return e.resumeRun(ctx, id)
}

func (e *Engine) childIDs(ctx context.Context, id string) ([]string, error) {
	var kids []string
	err := e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(childPrefix(id), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			kids = append(kids, string(k[len(childPrefix(id)):]))
			return nil
		})
	})
	return kids, err
}

func (e *Engine) runRecord(ctx context.Context, id string) (*RunRecord, error) {
	var rec RunRecord
	err := e.st.View(ctx, func(tx store.Tx) error {
		data, err := tx.Get(runKey(id))
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &rec)
	})
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return &rec, nil
}

// stopSubWorkflow ends a cancelled sub_workflow step whose child is not
// its own (a run reused through an idempotency key): that run is not
// cancelled with this tree, so the step does not wait for it.
func (e *Engine) stopSubWorkflow(ar *activeRun, index, attempt int) {
	ar.mu.Lock()
	childID := ar.m.Run.Steps[index].ChildRunID
	step := ar.prog.Workflow.Steps[index].ID
	ar.mu.Unlock()
	if e.ownsChild(ar, childID) {
		return // cancelled with the tree, its notice ends the step
	}
	e.apply(ar, core.StepEnded{Step: step, Attempt: attempt, Error: "cancelled", At: e.now()})
}

// ownsChild reports whether run id is a child of ar (not a run reused
// through an idempotency key).
func (e *Engine) ownsChild(ar *activeRun, id string) bool {
	if id == "" {
		return false
	}
	rec, err := e.runRecord(e.base, id)
	return err == nil && fromOptString(rec.ParentRunID) == ar.rec.ID
}

// subWorkflowTimedOut ends a blocking sub_workflow step whose timeout
// passed. Its own child (with the child's subtree) is cancelled first, and
// the step ends, with the timeout as its error, when the child has ended:
// a retry never runs beside the child it replaces.
func (e *Engine) subWorkflowTimedOut(ar *activeRun, step string, attempt int, timeout time.Duration) {
	ar.mu.Lock()
	st := ar.m.StepState(step)
	current := st != nil && st.Status == core.StepRunning && st.Attempt == attempt
	childID := ""
	if current {
		childID = st.ChildRunID
	}
	ar.mu.Unlock()
	if !current {
		return
	}
	msg := fmt.Sprintf("timed out after %s", dag.FormatDuration(timeout))
	if e.ownsChild(ar, childID) {
		msg = fmt.Sprintf("%s; its child run %s was cancelled", msg, childID)
		ar.mu.Lock()
		running := ar.m.EndWithChild(step, attempt, msg)
		ar.mu.Unlock()
		if !running {
			return // ended meanwhile
		}
		err := e.cancelTree(e.base, childID)
		if err == nil {
			return // the child's end ends the step
		}
		e.log.Error("cannot cancel a timed-out step's child", "run", ar.rec.ID, "step", step, "child", childID, "error", err)
		ar.mu.Lock()
		ar.m.EndWithChild(step, attempt, "")
		ar.mu.Unlock()
	}
	e.apply(ar, core.StepEnded{Step: step, Attempt: attempt, Error: msg, At: e.now()})
}

// RerunOptions tunes Rerun.
type RerunOptions struct {
	// DryRun only plans: nothing changes.
	DryRun bool
	// Latest resolves the children of reset sub_workflow steps anew,
	// instead of spawning the versions they ran.
	Latest bool
}

// RerunPlan lists, from the run rerun up to its tree's root, the steps of
// each run that run again.
type RerunPlan struct {
	Root string     `json:"root_run_id"`
	Runs []RerunRun `json:"runs"`
}

// RerunRun is what a rerun does to one run.
type RerunRun struct {
	RunID    string   `json:"run_id"`
	Workflow string   `json:"workflow"`
	Steps    []string `json:"steps"`
	// Reopen is the sub_workflow step that waits again for its child.
	Reopen string `json:"reopen,omitempty"`
}

// Rerun resets a step of a run and everything downstream of it, keeping
// the outputs upstream, and runs the run to its end again. When the run
// is a blocking child, its parent's sub_workflow step (and what follows
// it) is reopened too, up to the root: each parent continues with the
// child's new outcome. It refuses while the tree is active. Wait for the
// plan's Root to see the outcome.
func (e *Engine) Rerun(ctx context.Context, idOrPrefix, step string, opts RerunOptions) (*RerunPlan, error) {
	rec, err := e.Get(ctx, idOrPrefix)
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
	found := false
	for _, s := range rec.Steps {
		found = found || s.ID == step
	}
	if !found {
		return nil, inputErrorf("run %s (%s) has no step %q", rec.ID, rec.Workflow, step)
	}

	// plan from the run up the chain of blocking parents
	type target struct {
		ar   *activeRun
		plan RerunRun
	}
	var targets []target
	cur, from, reopen := rec, step, ""
	for {
		ar, err := e.loadRun(ctx, cur)
		if err != nil {
			return nil, err
		}
		w := ar.prog.Workflow
		down := w.Downstream(from)
		steps := down
		if reopen != "" {
			steps = down[1:]
		}
		targets = append(targets, target{ar: ar, plan: RerunRun{RunID: cur.ID, Workflow: cur.Workflow, Steps: steps, Reopen: reopen}})
		if cur.ParentRunID == nil || cur.Detached {
			break
		}
		parent, err := e.Get(ctx, *cur.ParentRunID)
		if err != nil {
			return nil, err
		}
		cur, from, reopen = parent, deref(cur.ParentStepID), deref(cur.ParentStepID)
	}
	plan := &RerunPlan{Root: targets[len(targets)-1].plan.RunID}
	for _, t := range targets {
		plan.Runs = append(plan.Runs, t.plan)
	}
	if opts.DryRun {
		return plan, nil
	}

	// parents first, so that they wait before their children end
	for i := len(targets) - 1; i >= 0; i-- {
		t := targets[i]
		ar := t.ar
		ar.latest = opts.Latest
		ar.rec.Epoch++
		for _, s := range append(append([]string{}, t.plan.Steps...), t.plan.Reopen) {
			if j := ar.prog.Workflow.StepIndex(s); j >= 0 {
				ar.epochs[j] = ar.rec.Epoch
			}
		}
		e.mu.Lock()
		e.active[ar.rec.ID] = ar
		e.mu.Unlock()
		var extra func(tx store.Tx) error
		if t.plan.Reopen != "" {
			index := ar.prog.Workflow.StepIndex(t.plan.Reopen)
			child := targets[i-1].plan.RunID
			attempt := ar.m.Run.Steps[index].Attempt + 1
			targets[i-1].ar.waiter = &waiterRef{run: ar, step: t.plan.Reopen, index: index, attempt: attempt}
			waiter := ar.rec.ID
			extra = func(tx store.Tx) error {
				if err := tx.Set(activeKey(waiter), nil); err != nil {
					return err
				}
				return tx.Set(waitKey(child, waiter, index, attempt), nil)
			}
		} else {
			waiter := ar.rec.ID
			extra = func(tx store.Tx) error { return tx.Set(activeKey(waiter), nil) }
		}
		detail := fmt.Sprintf("rerun from step %s", step)
		if i > 0 {
			detail = fmt.Sprintf("rerun of child run %s from its step %s", rec.ID, step)
		}
		e.applyWith(ar, core.Rerun{Reset: t.plan.Steps, Reopen: t.plan.Reopen, Detail: detail, At: e.now()}, extra, nil)
		e.armRunTimeout(ar)
	}
	return plan, nil
}

// loadRun builds the in-memory state of a stored run.
func (e *Engine) loadRun(ctx context.Context, rec *RunRecord) (*activeRun, error) {
	def, err := e.runSource(ctx, rec)
	if err != nil {
		return nil, err
	}
	prog, err := e.program(ctx, def)
	if err != nil {
		return nil, err
	}
	w := prog.Workflow
	if len(w.Steps) != len(rec.Steps) {
		return nil, fmt.Errorf("run %s: its stored steps do not match its definition", rec.ID)
	}
	var lastSeq uint64
	err = e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(histPrefix(rec.ID), store.ScanOptions{Reverse: true}, func(_, v []byte) error {
			var h HistoryEvent
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			lastSeq = h.Seq
			return store.ErrStop
		})
	})
	if err != nil {
		return nil, err
	}
	secrets, _ := lookupSecrets(w, e.opts.LookupSecret, false)
	run := &core.Run{
		ID: rec.ID, Status: rec.Status, Params: rec.Params, Output: rec.Output,
		Error: fromOptString(rec.Error), CancelRequested: rec.CancelRequested, TimedOut: rec.TimedOut,
		StartedAt: fromOptTime(rec.StartedAt), EndedAt: fromOptTime(rec.EndedAt), RerunAt: fromOptTime(rec.RerunAt),
	}
	ar := &activeRun{rec: *rec, prog: prog, seq: lastSeq, lookup: e.opts.LookupSecret}
	ar.rec.Steps = nil
	ar.init(secrets)
	for i, s := range rec.Steps {
		if s.ID != w.Steps[i].ID {
			return nil, fmt.Errorf("run %s: its stored step %d is %q, its definition says %q", rec.ID, i, s.ID, w.Steps[i].ID)
		}
		run.Steps = append(run.Steps, &core.Step{
			ID: s.ID, Status: s.Status, Attempt: s.Attempt, RetriesUsed: s.RetriesUsed, EngineStops: s.EngineStops,
			Output: s.Output, Error: fromOptString(s.Error), ChildRunID: fromOptString(s.ChildRunID),
			RetryAt: fromOptTime(s.RetryAt), StartedAt: fromOptTime(s.StartedAt), EndedAt: fromOptTime(s.EndedAt),
		})
		if s.Inputs != nil {
			ar.inputs[i] = s.Inputs
		}
		ar.epochs[i] = s.Epoch
		if s.ChildWorkflow != "" {
			ar.children[i] = childInfo{workflow: s.ChildWorkflow, version: s.ChildVersion, hash: s.ChildHash}
		}
	}
	ar.m = core.New(w, run)
	ar.m.MaxEngineStops = e.opts.MaxEngineStops
	e.admitter(ar)
	for i, s := range run.Steps {
		if s.Status == core.StepRunning {
			ar.inputs[i] = ar.m.Resolve(w.Steps[i].Inputs)
		}
	}
	return ar, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
