package core

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowscript/flowscript/dag"
)

// StepsPlanned ends an attempt of a planner step that succeeded (SPEC
// §4b): the steps its body declared join the run, after the run's other
// steps, pending, and are evaluated at once. Replace names the steps the
// same planner declared in an earlier attempt (a rerun re-plans): they
// are dropped first, and must be the last of the run's steps, none of them
// running. The steps were validated against the run when the body
// returned; a step id another planner took since then fails the planner.
type StepsPlanned struct {
	Step    string
	Attempt int
	Steps   []*dag.Step
	Replace []string
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
	fail := func(format string, args ...any) {
		m.stepEnded(r, StepEnded{Step: ev.Step, Attempt: ev.Attempt, Error: fmt.Sprintf(format, args...), At: ev.At}, false)
	}
	if m.Run.CancelRequested {
		fail("cancelled")
		return
	}
	keep := len(m.W.Steps) - len(ev.Replace)
	dropped := map[string]bool{}
	for _, id := range ev.Replace {
		dropped[id] = true
	}
	if keep <= i {
		fail("cannot re-plan: the steps planned before are not the last of the run")
		return
	}
	for _, s := range m.W.Steps[keep:] {
		if !dropped[s.ID] {
			fail("cannot re-plan: the steps it planned before are followed by step %s, planned by another planner (re-planning is built only for the last planner to have planned)", s.ID)
			return
		}
	}
	for _, st := range m.Run.Steps[keep:] {
		if st.Status == StepRunning {
			fail("cannot re-plan while step %s, planned before, is running", st.ID)
			return
		}
	}
	for _, s := range ev.Steps {
		if j, ok := m.find(s.ID); ok && j < keep {
			fail("%s: duplicate step id %q (another planner declared it meanwhile, at %s)", s.Pos, s.ID, m.W.Steps[j].Pos)
			return
		}
	}
	w := *m.W
	w.Steps = append(m.W.Steps[:keep:keep], ev.Steps...)
	w.Freeze()
	steps := m.Run.Steps[:keep:keep]
	ids := make([]string, 0, len(ev.Steps))
	for _, s := range ev.Steps {
		steps = append(steps, &Step{ID: s.ID, Status: StepPending})
		ids = append(ids, s.ID)
	}
	m.Run.Steps = steps
	fresh := New(&w, m.Run)
	m.W = &w
	m.deps, m.dependents, m.handled, m.scanned = fresh.deps, fresh.dependents, fresh.handled, fresh.scanned
	m.pendingPooled, m.unfinished = fresh.pendingPooled, fresh.unfinished
	for j := keep; j < len(steps); j++ {
		r.change(j, steps[j].ID)
	}
	detail := fmt.Sprintf("planned %d step(s): %s", len(ids), strings.Join(ids, ", "))
	if len(ids) == 0 {
		detail = "planned no steps"
	}
	if len(ev.Replace) > 0 {
		detail += fmt.Sprintf(" (replacing the %d planned before)", len(ev.Replace))
	}
	r.record(Record{Type: RecStepsPlanned, Step: ev.Step, Attempt: ev.Attempt, Detail: detail})
	m.stepEnded(r, StepEnded{Step: ev.Step, Attempt: ev.Attempt, Output: ev.Output, At: ev.At}, false)
}
