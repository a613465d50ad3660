package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowscript/flowscript/dag"
)

// StepsPlanned ends an attempt of a planner step that succeeded (SPEC
// §4b): the steps its body declared join the run. W is the run's
// workflow from now on: the first len(current steps) - Replace steps of
// the current workflow, unchanged, then the new steps. Replace drops the
// last steps, those the same planner declared in an earlier attempt (a
// rerun re-plans); none of them may be running. The new steps start
// pending and are evaluated at once.
type StepsPlanned struct {
	Step    string
	Attempt int
	W       *dag.Workflow
	Replace int
	Output  any
	At      time.Time
}

func (e StepsPlanned) at() time.Time { return e.At }

// RecStepsPlanned is the history event of a planner step's new steps.
const RecStepsPlanned EventType = "steps_planned"

// plan applies StepsPlanned.
func (m *Machine) plan(r *result, ev StepsPlanned) {
	i, _, ok := m.attempt(ev.Step, ev.Attempt, StepRunning)
	if !ok {
		return
	}
	keep := len(m.W.Steps) - ev.Replace
	if m.Run.CancelRequested || ev.W == nil || ev.Replace < 0 || keep <= i || len(ev.W.Steps) < keep || !m.samePrefix(ev.W, keep) {
		err := "cancelled"
		if !m.Run.CancelRequested {
			err = "the planned steps do not fit the run (an internal error)"
		}
		m.stepEnded(r, StepEnded{Step: ev.Step, Attempt: ev.Attempt, Error: err, At: ev.At}, false)
		return
	}
	for _, st := range m.Run.Steps[keep:] {
		if st.Status == StepRunning {
			m.stepEnded(r, StepEnded{Step: ev.Step, Attempt: ev.Attempt, Error: fmt.Sprintf("cannot re-plan while step %s, planned before, is running", st.ID), At: ev.At}, false)
			return
		}
	}
	steps := m.Run.Steps[:keep:keep]
	var ids []string
	for _, s := range ev.W.Steps[keep:] {
		steps = append(steps, &Step{ID: s.ID, Status: StepPending})
		ids = append(ids, s.ID)
	}
	m.Run.Steps = steps
	fresh := New(ev.W, m.Run)
	m.W = ev.W
	m.index, m.deps, m.dependents, m.handled = fresh.index, fresh.deps, fresh.dependents, fresh.handled
	m.pendingPooled, m.unfinished = fresh.pendingPooled, fresh.unfinished
	for j := keep; j < len(steps); j++ {
		r.change(j, steps[j].ID)
	}
	detail := fmt.Sprintf("planned %d step(s): %s", len(ids), strings.Join(ids, ", "))
	if len(ids) == 0 {
		detail = "planned no steps"
	}
	if ev.Replace > 0 {
		detail += fmt.Sprintf(" (replacing the %d planned before)", ev.Replace)
	}
	r.record(Record{Type: RecStepsPlanned, Step: ev.Step, Attempt: ev.Attempt, Detail: detail})
	m.stepEnded(r, StepEnded{Step: ev.Step, Attempt: ev.Attempt, Output: ev.Output, At: ev.At}, false)
}

// samePrefix reports whether w's first n steps are the machine's.
func (m *Machine) samePrefix(w *dag.Workflow, n int) bool {
	for j := 0; j < n; j++ {
		if w.Steps[j].ID != m.W.Steps[j].ID {
			return false
		}
	}
	return true
}
