package runtime

// This file: deciding. An event is applied to a run's machine under the
// run's lock, with the spawns it starts, and queued for commit as a list of
// commits in order; once committed, the decision is carried out (perform.go).

import (
	"errors"
	"fmt"

	"context"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

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
func (e *Engine) applyWith(ar *activeRun, ev core.Event, extra []journal.Op, committed func()) {
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
func (e *Engine) applyHand(ar *activeRun, ev core.Event, extra []journal.Op, committed func(), h *handoff) bool {
	ar.mu.Lock()
	p := e.decideAll(e.base, ar, ev)
	if p == nil {
		c, notice := ev.(core.ChildEnded)
		var drop []*journal.Commit
		if notice && extra != nil && ar.broken == nil {
			// a notice for an attempt that is no longer current: drop it,
			// after the run's commits so far and only if they all land.
			// The step may have ended here in a commit still being
			// written; if that fails, the run stops and the notice stays
			// to tell the resume. A stopped run drops nothing.
			drop = e.c.submitAll([][]journal.Op{extra}, ar)
		}
		ar.mu.Unlock()
		if drop != nil {
			if err := e.c.waitAll(drop); err != nil && !errors.Is(err, errRunStopped) && !errors.Is(err, errEngineClosed) {
				e.log.Warn("cannot remove a stale notice", "run", ar.rec.ID, "child", c.ChildRunID, "error", err)
			}
		}
		return false
	}
	units := p.units()
	if extra != nil {
		units[0] = append(units[0], extra...)
	}
	chain := make([]*decision, 1, 4)
	chain[0] = p
	// a worker that ends a step and would give itself to a waiting step
	// of the same run starts it in the same commit
	if h != nil && h.freeing {
		if r := e.q.takeReadyOf(ar); r != nil {
			if d := e.decideAll(e.base, ar, core.Dispatch{Step: r.def.ID, At: e.now()}); d != nil {
				units = append(units, d.units()...)
				chain = append(chain, d)
				h.given = true
			}
		}
	}
	// a run that ends tells the parent step waiting for it in the same
	// commit, and so on up while each parent ends too
	locked := []*activeRun{ar}
	for cur := ar; cur.m.RunView().Status.Terminal() && cur.waiter != nil; {
		w := cur.waiter
		w.run.mu.Lock() // a child's lock, then its parent's: the only order
		locked = append(locked, w.run)
		n := journal.OutcomeOf(&cur.rec)
		up := e.decideAll(e.base, w.run, core.ChildEnded{Step: w.step, Attempt: w.attempt, ChildRunID: cur.rec.ID, Status: n.Status, Output: n.Output, Error: n.Error, At: e.now()})
		if up == nil {
			break // no longer waiting: the notice stays for whoever asks
		}
		// the run's end writes a notice for the step, as for any waiter;
		// the step is told here, so its transition removes the notice.
		// Most often both land in one transaction; if the run's writes
		// took more, a crash between them leaves the notice to tell it.
		told := journal.DropNotice(w.run.rec.ID, cur.rec.ID, w.index, w.attempt)
		units = append(units, append([]journal.Op{told}, up.ops...))
		units = append(units, up.then...)
		chain = append(chain, up)
		cur = w.run
	}
	// queued under the runs' locks: each run's commits keep the order of
	// its decisions
	cms := e.c.submitAll(units, locked...)
	for i := len(locked) - 1; i >= 0; i-- {
		locked[i].mu.Unlock()
	}
	// a worker that ends a step and would give itself to a waiting step
	// of another run starts that step now, so that both commit in one
	// transaction (the end first) instead of one after the other
	var other *decision
	var otherCms []*journal.Commit
	if h != nil && h.freeing && !h.given {
		if r := e.q.takeReady(); r != nil {
			r.run.mu.Lock()
			if e.base.Err() == nil {
				other = e.decideAll(e.base, r.run, core.Dispatch{Step: r.def.ID, At: e.now()})
			}
			if other != nil {
				otherCms = e.c.submitAll(other.units(), r.run)
				h.given = true
			}
			// else the step no longer waits (cancelled, or the engine
			// closes): the worker goes on to the next one, as from startWaiting
			r.run.mu.Unlock()
		}
	}
	err := e.c.waitAll(cms)
	if err != nil {
		for _, d := range chain {
			d.abandon(e)
			e.failCommit(d.ar, err)
		}
	} else {
		if committed != nil {
			committed()
		}
		p.hand = h
		for _, d := range chain {
			e.afterCommit(d)
		}
	}
	if other != nil {
		if err := e.c.waitAll(otherCms); err != nil {
			other.abandon(e)
			e.failCommit(other.ar, err)
		} else {
			e.afterCommit(other)
		}
	}
	return true // decided: abandon freed the workers its starts took
}

// decision is an event applied to a run's state, with the writes that
// persist it, waiting for its commit.
type decision struct {
	ar      *activeRun
	res     core.Result
	history []HistoryEvent
	rec     RunRecord
	// ops persist the transition; then are the commits that follow it,
	// in order: each spawn's child creation with the parent's
	// ChildSpawned, the child's own spawns after it
	ops  []journal.Op
	then [][]journal.Op
	// spawns are the children this decision creates; later are those it
	// leaves to spawnLater, which must read the store first
	spawns []*spawnPlan
	later  []spawnRequest
	// hand, if set, may take one step this decision starts
	hand *handoff
	// prog is the run's program as the decision saw it; jobs are the
	// steps it starts on workers or leaves waiting for one, in the order
	// of their actions (handOver)
	prog *lang.Program
	jobs []*job
	// jobBuf holds jobs when there is one (most decisions start one step)
	jobBuf [1]*job
}

// job finds the job of a StartStep or AwaitWorker action of d, looking on
// from the last one found (the jobs are in the order of the actions).
func (d *decision) job(step string, attempt int, await bool, from *int) *job {
	for k := *from; k < len(d.jobs); k++ {
		if j := d.jobs[k]; j.def.ID == step && j.await == await && (await || j.attempt == attempt) {
			*from = k + 1
			return j
		}
	}
	return nil
}

// units hands over the decision's commits, its transition, then what
// follows, and lets go of them: once the committer wrote one, its ops
// are garbage (a decision of 10,000 spawns holds tens of MB of them).
func (d *decision) units() [][]journal.Op {
	u := append([][]journal.Op{d.ops}, d.then...)
	d.release()
	return u
}

func (d *decision) release() {
	d.ops, d.then = nil, nil
	for _, sp := range d.spawns {
		sp.ops = nil
		if sp.first != nil {
			sp.first.release()
		}
	}
}

// decideAll decides an event and, for every sub_workflow step that it
// starts, prepares the child's spawn and applies it to the run at once.
// Each spawn is one commit after the decision's own: the child's creation
// and first transition with the parent's ChildSpawned; the child's own
// spawns follow it, recursively. The committer packs them into as few
// transactions as the store's limits allow (one, for a few children).
// The run's lock is held.
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
		var req spawnRequest
		switch a := d.res.Actions[i].(type) {
		case core.StartStep:
			index := ar.prog.Workflow.StepIndex(a.Step)
			if ar.prog.Workflow.Steps[index].Kind != dag.KindSubWorkflow {
				continue
			}
			req = ar.requestSpawn(index, a.Attempt, a.StartedAt, false)
		case core.ReattachChild:
			if a.ChildRunID != "" || ar.prog.Workflow.Step(a.Step).Kind != dag.KindSubWorkflow {
				continue // the child runs on; its notice will come (dynamic steps: perform)
			}
			// the spawn never committed: spawn now (the child id is
			// derived from the attempt, so it cannot start twice)
			req = ar.requestSpawn(ar.prog.Workflow.StepIndex(a.Step), a.Attempt, a.StartedAt, true)
		default:
			continue
		}
		d.res.Actions[i] = nil // carried out here, or by spawnLater
		reads, ok := e.cachedReads(ar, &req)
		if !ok {
			// the store must be read first: after this commit, without
			// the run's lock
			d.later = append(d.later, req)
			continue
		}
		e.spawnOne(ctx, ar, d, req, reads)
	}
}

// spawnOne plans one spawn and applies its event (ChildSpawned, or the
// step's failure) to the run, adding both to d; the run's lock is held.
func (e *Engine) spawnOne(ctx context.Context, ar *activeRun, d *decision, req spawnRequest, reads spawnReads) {
	index, attempt := req.index, req.attempt
	step := ar.prog.Workflow.Steps[index].ID
	plan, err := e.planSpawn(ctx, ar, req, reads)
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
		return
	}
	var unit []journal.Op
	if plan != nil {
		d.spawns = append(d.spawns, plan)
		unit = plan.ops
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
	d.then = append(d.then, append(unit, next.ops...))
	if plan != nil && plan.first != nil {
		d.then = append(d.then, plan.first.then...)
	}
	d.then = append(d.then, next.then...)
	d.history = append(d.history, next.history...)
	d.res.Actions = append(d.res.Actions, next.res.Actions...)
	d.jobs = append(d.jobs, next.jobs...)
	d.spawns = append(d.spawns, next.spawns...)
	d.later = append(d.later, next.later...)
	d.rec, d.prog = ar.rec, next.prog
}

// spawnLater makes the spawns a committed decision left to it: what they
// need from the store is read first, with no lock held, then each is
// planned and applied under the run's lock, as spawnInline does, and
// committed. A run whose cancel came in between makes none of them: the
// steps end cancelled (a spawn is never decided after its run's cancel).
func (e *Engine) spawnLater(ar *activeRun, reqs []spawnRequest) {
	ctx := e.base
	reads := make([]spawnReads, len(reqs))
	for i := range reqs {
		reads[i] = e.readSpawn(ctx, ar, &reqs[i])
	}
	ar.mu.Lock()
	d := &decision{ar: ar, rec: ar.rec, prog: ar.prog}
	for i, req := range reqs {
		if ctx.Err() != nil || ar.broken != nil {
			break // resume spawns it
		}
		if ar.m.RunView().CancelRequested {
			step := ar.prog.Workflow.Steps[req.index].ID
			if next := ar.decideLocked(e, core.StepEnded{Step: step, Attempt: req.attempt, Error: "cancelled", At: e.now()}); next != nil {
				d.merge(next)
			}
			continue
		}
		e.spawnOne(ctx, ar, d, req, reads[i])
	}
	// the steps these decisions start spawn in turn
	e.spawnInline(ctx, ar, d)
	if len(d.then) == 0 {
		ar.mu.Unlock()
		return
	}
	cms := e.c.submitAll(d.units()[1:], ar)
	ar.mu.Unlock()
	if err := e.c.waitAll(cms); err != nil {
		d.abandon(e)
		e.failCommit(ar, err)
		return
	}
	e.afterCommit(d)
}

// merge adds a decision of the same run, taken after d, to d.
func (d *decision) merge(next *decision) {
	d.then = append(d.then, next.ops)
	d.then = append(d.then, next.then...)
	d.history = append(d.history, next.history...)
	d.res.Actions = append(d.res.Actions, next.res.Actions...)
	d.jobs = append(d.jobs, next.jobs...)
	d.spawns = append(d.spawns, next.spawns...)
	d.later = append(d.later, next.later...)
	d.rec, d.prog = next.rec, next.prog
}

// abandon releases what the spawns of a decision that did not commit
// hold.
func (d *decision) abandon(e *Engine) {
	// the workers its starts took are free again
	for _, a := range d.res.Actions {
		if s, ok := a.(core.StartStep); ok && !d.prog.Workflow.Step(s.Step).Kind.RunsChildren() {
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
	// the free workers the event may need are offered to it, and those it
	// did not take go back
	offered := e.q.reserve(ar.m.Demand(ev))
	res := ar.m.Apply(ev, core.Inputs{Free: offered})
	if sp, ok := ev.(core.StepsPlanned); ok && ar.m.Workflow() != ar.prog.Workflow {
		ar.adoptPlan(sp) // a planner's steps joined the run (dynamic_planner.go)
	}
	ar.ended.Store(ar.m.RunView().Status.Terminal())
	if e.q.settle(offered, res.Took) {
		go e.wakeReady()
	}
	if len(res.Changed) == 0 && !res.RunChanged && len(res.History) == 0 && len(res.Actions) == 0 {
		return nil
	}
	d := &decision{ar: ar, prog: ar.prog}
	d.jobs = ar.handOver(res, d.jobBuf[:0])
	ops, history, err := ar.encode(res)
	if err != nil {
		// nothing it started will run: its workers go back
		if e.q.settle(res.Took, 0) {
			go e.wakeReady()
		}
		ar.broken = err
		e.log.Error("cannot encode a transition", "run", ar.rec.ID, "error", err)
		return nil
	}
	// what is left of the result is its actions: the changes and the
	// core's records are in ops and history now (a decision of 10,000
	// spawns keeps 10,000 child decisions until it commits)
	res.Changed, res.History = nil, nil
	d.res, d.history, d.rec, d.ops = res, history, ar.rec, ops
	return d
}

// handOver takes, from the run's state as the decision leaves it (the
// run's lock held), everything the shell needs to carry out the result's
// actions later, without the lock and without looking at the machine
// again: each step it starts gets its resolved inputs (prepareInputs) and
// a job holding them, its definition and its priority, registered as the
// step's current attempt; each step left waiting for a worker gets its
// job for the ready queue; each running attempt it stops is marked, so
// that a job not yet picked up by a worker ends cancelled instead of
// running; and a pooled step whose attempt the decision ended otherwise
// is no longer current. The jobs, appended to jobs, are in the order of
// their actions.
func (ar *activeRun) handOver(res core.Result, jobs []*job) []*job {
	w := ar.prog.Workflow
	for _, a := range res.Actions {
		switch a := a.(type) {
		case core.StartStep:
			ar.prepareInputs(a.Step)
			i := w.StepIndex(a.Step)
			def := w.Steps[i]
			if def.Kind.RunsChildren() {
				continue // a spawn (spawnInline) or a driven fan-out (startDynamic)
			}
			j := &job{run: ar, prog: ar.prog, def: def, index: i, attempt: a.Attempt, priority: ar.m.StepPriority(i), inputErr: ar.inputErrs[i]}
			j.inputs, _ = ar.inputs[i].(map[string]any)
			if len(def.Env) > 0 {
				j.env = ar.envs[i]
			}
			j.at = attemptState{attempt: a.Attempt, job: j}
			ar.attempts[i] = &j.at
			jobs = append(jobs, j)
		case core.AwaitWorker:
			i := w.StepIndex(a.Step)
			jobs = append(jobs, &job{run: ar, prog: ar.prog, def: w.Steps[i], index: i, priority: ar.m.StepPriority(i), await: true})
		case core.StopStep:
			if at, ok := ar.attempts[w.StepIndex(a.Step)]; ok && at.attempt == a.Attempt {
				at.stopped = true
			}
		}
	}
	for _, id := range res.Changed {
		i := w.StepIndex(id)
		at, ok := ar.attempts[i]
		if !ok || at.job == nil {
			continue
		}
		if !ar.m.RunningAt(i, at.attempt) {
			delete(ar.attempts, i) // ended without its worker: its job does nothing
		}
	}
	return jobs
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
	w := ar.waiter
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
	// A blocking parent waiting for this run would wait for ever: its
	// notice cannot come from a run that stopped here. The parent stops
	// too (its own state is all committed), so that whoever waits for the
	// tree learns it stopped, and resume continues both.
	if w != nil {
		p := w.run
		p.mu.Lock()
		waiting := p.broken == nil && p.m.RunningAt(w.index, w.attempt)
		p.mu.Unlock()
		if waiting {
			e.failCommit(p, fmt.Errorf("its child run %s stopped: %w", ar.rec.ID, err))
		}
	}
}
