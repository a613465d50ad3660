package flowscript

import (
	"encoding/json"
	"time"

	"github.com/flowscript/flowscript/runtime"
)

// RunStatus is where a run is: pending, running, or one of the three ends.
type RunStatus string

// Run statuses.
const (
	RunPending   RunStatus = "pending"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCancelled RunStatus = "cancelled"
)

// Terminal reports whether the run has ended (succeeded, failed or
// cancelled).
func (s RunStatus) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// StepStatus is where a step of a run is.
type StepStatus string

// Step statuses.
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

// TimeFormat is how records write times: UTC, RFC 3339, always nine
// digits of nanoseconds (the stored records' format).
const TimeFormat = runtime.TimeFormat

// RunRecord is a run as a user sees it (`flowscript show --json`).
// Absent values are JSON null; times are UTC in TimeFormat.
type RunRecord struct {
	ID             string         `json:"id"`
	Workflow       string         `json:"workflow"`
	Version        int            `json:"version"`
	Status         RunStatus      `json:"status"`
	Params         map[string]any `json:"params"`
	Output         any            `json:"output"`
	Error          *string        `json:"error"`
	ParentRunID    *string        `json:"parent_run_id"`
	ParentStepID   *string        `json:"parent_step_id"`
	RootRunID      string         `json:"root_run_id"`
	Depth          int            `json:"depth"`
	Priority       int            `json:"priority"`
	IdempotencyKey *string        `json:"idempotency_key"`
	// Detached is set on a child run its parent does not wait for.
	Detached  bool       `json:"detached"`
	CreatedAt time.Time  `json:"created_at"`
	StartedAt *time.Time `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	// RerunAt is when the run was last rerun.
	RerunAt *time.Time `json:"rerun_at,omitempty"`
	// TimedOut is set once the workflow's timeout passed (its end is failed).
	TimedOut bool `json:"timed_out,omitempty"`
	// Steps are in declaration order; lists of runs leave them out.
	Steps []StepRecord `json:"steps,omitempty"`
}

// StepRecord is one step of a run.
type StepRecord struct {
	ID      string     `json:"id"`
	Kind    string     `json:"kind"`
	Status  StepStatus `json:"status"`
	Attempt int        `json:"attempt"`
	// Inputs are resolved, secrets masked.
	Inputs     any        `json:"inputs"`
	Output     any        `json:"output"`
	Error      *string    `json:"error"`
	ChildRunID *string    `json:"child_run_id"`
	StartedAt  *time.Time `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	// ChildWorkflow and ChildVersion name what a sub_workflow step's
	// current child runs.
	ChildWorkflow string `json:"child_workflow,omitempty"`
	ChildVersion  int    `json:"child_version,omitempty"`
	// RetryAt is when a failed attempt waiting for its retry starts again.
	RetryAt *time.Time `json:"retry_at,omitempty"`
}

// Step returns the step with that id, or nil.
func (r *RunRecord) Step(id string) *StepRecord {
	for i := range r.Steps {
		if r.Steps[i].ID == id {
			return &r.Steps[i]
		}
	}
	return nil
}

// Parent returns the run and the step that started this run, or two
// empty strings for a run started by itself (a root run).
func (r *RunRecord) Parent() (runID, stepID string) {
	if r.ParentRunID != nil {
		runID = *r.ParentRunID
	}
	if r.ParentStepID != nil {
		stepID = *r.ParentStepID
	}
	return runID, stepID
}

// HistoryEvent is one entry of a run's history (`flowscript history`).
type HistoryEvent struct {
	Seq     uint64    `json:"seq"`
	Type    string    `json:"type"`
	Time    time.Time `json:"time"`
	Step    string    `json:"step,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	Status  string    `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	Child   string    `json:"child_run_id,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// LogEntry is the log of one step attempt.
type LogEntry struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
	Text    string `json:"text"`
}

// TreeNode is a run and the runs it spawned.
type TreeNode struct {
	Run      RunRecord   `json:"run"`
	Children []*TreeNode `json:"children"`
}

// Walk calls fn for n and every node below it, in tree order (a run
// before the runs below it, children in creation order), with each node's
// depth (0 for n), and stops at the first error fn returns.
func (n *TreeNode) Walk(fn func(n *TreeNode, depth int) error) error {
	return n.walk(fn, 0)
}

func (n *TreeNode) walk(fn func(n *TreeNode, depth int) error, depth int) error {
	if err := fn(n, depth); err != nil {
		return err
	}
	for _, c := range n.Children {
		if err := c.walk(fn, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// Definition describes one registered version of a workflow.
type Definition struct {
	Name         string         `json:"name"`
	Version      int            `json:"version"`
	Params       map[string]any `json:"params"`
	Secrets      []string       `json:"secrets"`
	RegisteredAt string         `json:"registered_at"`
}

// Registered is one definition that RegisterTree stored (New) or found.
type Registered struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	New     bool   `json:"new"`
}

// RerunPlan lists, from the run rerun up to its tree's root, the steps of
// each run that run again.
type RerunPlan struct {
	Root string     `json:"root_run_id"`
	Runs []RerunRun `json:"runs"`
}

// RerunRun is what a rerun does to one run.
type RerunRun struct {
	RunID    string   `json:"run_id"`
	Workflow string   `json:"workflow"`
	Steps    []string `json:"steps"`
	// Reopen lists the sub_workflow steps that wait again for their
	// child, which is rerun in place.
	Reopen []string `json:"reopen,omitempty"`
	// Version is the version the run ran; NewVersion, with Latest, the
	// one it runs now when that changed. Snapshot says the stored
	// snapshot of Version runs (without Latest).
	Version    int  `json:"version"`
	NewVersion int  `json:"new_version,omitempty"`
	Snapshot   bool `json:"snapshot"`
	// Reattach maps a reset sub_workflow step with an idempotency key to
	// the run the key binds it to, which it waits for again.
	Reattach map[string]string `json:"reattach,omitempty"`
	// KeepIterations lists the for_each steps (--failed) whose children
	// that succeeded are kept: only the others run again.
	KeepIterations []string `json:"keep_iterations,omitempty"`
	// KeptIterations and NewIterations (in a dry run's plan) map each
	// step of KeepIterations to the indexes whose succeeded children are
	// kept, and to those that get a new child.
	KeptIterations map[string][]int `json:"kept_iterations,omitempty"`
	NewIterations  map[string][]int `json:"new_iterations,omitempty"`
}

// ListFilter narrows List; zero fields match everything.
type ListFilter struct {
	Status   RunStatus
	Workflow string
}

// MarshalJSON writes the record's times in TimeFormat.
func (r RunRecord) MarshalJSON() ([]byte, error) {
	type plain RunRecord
	return json.Marshal(struct {
		plain
		CreatedAt runtime.Stamp  `json:"created_at"`
		StartedAt *runtime.Stamp `json:"started_at"`
		EndedAt   *runtime.Stamp `json:"ended_at"`
		RerunAt   *runtime.Stamp `json:"rerun_at,omitempty"`
	}{plain(r), runtime.Stamp(r.CreatedAt), runtime.StampOf(r.StartedAt), runtime.StampOf(r.EndedAt), runtime.StampOf(r.RerunAt)})
}

// MarshalJSON writes the step's times in TimeFormat.
func (s StepRecord) MarshalJSON() ([]byte, error) {
	type plain StepRecord
	return json.Marshal(struct {
		plain
		StartedAt *runtime.Stamp `json:"started_at"`
		EndedAt   *runtime.Stamp `json:"ended_at"`
		RetryAt   *runtime.Stamp `json:"retry_at,omitempty"`
	}{plain(s), runtime.StampOf(s.StartedAt), runtime.StampOf(s.EndedAt), runtime.StampOf(s.RetryAt)})
}

// MarshalJSON writes the event's time in TimeFormat.
func (h HistoryEvent) MarshalJSON() ([]byte, error) {
	type plain HistoryEvent
	return json.Marshal(struct {
		plain
		Time runtime.Stamp `json:"time"`
	}{plain(h), runtime.Stamp(h.Time)})
}

// ---- conversions from the runtime's records, which carry bookkeeping
// (content hashes, workspace paths, epochs) that users do not see ----

func runOf(r *runtime.RunRecord) *RunRecord {
	if r == nil {
		return nil
	}
	out := &RunRecord{
		ID: r.ID, Workflow: r.Workflow, Version: r.Version, Status: RunStatus(r.Status),
		Params: r.Params, Output: r.Output, Error: r.Error,
		ParentRunID: r.ParentRunID, ParentStepID: r.ParentStepID, RootRunID: r.RootRunID,
		Depth: r.Depth, Priority: r.Priority, IdempotencyKey: r.IdempotencyKey, Detached: r.Detached,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, EndedAt: r.EndedAt, RerunAt: r.RerunAt,
		TimedOut: r.TimedOut,
	}
	if r.Steps != nil {
		out.Steps = make([]StepRecord, len(r.Steps))
		for i, s := range r.Steps {
			out.Steps[i] = StepRecord{
				ID: s.ID, Kind: s.Kind, Status: StepStatus(s.Status), Attempt: s.Attempt,
				Inputs: s.Inputs, Output: s.Output, Error: s.Error, ChildRunID: s.ChildRunID,
				StartedAt: s.StartedAt, EndedAt: s.EndedAt,
				ChildWorkflow: s.ChildWorkflow, ChildVersion: s.ChildVersion, RetryAt: s.RetryAt,
			}
		}
	}
	return out
}

func runsOf(rs []runtime.RunRecord) []RunRecord {
	out := make([]RunRecord, len(rs))
	for i := range rs {
		out[i] = *runOf(&rs[i])
	}
	return out
}

func eventOf(h runtime.HistoryEvent) HistoryEvent {
	return HistoryEvent{Seq: h.Seq, Type: string(h.Type), Time: h.Time, Step: h.Step, Attempt: h.Attempt, Status: h.Status, Error: h.Error, Child: h.Child, Detail: h.Detail}
}

func treeOf(n *runtime.TreeNode) *TreeNode {
	if n == nil {
		return nil
	}
	out := &TreeNode{Run: *runOf(&n.Run), Children: make([]*TreeNode, len(n.Children))}
	for i, c := range n.Children {
		out.Children[i] = treeOf(c)
	}
	return out
}

func planOf(p *runtime.RerunPlan) *RerunPlan {
	if p == nil {
		return nil
	}
	out := &RerunPlan{Root: p.Root, Runs: make([]RerunRun, len(p.Runs))}
	for i, r := range p.Runs {
		out.Runs[i] = RerunRun(r)
	}
	return out
}
