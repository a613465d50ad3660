package core

// This file: views, copies of what the engine's shell needs to know of a
// run's state outside a decision. A view is taken under the run's lock
// and is a value: the shell acts on it once the lock is let go, and never
// looks into the machine's state (m.Run), which the next event changes in
// place. Taking a view changes nothing.

import (
	"time"

	"github.com/flowscript/flowscript/dag"
)

// AttemptView is a copy of a step's current attempt.
type AttemptView struct {
	Step    string
	Attempt int // 0 before the step first starts
	Status  StepStatus
	// ChildRunID is the step's child run as the state holds it: this
	// attempt's once its spawn is applied; until then that of an earlier
	// attempt, if any (a retry keeps it, as a rerun in place does; see
	// testdata/views.txt), else ""
	ChildRunID string
	StartedAt  time.Time
	// CancelRequested says the run's cancel was requested: nothing may
	// start for it any more
	CancelRequested bool
}

// Current returns a copy of step's current attempt, whatever its status,
// and false when the run has no such step.
func (m *Machine) Current(step string) (AttemptView, bool) {
	i, ok := m.find(step)
	if !ok {
		return AttemptView{}, false
	}
	return m.CurrentAt(i), true
}

// Running returns a copy of the given attempt of step, and true, if it is
// the step's current attempt and is running; otherwise false (the attempt
// ended, or another one is current: whatever asks is late).
func (m *Machine) Running(step string, attempt int) (AttemptView, bool) {
	a, ok := m.Current(step)
	if !ok || a.Status != StepRunning || a.Attempt != attempt {
		return AttemptView{}, false
	}
	return a, true
}

// RunView is a copy of what the shell needs of the run itself.
type RunView struct {
	Status          RunStatus
	CancelRequested bool
	StartedAt       time.Time
	RerunAt         time.Time
}

// RunView returns a copy of the run's own state.
func (m *Machine) RunView() RunView {
	r := m.Run
	return RunView{Status: r.Status, CancelRequested: r.CancelRequested, StartedAt: r.StartedAt, RerunAt: r.RerunAt}
}

// TimeoutFrom is when the run's timeout counts from: its last rerun, else
// its start (zero before it starts).
func (v RunView) TimeoutFrom() time.Time {
	if v.RerunAt.After(v.StartedAt) {
		return v.RerunAt
	}
	return v.StartedAt
}

// DriveView is what the driver of a running for_each or loop attempt
// starts from: the attempt, and the step's references resolved against
// the state as the view is taken.
type DriveView struct {
	AttemptView
	// Inputs are the step's inputs= resolved (ResolveInputs); Items, of a
	// for_each step, its items=; Err says why either could not be
	// resolved (Items is then not resolved)
	Inputs any
	Items  any
	Err    error
	// Priority is the step's priority= resolved, nil when it sets none
	// (the driver checks the range: an int from MinPriority to
	// MaxPriority)
	Priority any
}

// Drive returns the view the driver of a for_each or loop attempt starts
// from, and true, if the attempt is the step's current one and is
// running (as Running).
func (m *Machine) Drive(step string, attempt int) (DriveView, bool) {
	a, ok := m.Running(step, attempt)
	if !ok {
		return DriveView{}, false
	}
	def := m.W.Step(step)
	v := DriveView{AttemptView: a}
	v.Inputs, v.Err = m.ResolveInputs(def.Inputs)
	if def.Kind == dag.KindForEach && v.Err == nil {
		v.Items, v.Err = m.ResolveInputs(def.Dynamic.Items)
	}
	if def.Priority != nil {
		v.Priority = m.Resolve(def.Priority)
	}
	return v, true
}
