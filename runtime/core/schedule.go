package core

import (
	"sort"
	"time"

	"github.com/flowscript/flowscript/dag"
)

// This file: which steps start, and when (dependencies met, a worker
// free, the attempt begun).

// dispatch starts a Ready step for which a worker is now free.
func (m *Machine) dispatch(r *result, ev Dispatch) {
	i, ok := m.find(ev.Step)
	if !ok {
		return
	}
	st := m.Run.Steps[i]
	if !st.Ready || st.Status != StepPending || m.Run.CancelRequested {
		st.Ready = false
		return
	}
	st.Ready = false
	m.startStep(r, i)
}

// begin starts step i, or, when the engine admits steps, asks for it
// once the event is applied (admitAll).
func (m *Machine) begin(r *result, i int) {
	if !m.Pooled || !pooled(m.W.Steps[i]) {
		m.Run.Steps[i].Ready = false
		m.startStep(r, i)
		return
	}
	r.toStart = append(r.toStart, i) // once or more: admitAll starts it once
}

// admitAll starts the steps that may start, by priority, while Admit
// finds workers for them; the others stay pending, Ready.
func (m *Machine) admitAll(r *result) {
	if len(r.toStart) == 0 {
		return
	}
	if len(r.toStart) > 1 {
		sort.SliceStable(r.toStart, func(a, b int) bool { return m.StepPriority(r.toStart[a]) > m.StepPriority(r.toStart[b]) })
	}
	for _, i := range r.toStart {
		st := m.Run.Steps[i]
		if st.Status != StepPending || st.Ready || m.Run.CancelRequested {
			continue // started or left waiting by an earlier entry
		}
		if r.free > 0 {
			r.free--
			r.Took++
			st.Ready = false
			m.startStep(r, i)
		} else if !st.Ready {
			st.Ready = true
			r.Actions = append(r.Actions, AwaitWorker{Step: st.ID})
		}
	}
	r.toStart = r.toStart[:0]
}

// propagate re-evaluates the steps that wait for step i.
func (m *Machine) propagate(r *result, i int) {
	for _, j := range m.dependents[i] {
		m.evaluate(r, j)
	}
}

// evaluate starts step i if its conditions are met, or skips it (and
// what waits for it) if they can no longer be.
func (m *Machine) evaluate(r *result, i int) {
	st := m.Run.Steps[i]
	// a pending step with attempts behind it either waits for its retry
	// timer (RetryAt set) or was reset by a rerun and starts again
	if st.Status != StepPending || !st.RetryAt.IsZero() || st.Ready || m.Run.CancelRequested {
		return
	}
	deps, from := m.deps[i], 0
	if m.scanned != nil {
		from = int(m.scanned[i])
	}
	for k := from; k < len(deps); k++ {
		d := deps[k]
		up := m.Run.Steps[d.step]
		if !up.Status.Terminal() {
			if m.scanned != nil {
				m.scanned[i] = int32(k) // those before it are terminal and met
			}
			return
		}
		if !m.met(d) {
			m.setStatus(i, StepSkipped)
			st.EndedAt = r.at
			r.change(i, st.ID)
			r.record(Record{Type: RecStepEnded, Step: st.ID, Status: string(StepSkipped)})
			m.propagate(r, i)
			return
		}
	}
	m.begin(r, i)
}

// met reports whether a terminal upstream step meets a condition. A failed
// optional step counts as succeeded for its dependents; skipped and
// cancelled steps meet nothing.
func (m *Machine) met(d depIndex) bool {
	up := m.Run.Steps[d.step]
	failedOptional := up.Status == StepFailed && m.W.Steps[d.step].Optional
	switch d.cond {
	case dag.Failed:
		return up.Status == StepFailed
	case dag.Done:
		return up.Status == StepSucceeded || up.Status == StepFailed
	default:
		return up.Status == StepSucceeded || failedOptional
	}
}

func (m *Machine) startStep(r *result, i int) {
	st := m.Run.Steps[i]
	m.setStatus(i, StepRunning)
	st.Attempt++
	st.EndError = ""
	st.StartedAt, st.EndedAt = r.at, time.Time{}
	st.Output, st.Error = nil, ""
	r.change(i, st.ID)
	r.record(Record{Type: RecStepStarted, Step: st.ID, Attempt: st.Attempt})
	r.Actions = append(r.Actions, StartStep{Step: st.ID, Attempt: st.Attempt, StartedAt: st.StartedAt})
}
