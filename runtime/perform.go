package runtime

// This file: carrying out a committed decision's actions: steps to the
// worker queue, timers, stops, a run's end.

import (
	"time"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
)

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
	if len(p.later) > 0 {
		// spawns that read the store first, without the run's lock
		go e.spawnLater(p.ar, p.later)
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
	rec := &p.rec // the run as the decision left it, written no more
	if e.log.IsDebug() {
		for _, h := range p.history {
			e.log.Debug("transition", "run", rec.ID, "workflow", rec.Workflow, "event", h.Type, "step", h.Step, "attempt", h.Attempt, "status", h.Status)
		}
	}
	if obs := e.opts.Observer; obs != nil {
		for _, h := range p.history {
			obs(rec, h)
		}
	}
	e.perform(p, p.hand)
}

// perform carries out a committed decision's actions, with what the
// decision handed over (its program, its jobs): nothing here looks at the
// run's machine. With h, the worker that asks takes the queued step that
// comes first once the started ones are queued.
func (e *Engine) perform(d *decision, h *handoff) {
	ar, w := d.ar, d.prog.Workflow
	// the started jobs are gathered in d.jobs itself: each is taken from
	// a place at or after the one it is written to, and d.jobs is not
	// read again once performed
	started := d.jobs[:0]
	defer func() {
		if h != nil && h.next == nil {
			h.next = e.q.pushAndTake(started)
			return
		}
		for _, j := range started {
			e.q.push(j)
		}
	}()
	next := 0 // d.jobs are in the order of the actions
	for _, a := range d.res.Actions {
		switch a := a.(type) {
		case nil:
			// carried out while deciding (a spawn)
		case core.StartStep:
			if i := w.StepIndex(a.Step); w.Steps[i].Kind.SpawnsMany() {
				e.startDynamic(ar, i, a.Attempt, true) // dynamic.go; takes no worker
				continue
			}
			if j := d.job(a.Step, a.Attempt, false, &next); j != nil {
				started = append(started, j)
			} else {
				e.log.Error("a started step has no job (a bug): it stays running until resume", "run", ar.rec.ID, "step", a.Step, "attempt", a.Attempt)
			}
		case core.AwaitWorker:
			j := d.job(a.Step, 0, true, &next)
			if j == nil {
				e.log.Error("a waiting step has no job (a bug): it stays pending until resume", "run", ar.rec.ID, "step", a.Step)
				continue
			}
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
			index := w.StepIndex(a.Step)
			if w.Steps[index].Kind == dag.KindSubWorkflow {
				// its child is cancelled with the tree, and its notice ends
				// the step; a run reused through an idempotency key is not
				// ours to cancel, so the step ends without it
				go e.stopSubWorkflow(ar, a)
				continue
			}
			ar.stop(index, a.Attempt)
		case core.ReattachChild:
			if i := w.StepIndex(a.Step); w.Steps[i].Kind.SpawnsMany() {
				e.startDynamic(ar, i, a.Attempt, false)
				continue
			}
			// a child that was spawned runs on by itself, and its notice
			// reaches the step through the watch; an unspawned one was
			// spawned while deciding. The step's timeout still counts
			// from its start, as before the process stopped.
			if a.ChildRunID != "" {
				e.armStepTimeout(ar, w.Step(a.Step), a.Attempt, a.StartedAt)
			}
		case core.EndRun:
			e.finish(ar)
		}
	}
}

// admitter makes the run's task and shell steps need workers from the
// engine's pool (each decision is offered the free ones, see
// decideLocked), and tells the machine the run's priority.
func (e *Engine) admitter(ar *activeRun) {
	ar.m.Pooled = true
	ar.m.Run.Priority = ar.rec.Priority
}

// wakeReady gives workers that became free to the steps waiting for one,
// while both last: a decision offered workers it did not take gives them
// back this way (it cannot dispatch under its run's lock).
func (e *Engine) wakeReady() {
	for j := e.q.takeIfFree(); j != nil; j = e.q.takeIfFree() {
		e.dispatch(j, nil)
	}
}

// dispatchReady gives the worker that a finished job frees to the steps
// waiting for one, the first by priority, until one of them starts.
// h, if set, may take the step.
func (e *Engine) dispatchReady(h *handoff) {
	for r := e.q.release(); r != nil; r = e.q.release() {
		if e.startWaiting(r, h) {
			return
		}
	}
}

// dispatch starts a waiting step with the worker taken for it; if the
// step no longer waits, the worker goes to the next one.
func (e *Engine) dispatch(j *job, h *handoff) {
	if !e.startWaiting(j, h) {
		e.dispatchReady(h)
	}
}

// startWaiting applies Dispatch to a waiting step with the worker taken for
// it, and reports whether that worker is spoken for: the step started, or
// its Dispatch was decided but its commit failed and abandoning it freed
// the worker again. A step cancelled meanwhile decides nothing, and while
// the engine closes nothing starts.
func (e *Engine) startWaiting(j *job, h *handoff) bool {
	if e.base.Err() != nil {
		return false
	}
	return e.applyHand(j.run, core.Dispatch{Step: j.def.ID, At: e.now()}, nil, nil, h)
}

func (ar *activeRun) stop(i, attempt int) {
	ar.mu.Lock()
	defer ar.mu.Unlock()
	if a, ok := ar.attempts[i]; ok && a.attempt == attempt {
		a.stopped = true
		if a.cancel != nil {
			a.cancel() // running: its body stops; else it never runs (execute)
		}
	}
}

// finish forgets an ended run: memory stays flat as runs accumulate.
func (e *Engine) finish(ar *activeRun) {
	e.mu.Lock()
	delete(e.active, ar.rec.ID)
	e.mu.Unlock()
	ar.release()
}

// armStepTimeout arms the timeout of a running blocking sub_workflow
// step whose child was spawned before the process stopped, counted from
// the step's start.
func (e *Engine) armStepTimeout(ar *activeRun, def *dag.Step, attempt int, started time.Time) {
	if def == nil || def.Timeout <= 0 || def.Child == nil || def.Child.Detach {
		return
	}
	left := def.Timeout
	if !started.IsZero() {
		left = started.Add(def.Timeout).Sub(e.now())
	}
	e.afterFunc(left, func() { e.subWorkflowTimedOut(ar, def.ID, attempt, def.Timeout) })
}
