package core

import (
	"time"

	"github.com/flowscript/flowscript/dag"
)

// RunStatus is the status of a run.
type RunStatus string

const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Terminal reports whether the run has ended.
func (s RunStatus) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// StepStatus is the status of a step in a run.
type StepStatus string

const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	StepCancelled StepStatus = "cancelled"
)

// Terminal reports whether the step has ended.
func (s StepStatus) Terminal() bool {
	return s == StepSucceeded || s == StepFailed || s == StepSkipped || s == StepCancelled
}

// Step is the state of one step in a run.
type Step struct {
	ID      string
	Status  StepStatus
	Attempt int // 0 until the step first starts
	// RetriesUsed counts the attempts started because an earlier one
	// failed; a restart after a crash does not count.
	RetriesUsed int
	// EngineStops counts the times in a row the engine stopped while an
	// attempt of this step was running (see Machine.MaxEngineStops).
	EngineStops int
	Output      any
	Error       string
	ChildRunID  string
	RetryAt     time.Time // set while pending between a failed attempt and the next
	StartedAt   time.Time
	EndedAt     time.Time
	// Ready marks a pending step that may start and waits for a worker
	// (see Machine.Admit). It is not stored: after a restart the step is
	// evaluated again.
	Ready bool
	// EndError, on a running sub_workflow step whose child was cancelled
	// for it (its timeout), is the error it ends with when that child
	// ends (set by the EndWithChild event, stored with the step).
	EndError string
}

// Run is the state of a run, as far as deciding needs it.
type Run struct {
	ID     string
	Status RunStatus
	Steps  []*Step // in the workflow's declaration order
	Output any
	Error  string
	Params map[string]any
	// Priority is the run's, from MinPriority to MaxPriority: that of its
	// steps that set none
	Priority        int
	CancelRequested bool
	// TimedOut marks a cancel caused by the run's own timeout: the run
	// then ends failed, not cancelled.
	TimedOut  bool
	StartedAt time.Time
	EndedAt   time.Time
	// RerunAt is when the run was last rerun; its timeout counts from
	// then.
	RerunAt time.Time
}

// The priority range, for runs and steps: higher runs first.
const (
	MinPriority = dag.MinPriority
	MaxPriority = dag.MaxPriority
)
