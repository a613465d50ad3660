package core

import (
	"fmt"

	"github.com/flowscript/flowscript/dag"
)

// This file: when a run ends, with which status and output.

// maybeEnd ends the run once no step is pending or running.
func (m *Machine) maybeEnd(r *result) {
	if m.Run.Status != RunRunning && !(m.Run.Status == RunPending && m.Run.CancelRequested) {
		return
	}
	if m.unfinished > 0 {
		return
	}
	run := m.Run
	switch {
	case run.TimedOut:
		run.Status, run.Error = RunFailed, "the run timed out"
		if t := m.W.Timeout; t > 0 {
			run.Error = fmt.Sprintf("the run timed out after %s", dag.FormatDuration(t))
		}
	case run.CancelRequested:
		run.Status = RunCancelled
	default:
		if first := m.firstUnhandledFailure(); first >= 0 {
			st := run.Steps[first]
			run.Status, run.Error = RunFailed, st.ID+": "+st.Error
		} else if m.anyCancelled() {
			// a rerun from a later step leaves earlier cancelled steps
			// as they were: the run stays cancelled
			run.Status = RunCancelled
		} else {
			run.Status = RunSucceeded
			run.Output = m.output()
		}
	}
	run.EndedAt = r.at
	r.RunChanged = true
	r.record(Record{Type: RecRunEnded, Status: string(run.Status), Error: run.Error})
	r.Actions = append(r.Actions, EndRun{Status: run.Status})
}

// anyCancelled reports whether a step ended cancelled.
func (m *Machine) anyCancelled() bool {
	for _, st := range m.Run.Steps {
		if st.Status == StepCancelled {
			return true
		}
	}
	return false
}

// firstUnhandledFailure is the earliest-ending failed step that is neither
// optional nor handled by a .failed or .done condition, or -1.
func (m *Machine) firstUnhandledFailure() int {
	first := -1
	for i, st := range m.Run.Steps {
		if st.Status != StepFailed || m.W.Steps[i].Optional || m.handled[i] {
			continue
		}
		if first < 0 || st.EndedAt.Before(m.Run.Steps[first].EndedAt) {
			first = i
		}
	}
	return first
}

// output is the run's output: output() resolved, or the outputs of the
// steps nothing depends on.
func (m *Machine) output() any {
	if m.W.Output != nil {
		return m.Resolve(m.W.Output)
	}
	out := map[string]any{}
	for i, st := range m.Run.Steps {
		if len(m.dependents[i]) == 0 {
			out[st.ID] = st.Output
		}
	}
	return out
}
