package journal

import (
	"encoding/json"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// RunRecord is a run as stored and as shown (`show --json`, `run --json`).
// Absent values are JSON null.
type RunRecord struct {
	ID             string         `json:"id"`
	Workflow       string         `json:"workflow"`
	Version        int            `json:"version"`
	Status         core.RunStatus `json:"status"`
	Params         map[string]any `json:"params"`
	Output         any            `json:"output"`
	Error          *string        `json:"error"`
	ParentRunID    *string        `json:"parent_run_id"`
	ParentStepID   *string        `json:"parent_step_id"`
	RootRunID      string         `json:"root_run_id"`
	Depth          int            `json:"depth"`
	Priority       int            `json:"priority"`
	IdempotencyKey *string        `json:"idempotency_key"`
	CreatedAt      time.Time      `json:"created_at"`
	StartedAt      *time.Time     `json:"started_at"`
	EndedAt        *time.Time     `json:"ended_at"`
	Steps          []StepRecord   `json:"steps,omitempty"`

	// Detached is set on a child its parent does not wait for.
	Detached bool `json:"detached"`
	// MaxDepth is the nesting limit of the tree, the root's max_depth.
	MaxDepth int `json:"max_depth"`
	// Lineage names the workflows from the root down to this run.
	Lineage []string `json:"lineage"`
	// Children counts the child runs this run has spawned.
	Children int `json:"children"`
	// Epoch counts the reruns of this run: state may move back only into
	// a higher epoch.
	Epoch int `json:"epoch"`
	// RerunAt is when the run was last rerun: its timeout counts from then.
	RerunAt *time.Time `json:"rerun_at,omitempty"`
	// MaskSecrets names the secrets of the runs above this one: its
	// records may hold values derived from them (a parent passing a
	// step's output in inputs), so they are masked here too.
	MaskSecrets []string `json:"mask_secrets,omitempty"`

	// engine bookkeeping, kept in the store and shown for diagnosis
	Hash            string `json:"hash"`
	Workspace       string `json:"workspace"`
	CancelRequested bool   `json:"cancel_requested,omitempty"`
	TimedOut        bool   `json:"timed_out,omitempty"`
}

// StepRecord is one step of a run.
type StepRecord struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Status      core.StepStatus `json:"status"`
	Attempt     int             `json:"attempt"`
	Inputs      any             `json:"inputs"`
	Output      any             `json:"output"`
	Error       *string         `json:"error"`
	ChildRunID  *string         `json:"child_run_id"`
	StartedAt   *time.Time      `json:"started_at"`
	EndedAt     *time.Time      `json:"ended_at"`
	RetriesUsed int             `json:"retries_used,omitempty"`
	EngineStops int             `json:"engine_stops,omitempty"`
	Epoch       int             `json:"epoch,omitempty"`
	// the definition a sub_workflow step's current child runs
	ChildWorkflow string     `json:"child_workflow,omitempty"`
	ChildVersion  int        `json:"child_version,omitempty"`
	ChildHash     string     `json:"child_hash,omitempty"`
	RetryAt       *time.Time `json:"retry_at,omitempty"`
	// the error a running sub_workflow step ends with when its child,
	// cancelled for it (its timeout), ends
	EndError *string `json:"end_error,omitempty"`
	// Plan, on a planner step that planned, is the steps it added to the
	// run (dag.EncodePlan)
	Plan json.RawMessage `json:"plan,omitempty"`
	// KeepSucceeded, on a for_each step reset by rerun --failed: its
	// attempts keep the children of earlier attempts that succeeded
	KeepSucceeded bool `json:"keep_succeeded,omitempty"`
}

// HistoryEvent is one entry of a run's history: the record the core
// returned, numbered.
type HistoryEvent = core.Record

// Notice tells a waiting step how the run it waited for ended.
type Notice struct {
	Step    string         `json:"step"`
	Index   int            `json:"index"`
	Attempt int            `json:"attempt"`
	Status  core.RunStatus `json:"status"`
	Output  any            `json:"output"`
	Error   string         `json:"error"`
}

// Definition is a registered workflow version, or the source snapshot
// of a script= child.
type Definition struct {
	Name         string            `json:"name"`
	Version      int               `json:"version"`
	Hash         string            `json:"hash"`
	Root         string            `json:"root"`
	Files        map[string][]byte `json:"files"`
	Params       map[string]any    `json:"params"`
	Secrets      []string          `json:"secrets"`
	RegisteredAt time.Time         `json:"registered_at"`
}

// stepProgress ranks a step's state so that it only moves forward: a
// higher attempt, or the same attempt further along (pending, running,
// ended — a failed attempt waiting for its retry counts as ended).
func stepProgress(r *StepRecord) [3]int {
	phase := 2
	switch {
	case r.Status == core.StepPending && r.RetryAt == nil:
		phase = 0
	case r.Status == core.StepRunning:
		phase = 1
	}
	return [3]int{r.Epoch, r.Attempt, phase}
}

func progressLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// runPhase ranks run statuses: pending, running, ended.
func runPhase(s core.RunStatus) int {
	switch s {
	case core.RunPending:
		return 0
	case core.RunRunning:
		return 1
	}
	return 2
}

// TimeFormat is how records show times: UTC, RFC 3339, always nine digits
// of nanoseconds (Go's RFC3339Nano drops trailing zeros).
const TimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Stamp is a time that marshals in TimeFormat. It is a TextMarshaler,
// not a json.Marshaler: encoding/json quotes text as it is, where it
// would parse and compact the output of a MarshalJSON again.
type Stamp time.Time

// MarshalText writes the time in UTC, in TimeFormat.
func (t Stamp) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(make([]byte, 0, len(TimeFormat)), TimeFormat), nil
}

// StampOf is t as a Stamp; nil for nil.
func StampOf(t *time.Time) *Stamp {
	if t == nil {
		return nil
	}
	s := Stamp(*t)
	return &s
}

// The MarshalJSON methods below write the times of a record in
// TimeFormat: the fields of the outer struct win over the embedded
// record's fields of the same JSON name (and come after the others).
// They define the stored JSON; the engine writes the same bytes with the
// appenders of encode.go.

func (r RunRecord) MarshalJSON() ([]byte, error) {
	type plain RunRecord
	return json.Marshal(struct {
		plain
		CreatedAt Stamp  `json:"created_at"`
		StartedAt *Stamp `json:"started_at"`
		EndedAt   *Stamp `json:"ended_at"`
		RerunAt   *Stamp `json:"rerun_at,omitempty"`
	}{plain(r), Stamp(r.CreatedAt), StampOf(r.StartedAt), StampOf(r.EndedAt), StampOf(r.RerunAt)})
}

func (s StepRecord) MarshalJSON() ([]byte, error) {
	type plain StepRecord
	return json.Marshal(struct {
		plain
		StartedAt *Stamp `json:"started_at"`
		EndedAt   *Stamp `json:"ended_at"`
		RetryAt   *Stamp `json:"retry_at,omitempty"`
	}{plain(s), StampOf(s.StartedAt), StampOf(s.EndedAt), StampOf(s.RetryAt)})
}

// encodeHistory is a history event as stored, its time in TimeFormat
// (appendHistory writes what historyJSON, in the tests, defines).
func encodeHistory(h *HistoryEvent) ([]byte, error) {
	return appendHistory(make([]byte, 0, 128), h), nil
}
