package runtime

// This file: a run in memory (activeRun) and its creation by Start.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// activeRun is a run this engine is executing.
type activeRun struct {
	mu   sync.Mutex
	rec  RunRecord // without steps; kept in step with the machine
	m    *core.Machine
	prog *lang.Program
	seq  uint64 // the last history seq written

	secrets map[string]string // declared secrets that have values
	// inherited holds the secrets of the runs above this one, masked in
	// its records too (a parent may pass it values derived from them)
	inherited map[string]string
	masks     []string    // the values of both, for masking
	inputs    map[int]any // resolved inputs of each step's current attempt, secrets included
	// inputErrs holds why a starting step's inputs do not resolve (a
	// missing output key): the attempt fails with it instead of running
	inputErrs map[int]error
	// envs are the resolved env= of each shell step's current attempt
	envs map[int]any
	// loaded: the run was loaded from the store (resume, rerun), not
	// created by this engine
	loaded   bool
	logs     map[int][]byte // the log of an attempt that just ended, written with its end
	attempts map[int]*attemptState
	done     chan struct{}
	broken   error

	// lookup finds secrets for this run and the children it spawns.
	lookup func(name string) (string, bool)
	// children holds what each sub_workflow step's current child runs.
	children map[int]childInfo
	// epochs holds each step's rerun epoch; latest makes reruns resolve
	// children anew instead of reusing their recorded versions.
	epochs map[int]int
	latest bool
	// rebind maps a sub_workflow step reset by a rerun to the run its
	// idempotency key binds it to: it waits for that run again, whatever
	// its strategy says of a bound key
	rebind map[int]string
	// waiter is the blocking parent step waiting for this run, when it
	// runs in this engine: its ChildEnded is decided in this run's final
	// commit. Nil means the notice in the store (and the watch) tell it.
	waiter *waiterRef
	// stopped is set by the committer when a commit of this run failed;
	// its later commits are refused. doneOnce closes done.
	stopped  atomic.Bool
	stops    []*atomic.Bool // &stopped, for the committer (journal.go)
	doneOnce sync.Once
	// dyn is what the run knows of its planner and for_each steps (dynamic_planner.go)
	dyn *dynamicState
	// ended is set once a decision ends the run, before that decision
	// commits: a spawn decided in the same commit (an idempotency key's
	// fail_on_running) must not take the run for a running one
	ended atomic.Bool
}

// release ends every wait on the run (it ended, or it stopped).
func (ar *activeRun) release() { ar.doneOnce.Do(func() { close(ar.done) }) }

// waiterRef names a step attempt waiting for a run.
type waiterRef struct {
	run     *activeRun
	step    string
	index   int
	attempt int
}

// childInfo is the definition a sub_workflow step's child runs.
type childInfo struct {
	workflow string
	version  int
	hash     string
}

// attemptState is a step's current attempt as the shell knows it, under
// the run's lock: a task, shell or planner attempt is registered with its
// job by the decision that starts it (handOver), marked stopped by the
// one that stops it, and gets its cancel once a worker runs it; a driven
// fan-out's (dynamic.go) has its cancel from the start.
type attemptState struct {
	attempt int
	cancel  context.CancelFunc
	job     *job
	stopped bool
}

// StartOptions are the per-run choices of Start.
type StartOptions struct {
	// Params override the workflow's param defaults; each must be declared.
	Params map[string]any
	// Priority from MinPriority to MaxPriority, higher runs first.
	Priority int
	// Workspace is the directory shell steps and sh() run in.
	Workspace string
	// LookupSecret, when set, finds this run's secrets instead of the
	// engine's lookup (a command forwarded from another terminal brings
	// its own environment).
	LookupSecret func(name string) (string, bool)
	// IdempotencyKey binds the run to a key: a second start with the same
	// workflow and key follows IdempotencyStrategy.
	IdempotencyKey      string
	IdempotencyStrategy string
}

// Start registers the program's workflow, creates a run of it and starts
// it. It returns once the run's first transition is committed.
func (e *Engine) Start(ctx context.Context, prog *lang.Program, opts StartOptions) (string, error) {
	if e.isClosed() {
		return "", errEngineClosed
	}
	if len(prog.Errors) > 0 {
		return "", prog.Errors
	}
	w := prog.Workflow
	if _, ok := priorityOf(int64(opts.Priority)); !ok {
		return "", inputErrorf("priority must be between %d and %d, got %d", MinPriority, MaxPriority, opts.Priority)
	}
	if err := validStrategy(opts.IdempotencyStrategy); err != nil {
		return "", err
	}
	if err := dag.CheckText("idempotency key", opts.IdempotencyKey); err != nil {
		return "", &InputError{Msg: err.Error()}
	}
	if err := e.checkHandlers(w); err != nil {
		return "", &InputError{Msg: err.Error()}
	}
	params, err := mergeParams(w, opts.Params)
	if err != nil {
		return "", err
	}
	lookup := e.opts.LookupSecret
	if opts.LookupSecret != nil {
		lookup = opts.LookupSecret
	}
	secrets, err := lookupSecrets(w, lookup, true)
	if err != nil {
		return "", err
	}
	// the workspace workflows it uses become definitions its children
	// run; all are stored, or none
	regs, err := e.RegisterTree(ctx, prog)
	if err != nil {
		return "", err
	}
	version := regs[0].Version
	id, now := e.newID()
	ar := newRun(prog, RunRecord{
		ID: id, Workflow: w.Name, Version: version, Status: core.RunPending,
		Params: params, RootRunID: id, Depth: 1, Priority: opts.Priority,
		CreatedAt: now, Hash: prog.Hash, Workspace: opts.Workspace,
		MaxDepth: w.EffectiveMaxDepth(), Lineage: []string{w.Name},
		IdempotencyKey: optString(opts.IdempotencyKey),
	}, secrets, lookup)
	e.admitter(ar)
	// what its spawns need from the store is read now, before deciding
	e.prefetchChildren(ctx, prog)
	create, err := ar.creation(func(tx *journal.Tx) error {
		return bindKey(tx, w.Name, opts.IdempotencyKey, opts.IdempotencyStrategy, id)
	})
	if err != nil {
		return "", err
	}
	// active before it exists in the store: whoever finds it there (a start
	// with the same idempotency key) can wait for it
	e.mu.Lock()
	e.active[id] = ar
	e.mu.Unlock()
	// the creation and the first transition are one commit, the children
	// it spawns the commits after it (one transaction when they fit)
	ar.mu.Lock()
	start := core.Start{At: e.now()}
	if opts.IdempotencyKey == "" && opts.IdempotencyStrategy != "" {
		start.Detail = fmt.Sprintf("idempotency_strategy %s ignored: the run has no idempotency key", opts.IdempotencyStrategy)
	}
	first := e.decideAll(ctx, ar, start)
	ar.mu.Unlock()
	if first == nil {
		e.mu.Lock()
		delete(e.active, id)
		e.mu.Unlock()
		return "", fmt.Errorf("the run could not start")
	}
	units := first.units()
	units[0] = append(create, units[0]...)
	err = e.c.waitAll(e.c.submitAll(units, ar))
	if err != nil {
		first.abandon(e)
		e.mu.Lock()
		delete(e.active, id)
		e.mu.Unlock()
		ar.release()
	}
	var existing *existingRun
	if errors.As(err, &existing) {
		return existing.id, nil
	}
	if err != nil {
		if errors.Is(err, ErrInput) {
			return "", err
		}
		return "", fmt.Errorf("cannot create the run: %w", err)
	}
	e.afterCommit(first)
	e.armRunTimeout(ar)
	return id, nil
}

// newRun is the in-memory state of a run about to be created: every step
// pending.
func newRun(prog *lang.Program, rec RunRecord, secrets map[string]string, lookup func(string) (string, bool)) *activeRun {
	ar := &activeRun{rec: rec, prog: prog, lookup: lookup}
	ar.init(secrets)
	ar.m = core.New(prog.Workflow, &core.Run{ID: rec.ID, Status: core.RunPending, Params: rec.Params})
	return ar
}

// checkHandlers refuses a workflow with a string task body that names a
// handler this engine does not have.
func (e *Engine) checkHandlers(w *dag.Workflow) error {
	for _, s := range w.Steps {
		if s.Kind == dag.KindTask && s.Handler != "" {
			if _, ok := e.handler(s.Handler); !ok {
				return fmt.Errorf("%s: step %q of %s uses the task handler %q, which this engine does not have", s.Pos, s.ID, w.Name, s.Handler)
			}
		}
	}
	return nil
}

func (ar *activeRun) init(secrets map[string]string) {
	ar.secrets = secrets
	ar.sortMasks()
	// inherited, inputErrs, envs, logs, children and rebind, which most
	// runs never fill, are made by their first write
	ar.inputs = map[int]any{}
	ar.attempts = map[int]*attemptState{}
	ar.epochs = map[int]int{}
	ar.done = make(chan struct{})
}

// sortMasks builds the values masked in the run's records: its own
// secrets' and those inherited from the runs above it, longest first.
func (ar *activeRun) sortMasks() {
	ar.masks = ar.masks[:0]
	seen := map[string]bool{}
	for _, set := range []map[string]string{ar.secrets, ar.inherited} {
		for _, v := range set {
			if v != "" && !seen[v] {
				seen[v] = true
				ar.masks = append(ar.masks, v)
			}
		}
	}
	if len(ar.masks) > 1 {
		sort.Slice(ar.masks, func(i, j int) bool { return len(ar.masks[i]) > len(ar.masks[j]) })
	}
}

// inheritMasks makes a new child mask every secret its parent masks: a
// parent can hand a child a value derived from a secret (a step's output
// in inputs), and the child's params, inputs, outputs and logs must not
// show it. The names are stored with the child, so a resume masks them
// again. The child's stored params are masked from here on; its body
// still gets the values.
func (child *activeRun) inheritMasks(parent *activeRun) {
	for _, set := range []map[string]string{parent.secrets, parent.inherited} {
		for name, v := range set {
			if _, own := child.secrets[name]; !own {
				if child.inherited == nil {
					child.inherited = map[string]string{}
				}
				child.inherited[name] = v
			}
		}
	}
	names := make([]string, 0, len(child.inherited))
	for name := range child.inherited {
		names = append(names, name)
	}
	sort.Strings(names)
	child.rec.MaskSecrets = names
	child.sortMasks()
	child.rec.Params = builtins.MaskValue(child.rec.Params, child.masks).(map[string]any)
}

// loadMasks looks up again, on resume, the inherited secrets a run
// masks.
func (ar *activeRun) loadMasks(lookup func(string) (string, bool)) {
	for _, name := range ar.rec.MaskSecrets {
		if _, own := ar.secrets[name]; own || lookup == nil {
			continue
		}
		if v, ok := lookup(name); ok {
			if ar.inherited == nil {
				ar.inherited = map[string]string{}
			}
			ar.inherited[name] = v
		}
	}
	ar.sortMasks()
}

// creation writes a new run: every step pending, then, in one op, its
// record, the unfinished marker and what with writes (a binding, a
// child's wait key); see journal.Create.
func (ar *activeRun) creation(with func(tx *journal.Tx) error) ([]journal.Op, error) {
	steps := make([]StepRecord, len(ar.prog.Workflow.Steps))
	for i, s := range ar.prog.Workflow.Steps {
		steps[i] = StepRecord{ID: s.ID, Kind: string(s.Kind), Status: core.StepPending}
	}
	return journal.Create(&ar.rec, steps, with)
}

func mergeParams(w *dag.Workflow, given map[string]any) (map[string]any, error) {
	params := make(map[string]any, len(w.Params))
	for _, p := range w.Params {
		params[p.Name] = p.Default
	}
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if w.Param(k) == nil {
			return nil, inputErrorf("workflow %s has no param %q%s", w.Name, k, dag.DidYouMean(k, w.ParamNames()))
		}
		params[k] = given[k]
	}
	return params, nil
}

// lookupSecrets finds the values of the declared secrets. With strict, a
// missing one is an error; otherwise it is left out and the step that asks
// for it fails.
func lookupSecrets(w *dag.Workflow, lookup func(string) (string, bool), strict bool) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range w.Secrets {
		v, ok := lookup(name)
		if !ok {
			if strict {
				return nil, inputErrorf("secret %s is not set: put %s=... in --secrets-file or set the environment variable %s", name, name, name)
			}
			continue
		}
		out[name] = v
	}
	return out, nil
}
