package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
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
	logs      map[int][]byte // the log of an attempt that just ended, written with its end
	attempts  map[int]*attemptState
	done      chan struct{}
	broken    error

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
	doneOnce sync.Once
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

type attemptState struct {
	attempt int
	cancel  context.CancelFunc
}

// StartOptions are the per-run choices of Start.
type StartOptions struct {
	// Params override the workflow's param defaults; each must be declared.
	Params map[string]any
	// Priority 0–99, higher runs first.
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
	if opts.Priority < 0 || opts.Priority > 99 {
		return "", inputErrorf("priority must be between 0 and 99, got %d", opts.Priority)
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
	create, err := ar.creation()
	if err != nil {
		return "", err
	}
	// active before it exists in the store: whoever finds it there (a start
	// with the same idempotency key) can wait for it
	e.mu.Lock()
	e.active[id] = ar
	e.mu.Unlock()
	// the creation and the first transition (and the children it spawns)
	// are one commit
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
	err = e.c.write(func(tx store.Tx) error {
		if err := bindKey(tx, w.Name, opts.IdempotencyKey, opts.IdempotencyStrategy, id); err != nil {
			return err
		}
		if err := create(tx); err != nil {
			return err
		}
		return first.writes(tx)
	})
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
	ar.inherited = map[string]string{}
	ar.sortMasks()
	ar.inputs = map[int]any{}
	ar.inputErrs = map[int]error{}
	ar.logs = map[int][]byte{}
	ar.attempts = map[int]*attemptState{}
	ar.children = map[int]childInfo{}
	ar.epochs = map[int]int{}
	ar.rebind = map[int]string{}
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
	sort.Slice(ar.masks, func(i, j int) bool { return len(ar.masks[i]) > len(ar.masks[j]) })
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
			ar.inherited[name] = v
		}
	}
	ar.sortMasks()
}

// creation writes a new run: its record, every step pending, the active
// marker.
func (ar *activeRun) creation() (func(store.Tx) error, error) {
	type kv struct{ k, v []byte }
	var kvs []kv
	runVal, err := json.Marshal(&ar.rec)
	if err != nil {
		return nil, err
	}
	kvs = append(kvs, kv{runKey(ar.rec.ID), runVal}, kv{activeKey(ar.rec.ID), nil})
	for i, s := range ar.prog.Workflow.Steps {
		v, err := encodeStep(&StepRecord{ID: s.ID, Kind: string(s.Kind), Status: core.StepPending})
		if err != nil {
			return nil, err
		}
		kvs = append(kvs, kv{stepKey(ar.rec.ID, i), v})
	}
	return func(tx store.Tx) error {
		if _, err := tx.Get(runKey(ar.rec.ID)); err == nil {
			return fmt.Errorf("run %s already exists", ar.rec.ID)
		}
		for _, e := range kvs {
			if err := tx.Set(e.k, e.v); err != nil {
				return err
			}
		}
		return nil
	}, nil
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

// apply moves a run by one event: the machine decides under the run's
// lock, the changes are queued for commit in order, and once committed
// the actions are carried out.
func (e *Engine) apply(ar *activeRun, ev core.Event) {
	e.applyWith(ar, ev, nil, nil)
}

// applyWith is apply with extra writes that must land in the same
// transaction (a child's creation with its parent's ChildSpawned, the
// removal of a notice with the step it ends), and a function run after
// the commit, before the actions.
func (e *Engine) applyWith(ar *activeRun, ev core.Event, extra func(tx store.Tx) error, committed func()) {
	e.applyHand(ar, ev, extra, committed, nil)
}

// handoff lets the worker that ended a step run the next step of its run
// itself, without a trip through the queue and another worker's wake-up:
// a chain of steps stays on one goroutine.
type handoff struct {
	next *job
	// freeing: the worker asking will be free once this decision is
	// carried out; given: its worker went to a waiting step of the same
	// run, started in the same decision, so it must not be released
	freeing, given bool
}

// applyHand is applyWith; a step the decision starts may be handed to h.
// It reports whether the event was decided at all (committed, or
// abandoned when its commit failed).
func (e *Engine) applyHand(ar *activeRun, ev core.Event, extra func(tx store.Tx) error, committed func(), h *handoff) bool {
	ar.mu.Lock()
	p := e.decideAll(e.base, ar, ev)
	if p == nil {
		ar.mu.Unlock()
		if c, ok := ev.(core.ChildEnded); ok && extra != nil {
			// a notice for an attempt that is no longer current: drop it
			if err := e.c.write(extra); err != nil {
				e.log.Warn("cannot remove a stale notice", "run", ar.rec.ID, "child", c.ChildRunID, "error", err)
			}
		}
		return false
	}
	writes := p.writes
	if extra != nil {
		writes = chainWrites(p.writes, extra)
	}
	chain := []*decision{p}
	// a worker that ends a step and would give itself to a waiting step
	// of the same run starts it in the same commit
	if h != nil && h.freeing {
		if r := e.q.takeReadyOf(ar); r != nil {
			step := ar.prog.Workflow.Steps[r.index].ID
			if d := e.decideAll(e.base, ar, core.Dispatch{Step: step, At: e.now()}); d != nil {
				writes = chainWrites(writes, d.writes)
				chain = append(chain, d)
				h.given = true
			}
		}
	}
	// a run that ends tells the parent step waiting for it in the same
	// commit, and so on up while each parent ends too
	locked := []*activeRun{ar}
	for cur := ar; cur.m.Run.Status.Terminal() && cur.waiter != nil; {
		w := cur.waiter
		w.run.mu.Lock() // a child's lock, then its parent's: the only order
		locked = append(locked, w.run)
		n := outcomeNotice(&cur.rec)
		up := e.decideAll(e.base, w.run, core.ChildEnded{Step: w.step, Attempt: w.attempt, ChildRunID: cur.rec.ID, Status: n.Status, Output: n.Output, Error: n.Error, At: e.now()})
		if up == nil {
			break // no longer waiting: the notice stays for whoever asks
		}
		// the step is told here, so its wait key goes before the run's
		// end is written: no notice is made for it
		wait := waitKey(cur.rec.ID, w.run.rec.ID, w.index, w.attempt)
		writes = chainWrites(chainWrites(func(tx store.Tx) error { return tx.Delete(wait) }, writes), up.writes)
		chain = append(chain, up)
		cur = w.run
	}
	// queued under the runs' locks: each run's commits keep the order of
	// its decisions
	cm := e.c.submit(writes, locked...)
	for i := len(locked) - 1; i >= 0; i-- {
		locked[i].mu.Unlock()
	}
	if err := e.c.wait(cm); err != nil {
		for _, d := range chain {
			d.abandon(e)
			e.failCommit(d.ar, err)
		}
		return true // decided: abandon freed the workers its starts took
	}
	if committed != nil {
		committed()
	}
	p.hand = h
	for _, d := range chain {
		e.afterCommit(d)
	}
	return true
}

// decision is an event applied to a run's state, with the writes that
// persist it, waiting for its commit.
type decision struct {
	ar      *activeRun
	res     core.Result
	history []HistoryEvent
	rec     RunRecord
	writes  func(tx store.Tx) error
	// spawns are the children this decision creates, in the same commit
	spawns []*spawnPlan
	// hand, if set, may take one step this decision starts
	hand *handoff
}

// decideAll decides an event and, for every sub_workflow step that it
// starts, prepares the child's spawn and applies it to the run at once,
// so that the step's start, the child's creation and the child's own
// start (its children too, recursively) are one commit. The run's lock is
// held.
func (e *Engine) decideAll(ctx context.Context, ar *activeRun, ev core.Event) *decision {
	d := ar.decideLocked(e, ev)
	if d == nil {
		return nil
	}
	e.spawnInline(ctx, ar, d)
	return d
}

func (e *Engine) spawnInline(ctx context.Context, ar *activeRun, d *decision) {
	for i := 0; i < len(d.res.Actions); i++ {
		var index, attempt int
		switch a := d.res.Actions[i].(type) {
		case core.StartStep:
			index = ar.prog.Workflow.StepIndex(a.Step)
			if ar.prog.Workflow.Steps[index].Kind != dag.KindSubWorkflow {
				continue
			}
			attempt = a.Attempt
		case core.ReattachChild:
			if a.ChildRunID != "" {
				continue // the child runs on; its notice will come
			}
			// the spawn never committed: spawn now (the child id is
			// derived from the attempt, so it cannot start twice)
			index, attempt = ar.prog.Workflow.StepIndex(a.Step), a.Attempt
		default:
			continue
		}
		d.res.Actions[i] = nil // carried out here
		step := ar.prog.Workflow.Steps[index].ID
		plan, err := e.prepareSpawn(ctx, ar, index, attempt)
		var ev core.Event
		if err != nil {
			ev = core.StepEnded{Step: step, Attempt: attempt, Error: err.Error(), At: e.now()}
		} else {
			ev = plan.event
		}
		next := ar.decideLocked(e, ev)
		if next == nil {
			if plan != nil {
				plan.unlock()
			}
			continue
		}
		if plan != nil {
			d.spawns = append(d.spawns, plan)
			if plan.extra != nil {
				d.writes = chainWrites(d.writes, plan.extra)
			}
			if plan.child != nil {
				// active from now on: a cancel that finds the child in the
				// store once this commit lands also finds it here
				e.mu.Lock()
				e.active[plan.child.rec.ID] = plan.child
				e.mu.Unlock()
			}
			if t := ar.prog.Workflow.Steps[index].Timeout; t > 0 && plan.child != nil && !plan.child.rec.Detached {
				plan.timeout, plan.step, plan.attempt = t, step, attempt
			}
		}
		d.writes = chainWrites(d.writes, next.writes)
		d.history = append(d.history, next.history...)
		d.res.Actions = append(d.res.Actions, next.res.Actions...)
		d.spawns = append(d.spawns, next.spawns...)
		d.rec = ar.rec
	}
}

func chainWrites(a, b func(tx store.Tx) error) func(tx store.Tx) error {
	return func(tx store.Tx) error {
		if err := a(tx); err != nil {
			return err
		}
		return b(tx)
	}
}

// abandon releases what the spawns of a decision that did not commit
// hold.
func (d *decision) abandon(e *Engine) {
	// the workers its starts took are free again
	for _, a := range d.res.Actions {
		if s, ok := a.(core.StartStep); ok && d.ar.prog.Workflow.Step(s.Step).Kind != dag.KindSubWorkflow {
			e.dispatchReady(nil)
		}
	}
	for _, p := range d.spawns {
		p.unlock()
		if p.child != nil {
			e.mu.Lock()
			delete(e.active, p.child.rec.ID)
			e.mu.Unlock()
		}
		if p.first != nil {
			p.first.abandon(e)
		}
	}
}

// decideLocked applies an event to the run's state (its lock held) and
// encodes the changes. It returns nil when the event changed nothing (or
// the run is broken).
func (ar *activeRun) decideLocked(e *Engine, ev core.Event) *decision {
	if ar.broken != nil {
		return nil
	}
	res := ar.m.Apply(ev)
	ar.ended.Store(ar.m.Run.Status.Terminal())
	if len(res.Changed) == 0 && !res.RunChanged && len(res.History) == 0 && len(res.Actions) == 0 {
		return nil
	}
	for _, a := range res.Actions {
		if s, ok := a.(core.StartStep); ok {
			ar.prepareInputs(s.Step)
		}
	}
	writes, history, err := ar.encode(res)
	if err != nil {
		ar.broken = err
		e.log.Error("cannot encode a transition", "run", ar.rec.ID, "error", err)
		return nil
	}
	return &decision{ar: ar, res: res, history: history, rec: ar.rec, writes: writes}
}

// failCommit stops a run whose transition could not be committed: its
// state in memory is ahead of the store, so it takes no further step here;
// what was committed stays, and resume continues from there.
func (e *Engine) failCommit(ar *activeRun, err error) {
	if err != errEngineClosed && err != errRunStopped {
		e.log.Error("cannot commit a transition; the run stops here and can be resumed", "run", ar.rec.ID, "error", err)
	}
	ar.mu.Lock()
	if ar.broken == nil {
		ar.broken = err
	}
	ar.mu.Unlock()
	if err == errEngineClosed {
		return // the engine is closing: the run stays unfinished
	}
	e.mu.Lock()
	if e.active[ar.rec.ID] == ar {
		delete(e.active, ar.rec.ID)
	}
	e.mu.Unlock()
	ar.release()
}

// afterCommit tells observers and carries out the actions of a committed
// decision.
func (e *Engine) afterCommit(p *decision) {
	// the children created in this commit become active before anything
	// can look for them, and before the parent acts
	for _, sp := range p.spawns {
		sp.unlock()
		if sp.timeout > 0 {
			sp := sp
			e.afterFunc(sp.timeout, func() { e.subWorkflowTimedOut(p.ar, sp.step, sp.attempt, sp.timeout) })
		}
	}
	defer func() {
		for _, sp := range p.spawns {
			if sp.child != nil {
				e.afterCommit(sp.first)
				e.armRunTimeout(sp.child)
			}
		}
		// a child that ended in the commit that made it wrote its notice
		// before this run acted on the commit: read it now
		for _, sp := range p.spawns {
			if sp.endedAtOnce {
				if err := e.noticesFor(p.ar.rec.ID); err != nil {
					e.log.Error("cannot read notices", "run", p.ar.rec.ID, "error", err)
				}
				break
			}
		}
	}()
	rec := p.rec
	if e.log.IsDebug() {
		for _, h := range p.history {
			e.log.Debug("transition", "run", rec.ID, "workflow", rec.Workflow, "event", h.Type, "step", h.Step, "attempt", h.Attempt, "status", h.Status)
		}
	}
	if obs := e.opts.Observer; obs != nil {
		for _, h := range p.history {
			obs(&rec, h)
		}
	}
	e.perform(p.ar, p.res.Actions, p.hand)
}

// prepareInputs resolves a starting step's inputs; secret references
// become their values here and only here.
func (ar *activeRun) prepareInputs(stepID string) {
	i := ar.prog.Workflow.StepIndex(stepID)
	s := ar.prog.Workflow.Steps[i]
	in, err := ar.m.ResolveInputs(s.Inputs)
	if err != nil {
		ar.inputErrs[i] = err
		in = ar.m.Resolve(s.Inputs)
	} else {
		delete(ar.inputErrs, i)
	}
	ar.inputs[i] = in
}

// encode turns a result into the writes of one commit: the changed steps
// and run, the history events, logs of ended attempts, and the removal of
// the active marker when the run ended. State only moves forward: that is
// checked inside the transaction.
func (ar *activeRun) encode(res core.Result) (func(store.Tx) error, []HistoryEvent, error) {
	id := ar.rec.ID
	type write struct {
		key, val []byte
		check    func(old []byte) error
	}
	var ws []write
	for _, sid := range res.Changed {
		i := ar.prog.Workflow.StepIndex(sid)
		rec := ar.stepRecord(i)
		val, err := encodeStep(rec)
		if err != nil {
			return nil, nil, fmt.Errorf("step %s: %w", sid, err)
		}
		progress := stepProgress(rec)
		ws = append(ws, write{key: stepKey(id, i), val: val, check: func(old []byte) error {
			prev, err := stepHeader(old)
			if err != nil {
				return fmt.Errorf("step %s of run %s: %v", sid, id, err)
			}
			if progressLess(progress, prev) {
				return fmt.Errorf("step %s of run %s cannot move back (epoch, attempt, phase %v to %v)", sid, id, prev, progress)
			}
			return nil
		}})
		if log, ok := ar.logs[i]; ok {
			delete(ar.logs, i)
			if len(log) > 0 {
				ws = append(ws, write{key: logKey(id, i, rec.Attempt), val: log})
			}
		}
	}
	if res.RunChanged {
		ar.syncRun()
		val, err := json.Marshal(&ar.rec)
		if err != nil {
			return nil, nil, err
		}
		phase, epoch := runPhase(ar.rec.Status), ar.rec.Epoch
		ws = append(ws, write{key: runKey(id), val: val, check: func(old []byte) error {
			var prev RunRecord
			if err := json.Unmarshal(old, &prev); err != nil {
				return err
			}
			if epoch == prev.Epoch && phase < runPhase(prev.Status) || epoch < prev.Epoch {
				return fmt.Errorf("run %s cannot move back from %s to %s", id, prev.Status, ar.rec.Status)
			}
			return nil
		}})
	}
	history := make([]HistoryEvent, 0, len(res.History))
	for _, r := range res.History {
		ar.seq++
		h := HistoryEvent{Seq: ar.seq, Type: r.Type, Time: r.At.UTC(), Step: r.Step, Attempt: r.Attempt, Status: r.Status, Error: builtins.MaskString(r.Error, ar.masks), Child: r.Child, Detail: r.Detail}
		val, err := json.Marshal(&h)
		if err != nil {
			return nil, nil, err
		}
		history = append(history, h)
		ws = append(ws, write{key: histKey(id, h.Seq), val: val})
	}
	ended := ar.rec.Status.Terminal()
	var notice []byte
	if ended {
		n := outcomeNotice(&ar.rec)
		var err error
		if notice, err = json.Marshal(&n); err != nil {
			return nil, nil, err
		}
	}
	return func(tx store.Tx) error {
		for _, w := range ws {
			if w.check != nil {
				old, err := tx.Get(w.key)
				switch {
				case err == nil:
					if err := w.check(old); err != nil {
						return err
					}
				case err != store.ErrNotFound:
					return err
				}
			}
			if err := tx.Set(w.key, w.val); err != nil {
				return err
			}
		}
		if ended {
			if err := tx.Delete(activeKey(id)); err != nil {
				return err
			}
			return notifyWaiters(tx, id, notice)
		}
		return nil
	}, history, nil
}

// outcomeNotice is what a waiting step learns of an ended run.
func outcomeNotice(rec *RunRecord) noticeRecord {
	n := noticeRecord{Status: rec.Status, Output: rec.Output, Error: fromOptString(rec.Error)}
	if n.Status != core.RunSucceeded {
		n.Error = fmt.Sprintf("child run %s (%s) %s", rec.ID, rec.Workflow, n.Status)
		if rec.Error != nil {
			n.Error += ": " + *rec.Error
		}
	}
	return n
}

// notifyWaiters writes, in the transaction that ends a run, a notice for
// every step attempt waiting for it, and removes their wait keys: a run
// that ends while its parent's process is down is never lost.
func notifyWaiters(tx store.Tx, id string, notice []byte) error {
	type waiter struct {
		key     []byte
		run     string
		index   int
		attempt int
	}
	var ws []waiter
	err := tx.Scan(waitPrefix(id), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		run, index, attempt, ok := decodeWaitKey(id, k)
		if ok {
			ws = append(ws, waiter{key: append([]byte(nil), k...), run: run, index: index, attempt: attempt})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range ws {
		var n noticeRecord
		if err := json.Unmarshal(notice, &n); err != nil {
			return err
		}
		n.Index, n.Attempt = w.index, w.attempt
		val, err := json.Marshal(&n)
		if err != nil {
			return err
		}
		if err := tx.Set(noticeKey(w.run, id, w.index, w.attempt), val); err != nil {
			return err
		}
		if err := tx.Delete(w.key); err != nil {
			return err
		}
	}
	return nil
}

// syncRun copies the machine's run state into the record.
func (ar *activeRun) syncRun() {
	r := ar.m.Run
	ar.rec.Status = r.Status
	ar.rec.Output = builtins.MaskValue(r.Output, ar.masks)
	ar.rec.Error = optString(builtins.MaskString(r.Error, ar.masks))
	ar.rec.StartedAt = optTime(r.StartedAt)
	ar.rec.EndedAt = optTime(r.EndedAt)
	ar.rec.RerunAt = optTime(r.RerunAt)
	ar.rec.CancelRequested = r.CancelRequested
	ar.rec.TimedOut = r.TimedOut
}

// stepRecord is the stored form of step i's state, secrets masked.
func (ar *activeRun) stepRecord(i int) *StepRecord {
	st := ar.m.Run.Steps[i]
	def := ar.prog.Workflow.Steps[i]
	rec := &StepRecord{
		ID: st.ID, Kind: string(def.Kind), Status: st.Status, Attempt: st.Attempt,
		Output:      builtins.MaskValue(st.Output, ar.masks),
		Error:       optString(builtins.MaskString(st.Error, ar.masks)),
		ChildRunID:  optString(st.ChildRunID),
		StartedAt:   optTime(st.StartedAt),
		EndedAt:     optTime(st.EndedAt),
		RetriesUsed: st.RetriesUsed,
		EngineStops: st.EngineStops,
		RetryAt:     optTime(st.RetryAt),
		Epoch:       ar.epochs[i],
	}
	if c, ok := ar.children[i]; ok {
		rec.ChildWorkflow, rec.ChildVersion, rec.ChildHash = c.workflow, c.version, c.hash
	}
	if in, ok := ar.inputs[i]; ok && st.Attempt > 0 {
		rec.Inputs = builtins.MaskValue(maskSecretRefs(in), ar.masks)
	}
	return rec
}

// maskSecretRefs shows secret references as *** in records.
func maskSecretRefs(v any) any {
	return dag.ReplaceRefs(v, func(r *dag.Ref) any {
		if r.Kind == dag.RefSecret {
			return "***"
		}
		return nil
	})
}

// perform carries out committed actions. With h, the worker that asks
// takes the queued step that comes first once the started ones are queued.
func (e *Engine) perform(ar *activeRun, actions []core.Action, h *handoff) {
	var started []*job
	defer func() {
		if h != nil && h.next == nil {
			h.next = e.q.pushAndTake(started)
			return
		}
		for _, j := range started {
			e.q.push(j)
		}
	}()
	for _, a := range actions {
		switch a := a.(type) {
		case nil:
			// carried out while deciding (a spawn)
		case core.StartStep:
			started = append(started, &job{run: ar, index: ar.prog.Workflow.StepIndex(a.Step), attempt: a.Attempt, priority: ar.stepPriority(a.Step)})
		case core.AwaitWorker:
			i := ar.prog.Workflow.StepIndex(a.Step)
			j := &job{run: ar, index: i, priority: ar.stepPriority(a.Step)}
			if e.q.await(j) {
				// a worker was freed since the decision: it is this step's
				e.dispatch(j, nil)
			}
		case core.ArmTimer:
			step, attempt, at := a.Step, a.Attempt, a.At
			e.afterFunc(at.Sub(e.now()), func() {
				e.apply(ar, core.RetryDue{Step: step, Attempt: attempt, At: e.now()})
			})
		case core.StopStep:
			index := ar.prog.Workflow.StepIndex(a.Step)
			if ar.prog.Workflow.Steps[index].Kind == dag.KindSubWorkflow {
				// its child is cancelled with the tree, and its notice ends
				// the step; a run reused through an idempotency key is not
				// ours to cancel, so the step ends without it
				go e.stopSubWorkflow(ar, index, a.Attempt)
				continue
			}
			ar.stop(index, a.Attempt)
		case core.ReattachChild:
			// a child that was spawned runs on by itself, and its notice
			// reaches the step through the watch; an unspawned one was
			// spawned while deciding. The step's timeout still counts
			// from its start, as before the process stopped.
			if a.ChildRunID != "" {
				e.armStepTimeout(ar, a.Step, a.Attempt)
			}
		case core.EndRun:
			e.finish(ar)
		}
	}
}

// armStepTimeout arms the timeout of a running blocking sub_workflow
// step whose child was spawned before the process stopped, counted from
// the step's start.
func (e *Engine) armStepTimeout(ar *activeRun, step string, attempt int) {
	def := ar.prog.Workflow.Step(step)
	if def == nil || def.Timeout <= 0 || def.Child == nil || def.Child.Detach {
		return
	}
	ar.mu.Lock()
	started := ar.m.StepState(step).StartedAt
	ar.mu.Unlock()
	left := def.Timeout
	if !started.IsZero() {
		left = started.Add(def.Timeout).Sub(e.now())
	}
	e.afterFunc(left, func() { e.subWorkflowTimedOut(ar, step, attempt, def.Timeout) })
}

// stepPriority is the step's own priority, else the run's.
func (ar *activeRun) stepPriority(stepID string) int {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	return ar.priorityLocked(ar.prog.Workflow.StepIndex(stepID))
}

// priorityLocked is step i's priority; the run's lock is held.
func (ar *activeRun) priorityLocked(i int) int {
	if i >= 0 && i < len(ar.prog.Workflow.Steps) {
		switch p := ar.prog.Workflow.Steps[i].Priority.(type) {
		case int64:
			return int(p)
		case *dag.Ref:
			if n, ok := ar.m.Resolve(p).(int64); ok && n >= 0 && n <= 99 {
				return int(n)
			}
		}
	}
	return ar.rec.Priority
}

// admitter lets the run's machine take workers from the engine's pool.
func (e *Engine) admitter(ar *activeRun) {
	ar.m.Admit = func(i int, force bool) bool { return e.q.admit(force) }
	ar.m.Priority = ar.priorityLocked
}

// dispatchReady gives the worker that a finished job frees to the steps
// waiting for one, the first by priority, until one of them starts.
// h, if set, may take the step.
func (e *Engine) dispatchReady(h *handoff) {
	for r := e.q.release(); r != nil; r = e.q.release() {
		if e.started(r, h) {
			return
		}
	}
}

// dispatch starts a waiting step with the worker taken for it; if the
// step no longer waits, the worker goes to the next one.
func (e *Engine) dispatch(j *job, h *handoff) {
	if !e.started(j, h) {
		e.dispatchReady(h)
	}
}

// started applies Dispatch to a waiting step with the worker taken for
// it, and reports whether that worker is spoken for: the step started, or
// its Dispatch was decided but its commit failed and abandoning it freed
// the worker again. A step cancelled meanwhile decides nothing, and while
// the engine closes nothing starts.
func (e *Engine) started(j *job, h *handoff) bool {
	if e.base.Err() != nil {
		return false
	}
	step := j.run.prog.Workflow.Steps[j.index].ID
	return e.applyHand(j.run, core.Dispatch{Step: step, At: e.now()}, nil, nil, h)
}

func (ar *activeRun) stop(i, attempt int) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if a, ok := ar.attempts[i]; ok && a.attempt == attempt {
		a.cancel()
	}
}

// finish forgets an ended run: memory stays flat as runs accumulate.
func (e *Engine) finish(ar *activeRun) {
	e.mu.Lock()
	delete(e.active, ar.rec.ID)
	e.mu.Unlock()
	ar.release()
}
