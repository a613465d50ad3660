package core

import "time"

// Event is something that happened to a run.
type Event interface{ at() time.Time }

// Start begins a pending run.
type Start struct {
	// Detail, if set, is noted with run_started in the history.
	Detail string
	At     time.Time
}

// StepEnded reports that an attempt of a step ended. Error is empty when
// it succeeded.
type StepEnded struct {
	Step    string
	Attempt int
	Output  any
	Error   string
	At      time.Time
}

// RetryDue reports that the delay before a step's next attempt is over.
type RetryDue struct {
	Step    string
	Attempt int // the attempt that failed
	At      time.Time
}

// ChildSpawned reports that the child run of a sub_workflow step's
// attempt was created. A detached child ends the step at once, with
// {"child_run_id": ...} as its output.
type ChildSpawned struct {
	Step       string
	Attempt    int
	ChildRunID string
	Detached   bool
	Detail     string // noted in the history
	At         time.Time
}

// ChildEnded reports that the child run of a blocking sub_workflow step
// ended. Error is empty when the child succeeded.
type ChildEnded struct {
	Step       string
	Attempt    int
	ChildRunID string
	Status     RunStatus
	Output     any
	Error      string
	At         time.Time
}

// EndWithChild says that a running attempt of a sub_workflow step ends
// with Error when its child, cancelled for it (its timeout), ends, unless
// the child succeeded first. An empty Error undoes it (the cancel could
// not be made). It is stored with the step and noted in the history, so a
// resume after a crash ends the step with the same message.
type EndWithChild struct {
	Step    string
	Attempt int
	Error   string
	At      time.Time
}

// Cancel asks the run to stop: nothing starts any more, running steps are
// stopped, pending ones end cancelled.
type Cancel struct{ At time.Time }

// TimedOut is a cancel caused by the run's timeout; the run ends failed.
type TimedOut struct{ At time.Time }

// Rerun reopens an ended run: the steps in Reset go back to pending
// (keeping their attempt, so the next one is the highest so far + 1), and
// each step in Reopen, a sub_workflow step whose child run is rerun in
// place, goes back to running as a new attempt, waiting for that child's
// new outcome.
type Rerun struct {
	Reset  []string
	Reopen []string
	Detail string
	At     time.Time
}

func (e Rerun) at() time.Time { return e.At }

// Resume continues a run after the process that ran it stopped.
type Resume struct{ At time.Time }

func (e Start) at() time.Time        { return e.At }
func (e StepEnded) at() time.Time    { return e.At }
func (e RetryDue) at() time.Time     { return e.At }
func (e Cancel) at() time.Time       { return e.At }
func (e ChildSpawned) at() time.Time { return e.At }
func (e ChildEnded) at() time.Time   { return e.At }
func (e EndWithChild) at() time.Time { return e.At }
func (e TimedOut) at() time.Time     { return e.At }
func (e Resume) at() time.Time       { return e.At }

// Action is something the engine must do after committing a Result.
type Action interface{ isAction() }

// Dispatch starts a step that was left Ready for lack of a worker, now
// that one is free for it. A step no longer ready ignores it.
type Dispatch struct {
	Step string
	At   time.Time
}

func (e Dispatch) at() time.Time { return e.At }

// AwaitWorker reports that a step may start but no worker is free for
// it: it stays pending (Ready) until a Dispatch.
type AwaitWorker struct{ Step string }

func (AwaitWorker) isAction() {}

// StartStep runs an attempt of a step (a body, a shell command, or the
// spawn of a child run). StartedAt is the attempt's start, which a
// spawned child's id and creation time derive from.
type StartStep struct {
	Step      string
	Attempt   int
	StartedAt time.Time
}

// ArmTimer asks for a RetryDue event at a time.
type ArmTimer struct {
	Step    string
	Attempt int
	At      time.Time
}

// StopStep stops a running attempt (its body, its process group, its child).
type StopStep struct {
	Step    string
	Attempt int
	// ChildRunID is the step's child run as the state holds it when the
	// stop is decided (see AttemptView.ChildRunID), for a sub_workflow step
	ChildRunID string
}

// ReattachChild waits again for the child run of a sub_workflow step that
// was running when the process stopped.
type ReattachChild struct {
	Step       string
	Attempt    int
	ChildRunID string
	// StartedAt is the attempt's start: a child not yet spawned (its
	// spawn did not commit) is spawned under the id derived from it
	StartedAt time.Time
}

// EndRun reports that the run ended; the run's state holds the outcome.
type EndRun struct{ Status RunStatus }

func (StartStep) isAction()     {}
func (ArmTimer) isAction()      {}
func (StopStep) isAction()      {}
func (ReattachChild) isAction() {}
func (EndRun) isAction()        {}

// Record is one entry of a run's history: Apply returns those of one
// event (Result.History) with Seq unset, and the engine numbers them, from
// 1 and without a gap, as it stores them (runtime/journal). The same type
// is what history shows.
type Record struct {
	Seq     uint64    `json:"seq"`
	Type    EventType `json:"type"`
	Time    time.Time `json:"time"`
	Step    string    `json:"step,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	Status  string    `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	// Child is the child run of child_spawned and child_ended
	Child  string `json:"child_run_id,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Result is what applying one event changed and what must follow.
type Result struct {
	// Changed are the ids of the steps whose state changed. The machine
	// reuses its storage: it is valid until the machine's next Apply (the
	// engine encodes the changes before it decides again).
	Changed    []string
	RunChanged bool
	// Took is how many workers the decision took (Machine.Pooled): of
	// those offered in Inputs.Free, and on Resume more if it must
	Took    int
	History []Record
	Actions []Action
}

// EventType names a history event.
type EventType string

// The history event types.
const (
	RecRunStarted      EventType = "run_started"
	RecRunResumed      EventType = "run_resumed"
	RecRunEnded        EventType = "run_ended"
	RecStepStarted     EventType = "step_started"
	RecStepEnded       EventType = "step_ended"
	RecStepEnding      EventType = "step_ending"
	RecRetryScheduled  EventType = "retry_scheduled"
	RecChildSpawned    EventType = "child_spawned"
	RecChildEnded      EventType = "child_ended"
	RecCancelRequested EventType = "cancel_requested"
	RecRerun           EventType = "rerun"
)
