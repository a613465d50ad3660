package runtime

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// DefaultMaxChildren bounds the child runs one run may spawn in all.
const DefaultMaxChildren = 10_000

// childRunID derives a child's run id from its parent run, step and
// attempt: a spawn repeated after a crash finds the child it already
// made instead of starting a second one. The child is created when the
// attempt starts, so the id sorts by that time and then by the step's
// position, the order in which one decision spawns its children.
func childRunID(parentID, stepID string, index, attempt int, started time.Time) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%d", parentID, stepID, attempt)))
	return runIDAt(started, index, sum[:6])
}

// spawnPlan is a child spawn prepared under the parent's lock: the event
// the parent applies (ChildSpawned), the ops that land in the same commit
// (the child's creation and first transition), and what to do once
// committed.
type spawnPlan struct {
	event core.Event
	ops   []journal.Op
	// child is the new run, and first its first decision (already part of
	// extra); nil when an existing run is reused
	child *activeRun
	first *decision
	// unlock releases what the preparation reserved until the commit
	unlock func()
	// endedAtOnce: the child ended in the commit that creates it, so its
	// notice is in the store before its parent can be told by the watch
	endedAtOnce bool
	// a blocking step's timeout, armed once the spawn commits
	timeout time.Duration
	step    string
	attempt int
}

// spawnRequest is what a decision that starts a sub_workflow step's
// attempt (or re-attaches one whose spawn never committed) hands to the
// spawn: taken from the core's result and the values resolved when it
// was decided, so that the spawn reads no live state of the machine, and
// whatever the store must tell can be read without the run's lock.
type spawnRequest struct {
	def            *dag.Step // the step, as the decision saw the workflow
	index, attempt int
	started        time.Time
	// reattach: the child may exist already (created in a transaction
	// before a crash that lost the parent's ChildSpawned)
	reattach            bool
	inputs              map[string]any
	inputErr            error
	priority            any // the resolved priority=, when the step has one
	script              any // the resolved script=, for a script child
	key, strategy, note string
	// rebound is the run a rerun binds the step to again
	rebound string
	// version is the definition version to spawn: pinned, or the one a
	// rerun ran before; 0 for the latest
	version int
}

// spawnReads is what a spawn needs from the store, read before its
// decision (readSpawn) or found in the engine's caches (cachedReads).
type spawnReads struct {
	exists   bool // the reattached child exists: it is re-attached
	prog     *lang.Program
	info     childInfo
	src      *journal.Definition
	progErr  error
	bound    string // the run the idempotency key is bound to
	running  bool   // whether bound is unfinished
	bindErr  error
	existErr error
}

// requestSpawn takes what the spawn of step index's attempt needs from
// the decision that started it; the run's lock is held.
func (ar *activeRun) requestSpawn(index, attempt int, started time.Time, reattach bool) spawnRequest {
	def := ar.prog.Workflow.Steps[index]
	req := spawnRequest{def: def, index: index, attempt: attempt, started: started, reattach: reattach, inputErr: ar.inputErrs[index], rebound: ar.rebind[index], version: def.Child.Version}
	req.inputs, _ = ar.inputs[index].(map[string]any)
	if def.Priority != nil {
		req.priority = ar.m.Resolve(def.Priority)
	}
	if def.Child.Script != nil {
		req.script = ar.m.Resolve(def.Child.Script)
	}
	if info, ok := ar.children[index]; ok && info.version > 0 && !ar.latest {
		// a rerun spawns the version the step ran before
		req.version = info.version
	}
	req.key, req.strategy, req.note = ar.childIdempotency(def)
	return req
}

// cachedReads finds what a spawn needs in memory, when it can: a child of
// a registered definition whose program the engine holds, with no
// idempotency key and nothing to re-attach. Otherwise the spawn reads the
// store first, without the run's lock (spawnLater).
func (e *Engine) cachedReads(ar *activeRun, req *spawnRequest) (spawnReads, bool) {
	def := ar.prog.Workflow.Steps[req.index]
	if req.reattach || req.key != "" || def.Child.Script != nil {
		return spawnReads{}, false
	}
	d := e.cachedDefinition(def.Child.Name, req.version)
	if d == nil {
		return spawnReads{}, false
	}
	prog := e.cachedProgram(d.Hash)
	if prog == nil {
		return spawnReads{}, false
	}
	return spawnReads{prog: prog, info: childInfo{workflow: d.Name, version: d.Version, hash: d.Hash}}, true
}

// readSpawn reads what a spawn needs from the store (and, for a script
// child, the workspace); no lock is held.
func (e *Engine) readSpawn(ctx context.Context, ar *activeRun, req *spawnRequest) spawnReads {
	var r spawnReads
	def := req.def // ar.prog may change meanwhile (a planner's steps join)
	if req.reattach {
		childID := childRunID(ar.rec.ID, def.ID, req.index, req.attempt, req.started)
		if r.exists, r.existErr = e.runExists(ctx, childID); r.exists || r.existErr != nil {
			return r
		}
	}
	r.prog, r.info, r.src, r.progErr = e.childProgramAt(ctx, ar.rec.Workspace, def, req.script, req.version)
	if r.progErr == nil && req.key != "" && dag.CheckText("idempotency_key", req.key) == nil {
		r.bound, r.running, r.bindErr = e.boundRun(ctx, r.prog.Workflow.Name, req.key)
	}
	return r
}

// planSpawn prepares the child run of a sub_workflow step's attempt from
// its request and reads; the parent's lock is held, and nothing is read
// from the store. An error fails the step with its message.
func (e *Engine) planSpawn(ctx context.Context, ar *activeRun, req spawnRequest, reads spawnReads) (*spawnPlan, error) {
	index, attempt := req.index, req.attempt
	def := ar.prog.Workflow.Steps[index]
	// not a copy of the record (350 bytes kept by every child of a big
	// fan-out): its fields read here do not change while the lock is held
	parent := &ar.rec
	parentID := parent.ID
	childID := childRunID(parentID, def.ID, index, attempt, req.started)
	if reads.existErr != nil {
		return nil, reads.existErr
	}
	if reads.exists {
		// spawned before a crash: "create if absent" found it (the
		// child's creation and the parent's ChildSpawned share a commit,
		// cut only when too large on its own), so this is a re-attach of
		// a child whose notice is on its way
		return &spawnPlan{event: core.ChildSpawned{Step: def.ID, Attempt: attempt, ChildRunID: childID, Detached: def.Child.Detach, At: e.now()}}, nil
	}
	if err := req.inputErr; err != nil {
		return nil, err
	}
	inputs := req.inputs
	priority := parent.Priority
	if def.Priority != nil {
		p, err := resolvedPriority(req.priority)
		if err != nil {
			return nil, err
		}
		priority = p
	}
	if reads.progErr != nil {
		return nil, reads.progErr
	}
	prog, info, src := reads.prog, reads.info, reads.src
	w := prog.Workflow
	lineage, err := childLineage(parent.Lineage, parent.MaxDepth, w.Name) // dynamic.go
	if err != nil {
		return nil, err
	}
	if err := e.checkHandlers(w); err != nil {
		return nil, err
	}
	params, err := mergeParams(w, inputs)
	if err != nil {
		return nil, err
	}
	key, strategy, note := req.key, req.strategy, req.note
	if err := dag.CheckText("idempotency_key", key); err != nil {
		return nil, err
	}
	if key != "" && builtins.MaskString(key, ar.masks) != key {
		// a key is stored as it is, to find its run again: it cannot be
		// masked
		return nil, fmt.Errorf("idempotency_key holds the value of a secret, and keys are stored in the clear; derive the key from something that is not secret")
	}
	plan := &spawnPlan{unlock: func() {}}
	if key != "" {
		// the key's binding: in the store, or reserved by a spawn decided
		// but not yet committed (which commits before this one)
		bound, running, err := reads.bound, reads.running, reads.bindErr
		if err != nil {
			return nil, err
		}
		if running && e.endedHere(bound) {
			// it ended in a decision that commits with this spawn
			running = false
		}
		e.idemMu.Lock()
		if pending, ok := e.idemPending[w.Name+"\x00"+key]; ok {
			bound, running = pending, true
		}
		if bound != "" {
			var reuse bool
			// a rerun: the key binds the step to the run it ran before,
			// whatever its strategy says of a bound key
			rebound := bound == req.rebound
			if reuse, err = onBound(strategy, w.Name, key, bound, running); reuse || rebound {
				err = nil
				e.idemMu.Unlock()
				return e.reusePlan(plan, ar, def, index, attempt, bound), nil
			}
		}
		if err != nil {
			e.idemMu.Unlock()
			return nil, err
		}
		// reserved until this spawn commits (or is abandoned); no lock is
		// held across the commit
		reserved := w.Name + "\x00" + key
		e.idemPending[reserved] = childID
		e.idemMu.Unlock()
		plan.unlock = func() {
			e.idemMu.Lock()
			if e.idemPending[reserved] == childID {
				delete(e.idemPending, reserved)
			}
			e.idemMu.Unlock()
		}
	}
	secrets, err := lookupSecrets(w, ar.lookup, true)
	if err != nil {
		plan.unlock()
		return nil, err
	}
	if ar.rec.Children >= e.maxChildren() {
		plan.unlock()
		return nil, fmt.Errorf("run %s already has %d child runs, the most one run may have; raise the limit or split the work", parent.ID, e.maxChildren())
	}
	ar.rec.Children++
	if ar.children == nil {
		ar.children = map[int]childInfo{}
	}
	ar.children[index] = info

	child := newRun(prog, RunRecord{
		ID: childID, Workflow: w.Name, Version: info.version, Status: core.RunPending,
		Params: params, ParentRunID: &parentID, ParentStepID: optString(def.ID),
		RootRunID: parent.RootRunID, Depth: parent.Depth + 1, Priority: priority,
		CreatedAt: req.started, Hash: prog.Hash, Workspace: parent.Workspace,
		Detached: def.Child.Detach, MaxDepth: parent.MaxDepth, Lineage: lineage,
		IdempotencyKey: optString(key),
	}, secrets, ar.lookup)
	child.inheritMasks(ar)
	e.admitter(child)
	if !def.Child.Detach {
		child.waiter = &waiterRef{run: ar, step: def.ID, index: index, attempt: attempt}
	}
	// the child's record is written with its wait key (a child that
	// ends in this very commit finds its waiter and writes the notice),
	// its source, its place among its parent's children and its
	// idempotency binding: all of them or none
	create, err := child.creation(func(tx *journal.Tx) error {
		if !def.Child.Detach {
			if err := tx.AddWaiter(childID, parentID, index, attempt); err != nil {
				return err
			}
		}
		if src != nil {
			if err := tx.PutRunSource(childID, src); err != nil {
				return err
			}
		}
		if err := tx.AddChild(parentID, childID); err != nil {
			return err
		}
		if key != "" {
			return tx.Bind(w.Name, key, childID)
		}
		return nil
	})
	if err != nil {
		plan.unlock()
		return nil, err
	}
	// the child starts in the spawn's commit, and its own children in
	// the commits that follow it: a tree is created down to its first
	// real work before anything runs (in one transaction when it fits).
	// Nobody else can see the child yet; taking its lock under the
	// parent's is the only order these locks are ever taken in.
	child.mu.Lock()
	first := e.decideAll(ctx, child, core.Start{At: e.now()})
	plan.endedAtOnce = child.m.RunView().Status.Terminal()
	child.mu.Unlock()
	if first == nil {
		plan.unlock()
		return nil, fmt.Errorf("the child run could not start")
	}
	plan.child, plan.first = child, first
	plan.event = core.ChildSpawned{Step: def.ID, Attempt: attempt, ChildRunID: childID, Detached: def.Child.Detach, Detail: note, At: e.now()}
	plan.ops = append(create, first.ops...)
	return plan, nil
}

// endedHere reports whether run id runs in this engine and a decision
// already ended it (its commit may still be on its way).
func (e *Engine) endedHere(id string) bool {
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()
	return ar != nil && ar.ended.Load()
}

func (e *Engine) maxChildren() int {
	if e.opts.MaxChildren > 0 {
		return e.opts.MaxChildren
	}
	return DefaultMaxChildren
}

func (e *Engine) runExists(ctx context.Context, id string) (bool, error) {
	var found bool
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		found, err = tx.RunExists(id)
		return err
	})
	return found, err
}

// childProgram finds what a sub_workflow step runs: a registered
// definition (the pinned version, else the latest), or a script= child
// declared now from source, whose names resolve in the root's workspace.
func (e *Engine) childProgram(ctx context.Context, ar *activeRun, def *dag.Step, script any) (*lang.Program, childInfo, *journal.Definition, error) {
	version := def.Child.Version
	if info, ok := ar.children[ar.prog.Workflow.StepIndex(def.ID)]; ok && info.version > 0 && !ar.latest {
		// a rerun spawns the version the step ran before
		version = info.version
	}
	return e.childProgramAt(ctx, ar.rec.Workspace, def, script, version)
}

// childProgramAt is childProgram of a given version (0: the latest),
// names resolving in the workspace of the root run.
func (e *Engine) childProgramAt(ctx context.Context, workspace string, def *dag.Step, script any, version int) (*lang.Program, childInfo, *journal.Definition, error) {
	c := def.Child
	if c.Script != nil {
		src, ok := script.(string)
		if !ok {
			return nil, childInfo{}, nil, fmt.Errorf("script= must resolve to Starlark source (a string), got %s", dag.FormatValue(script))
		}
		ws, err := e.rootWorkspace(workspace)
		if err != nil {
			return nil, childInfo{}, nil, err
		}
		name := c.Name + ".star"
		prog, err := ws.LoadSource(ctx, name, []byte(src))
		if err != nil {
			return nil, childInfo{}, nil, fmt.Errorf("the script child does not evaluate: %v", err)
		}
		if errs := ws.Check(ctx, prog); len(errs) > 0 {
			return nil, childInfo{}, nil, fmt.Errorf("the script child is not valid: %v", errs)
		}
		// the workspace workflows it names resolve now as at validation,
		// workspace files first: they become the definitions its own
		// children run (SPEC §2)
		if reach := ws.Reachable(ctx, prog); len(reach) > 0 {
			if _, err := e.registerAll(ctx, reach); err != nil {
				return nil, childInfo{}, nil, fmt.Errorf("the script child's workflows cannot be registered: %w", err)
			}
		}
		if !prog.Workflow.Pos.IsSet() || prog.Workflow.Name == strings.TrimSuffix(name, ".star") {
			prog.Workflow.Name = c.Name
		}
		snapshot := &journal.Definition{Name: prog.Workflow.Name, Hash: prog.Hash, Root: prog.Root, Files: prog.Files}
		return prog, childInfo{workflow: prog.Workflow.Name, hash: prog.Hash}, snapshot, nil
	}
	rec, err := e.definition(ctx, c.Name, version)
	if errors.Is(err, journal.ErrNotFound) {
		if version > 0 {
			return nil, childInfo{}, nil, fmt.Errorf("%s version %d is not registered", c.Name, version)
		}
		return nil, childInfo{}, nil, fmt.Errorf("unknown workflow %q: it is not registered (flowscript run registers the workspace workflows a file uses; flowscript register adds others)", c.Name)
	}
	if err != nil {
		return nil, childInfo{}, nil, err
	}
	prog, err := e.program(ctx, rec)
	if err != nil {
		return nil, childInfo{}, nil, err
	}
	return prog, childInfo{workflow: rec.Name, version: rec.Version, hash: rec.Hash}, nil, nil
}

// rootWorkspace is the workspace on disk that names resolve in at run
// time, with registered definitions behind it.
func (e *Engine) rootWorkspace(dir string) (*lang.Workspace, error) {
	if dir == "" {
		return lang.NewWorkspaceFiles(nil, e.LangOptions()), nil
	}
	ws, err := lang.OpenWorkspace(dir, e.LangOptions())
	if err != nil {
		return nil, err
	}
	return ws, nil
}

// childIdempotency is the key and strategy of a spawn: the step's key, or
// the parent's when the step names only a strategy. A strategy with no key
// anywhere is ignored, and the history says so.
func (ar *activeRun) childIdempotency(def *dag.Step) (key, strategy, note string) {
	c := def.Child
	strategy = c.IdempotencyStrategy
	if c.IdempotencyKey != nil {
		if k, ok := ar.m.Resolve(c.IdempotencyKey).(string); ok {
			key = k
		}
	}
	if key == "" && strategy != "" {
		key = deref(ar.rec.IdempotencyKey)
		if key == "" {
			return "", "", fmt.Sprintf("idempotency_strategy %s ignored: neither the step nor its run has an idempotency key", strategy)
		}
	}
	return key, strategy, ""
}

// boundRun reads the run an idempotency key is bound to, and whether it
// is still unfinished.
func (e *Engine) boundRun(ctx context.Context, workflow, key string) (string, bool, error) {
	var bound string
	var running bool
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		bound, running, err = tx.Binding(workflow, key)
		return err
	})
	return bound, running, err
}

// reusePlan is plan for making the existing run bound the step's child.
func (e *Engine) reusePlan(plan *spawnPlan, ar *activeRun, def *dag.Step, index, attempt int, bound string) *spawnPlan {
	var extra func(tx *journal.Tx) error
	plan.event, extra = e.reuseChild(ar, def, index, attempt, bound)
	if extra != nil {
		plan.ops = []journal.Op{journal.Func(extra)}
	}
	return plan
}

// reuseChild makes an existing run the child of a step (return_existing).
// A blocking step waits for it: if it already ended, its outcome is
// written as a notice at once; else the step becomes one of its waiters.
// The run's record is read and rewritten in the same transaction, so an
// end committed meanwhile makes the transaction conflict and start again.
func (e *Engine) reuseChild(ar *activeRun, def *dag.Step, index, attempt int, existing string) (core.Event, func(tx *journal.Tx) error) {
	parentID := ar.rec.ID
	var extra func(tx *journal.Tx) error
	if !def.Child.Detach {
		extra = func(tx *journal.Tx) error {
			rec, err := tx.WaitFor(existing, parentID, index, attempt)
			if err != nil || rec == nil {
				return err
			}
			n := journal.Notice{Status: rec.Status, Output: rec.Output, Error: deref(rec.Error)}
			if n.Status != core.RunSucceeded {
				n.Error = fmt.Sprintf("child run %s (%s) %s: %s", existing, rec.Workflow, rec.Status, n.Error)
			}
			return tx.PutNotice(parentID, existing, index, attempt, n)
		}
	}
	return core.ChildSpawned{Step: def.ID, Attempt: attempt, ChildRunID: existing, Detached: def.Child.Detach, Detail: "reused the run bound to the idempotency key", At: e.now()}, extra
}
