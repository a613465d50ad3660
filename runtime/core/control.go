package core

// Events from outside the run's own progress: a cancel, a rerun, the
// engine coming back after a stop.

import (
	"fmt"
	"strings"
	"time"
)

func (m *Machine) cancel(r *result, timedOut bool) {
	if m.Run.CancelRequested {
		return
	}
	m.Run.CancelRequested = true
	m.Run.TimedOut = timedOut
	r.RunChanged = true
	r.record(Record{Type: RecCancelRequested})
	for i, st := range m.Run.Steps {
		switch st.Status {
		case StepRunning:
			r.Actions = append(r.Actions, StopStep{Step: st.ID, Attempt: st.Attempt, ChildRunID: st.ChildRunID})
		case StepPending:
			m.setStatus(i, StepCancelled)
			st.EndedAt, st.RetryAt = r.at, time.Time{}
			r.change(i, st.ID)
			r.record(Record{Type: RecStepEnded, Step: st.ID, Attempt: st.Attempt, Status: string(StepCancelled)})
		}
	}
}

func (m *Machine) rerun(r *result, ev Rerun) {
	run := m.Run
	run.Status, run.EndedAt, run.Output, run.Error = RunRunning, time.Time{}, nil, ""
	run.CancelRequested, run.TimedOut = false, false
	if run.StartedAt.IsZero() {
		run.StartedAt = r.at
	}
	run.RerunAt = r.at
	r.RunChanged = true
	r.record(Record{Type: RecRerun, Step: strings.Join(ev.Reopen, ","), Detail: ev.Detail})
	for _, id := range ev.Reset {
		i, ok := m.find(id)
		if !ok {
			continue
		}
		st := run.Steps[i]
		m.setStatus(i, StepPending)
		st.RetryAt, st.RetriesUsed, st.Ready, st.EngineStops = time.Time{}, 0, false, 0
		st.Output, st.Error, st.ChildRunID = nil, "", ""
		st.StartedAt, st.EndedAt = time.Time{}, time.Time{}
		r.change(i, st.ID)
	}
	for _, id := range ev.Reopen {
		i, ok := m.find(id)
		if !ok {
			continue
		}
		st := run.Steps[i]
		m.setStatus(i, StepRunning)
		st.RetryAt = time.Time{}
		st.Attempt++
		st.Output, st.Error = nil, ""
		st.StartedAt, st.EndedAt = r.at, time.Time{}
		r.change(i, st.ID)
		r.record(Record{Type: RecStepStarted, Step: st.ID, Attempt: st.Attempt, Child: st.ChildRunID, Detail: "waiting for the rerun of its child"})
	}
	for i := range run.Steps {
		m.evaluate(r, i)
	}
}

func (m *Machine) resume(r *result) {
	switch m.Run.Status {
	case RunPending:
		if !m.Run.CancelRequested {
			m.start(r, "")
			return
		}
	case RunRunning:
	default:
		return
	}
	r.record(Record{Type: RecRunResumed})
	for i, st := range m.Run.Steps {
		switch {
		case st.Status == StepRunning && m.Run.CancelRequested:
			// the cancel was written before the process stopped: what was
			// running died with it, and nothing starts again
			m.setStatus(i, StepCancelled)
			st.EndedAt = r.at
			r.change(i, st.ID)
			r.record(Record{Type: RecStepEnded, Step: st.ID, Attempt: st.Attempt, Status: string(StepCancelled)})
		case st.Status == StepPending && m.Run.CancelRequested:
			m.setStatus(i, StepCancelled)
			st.EndedAt, st.RetryAt = r.at, time.Time{}
			r.change(i, st.ID)
			r.record(Record{Type: RecStepEnded, Step: st.ID, Attempt: st.Attempt, Status: string(StepCancelled)})
		case st.Status == StepRunning && m.W.Steps[i].Kind.RunsChildren():
			// a sub_workflow waits for its child again; a for_each or loop
			// keeps its attempt, whose children have derived ids
			r.Actions = append(r.Actions, ReattachChild{Step: st.ID, Attempt: st.Attempt, ChildRunID: st.ChildRunID, StartedAt: st.StartedAt})
		case st.Status == StepRunning && m.stoppedTooOften(st):
			m.setStatus(i, StepFailed)
			st.EndedAt, st.Output = r.at, nil
			st.Error = fmt.Sprintf("the engine stopped %d times while this step ran; it is not started again (rerun the run once the step is fixed)", st.EngineStops)
			r.change(i, st.ID)
			r.record(Record{Type: RecStepEnded, Step: st.ID, Attempt: st.Attempt, Status: string(StepFailed), Error: st.Error})
			m.propagate(r, i)
		case st.Status == StepRunning:
			// the attempt died with the process: run it again as a new
			// attempt, which does not use up a retry
			if m.Pooled {
				// its worker died with it: it takes one at once, free or not
				r.Took++
				r.free = max(r.free-1, 0)
			}
			m.startStep(r, i)
		case st.Status == StepPending && !st.RetryAt.IsZero():
			r.Actions = append(r.Actions, ArmTimer{Step: st.ID, Attempt: st.Attempt, At: st.RetryAt})
		}
	}
	if m.Run.CancelRequested {
		return
	}
	for i := range m.W.Steps {
		m.evaluate(r, i)
	}
}

// stoppedTooOften counts one more engine stop under the running step st
// and reports whether that makes too many in a row.
func (m *Machine) stoppedTooOften(st *Step) bool {
	st.EngineStops++
	limit := m.MaxEngineStops
	if limit <= 0 {
		limit = DefaultMaxEngineStops
	}
	return st.EngineStops >= limit
}
