package core

// This file: more views for the shell (see view.go), for the places that
// already know a step's index, and the workflow the run follows.

import "github.com/flowscript/flowscript/dag"

// CurrentAt is Current for the step at index i of the run's workflow
// (which must be in range): a copy of its current attempt.
func (m *Machine) CurrentAt(i int) AttemptView {
	st := m.Run.Steps[i]
	return AttemptView{
		Step: st.ID, Attempt: st.Attempt, Status: st.Status, ChildRunID: st.ChildRunID,
		StartedAt: st.StartedAt, CancelRequested: m.Run.CancelRequested,
	}
}

// RunningAt reports whether attempt is the current, running attempt of
// the step at index i.
func (m *Machine) RunningAt(i, attempt int) bool {
	a := m.CurrentAt(i)
	return a.Status == StepRunning && a.Attempt == attempt
}

// Workflow is the workflow the run follows, a planner's steps included.
// A plan replaces it rather than changing it, so the shell may keep it.
func (m *Machine) Workflow() *dag.Workflow { return m.W }
