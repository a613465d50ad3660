package core

import (
	"fmt"
	"sync"
	"time"

	"github.com/flowscript/flowscript/dag"
)

// Machine applies events to one run of one workflow.
type Machine struct {
	W   *dag.Workflow
	Run *Run

	// Pooled says that task and shell steps need one of the engine's
	// workers to start. How many are free for a decision comes in with it
	// (Inputs.Free); the Result says how many it took (Result.Took). A step
	// that may start when none is left stays pending, marked Ready, and
	// the AwaitWorker action reports it, until a Dispatch (which brings
	// the worker the engine kept for it) starts it. A step that was running
	// when the process stopped starts again at once on Resume, taking a
	// worker even when none is free.
	Pooled bool
	// MaxEngineStops is how many times in a row the engine may stop while
	// a task or shell step runs before resume fails the step instead of
	// starting it again (a body that crashes the process would otherwise
	// keep the engine down); 0: DefaultMaxEngineStops.
	MaxEngineStops int

	// pendingPooled counts the pending task and shell steps: the most
	// workers one decision can take (see Demand); unfinished the steps
	// not yet terminal (the run ends when none is left)
	pendingPooled int
	unfinished    int
	deps          [][]depIndex
	dependents    [][]int
	handled       []bool
	// scanned[i], for a step with many dependencies (a join after a
	// fan-out), counts its first dependencies known to be terminal and
	// met, so that each end among them does not look at all of them
	// again; a dependency that is no longer terminal (a rerun) resets the
	// count of the steps that wait for it (setStatus). Nil when no step
	// has that many.
	scanned []int32
	// changed is the storage of Result.Changed, reused by the next Apply
	changed []string
}

// manyDeps is how many dependencies make a step keep its scan (scanned).
const manyDeps = 8

// results holds the builders of Apply's results between events, so that
// an event takes no allocation for its own (and a machine, of which a
// big fan-out holds thousands, keeps none).
var results = sync.Pool{New: func() any { return new(result) }}

type depIndex struct {
	step int
	cond dag.Condition
}

// DefaultMaxEngineStops is the default of Machine.MaxEngineStops.
const DefaultMaxEngineStops = 3

// New prepares a machine for a run of w. A run without step states gets
// one pending state per step.
func New(w *dag.Workflow, run *Run) *Machine {
	m := &Machine{W: w, Run: run}
	if len(run.Steps) == 0 {
		// the states of a new run, in one allocation
		states := make([]Step, len(w.Steps))
		run.Steps = make([]*Step, len(w.Steps))
		for i, s := range w.Steps {
			states[i] = Step{ID: s.ID, Status: StepPending}
			run.Steps[i] = &states[i]
		}
	}
	if run.Status == "" {
		run.Status = RunPending
	}
	for i, st := range run.Steps {
		if st.Status == StepPending && pooled(w.Steps[i]) {
			m.pendingPooled++
		}
		if !st.Status.Terminal() {
			m.unfinished++
		}
	}
	m.indexDeps()
	return m
}

// indexDeps builds each step's dependencies and dependents. Every list
// is a capped window of one array of all of them (a run of 1,000 steps
// took 2,000 allocations when each had its own).
func (m *Machine) indexDeps() {
	w := m.W
	n := len(w.Steps)
	m.deps = make([][]depIndex, n)
	m.dependents = make([][]int, n)
	m.handled = make([]bool, n)
	var all []depIndex
	ends := make([]int, n+1) // step i's dependencies are all[ends[i]:ends[i+1]]
	counts := make([]int, n+1)
	for i, s := range w.Steps {
		for _, d := range s.Deps() {
			j, ok := m.find(d.Step)
			if !ok {
				continue // validation refuses unknown steps before a run exists
			}
			all = append(all, depIndex{step: j, cond: d.Cond})
			counts[j+1]++
			if d.Cond == dag.Failed || d.Cond == dag.Done {
				m.handled[j] = true
			}
		}
		ends[i+1] = len(all)
		if ends[i+1]-ends[i] >= manyDeps && m.scanned == nil {
			m.scanned = make([]int32, n)
		}
	}
	for j := 1; j <= n; j++ {
		counts[j] += counts[j-1] // step j's dependents start at counts[j]
	}
	rev := make([]int, len(all))
	next := counts[:n]
	for i := 0; i < n; i++ {
		if ends[i] < ends[i+1] {
			m.deps[i] = all[ends[i]:ends[i+1]:ends[i+1]]
		}
		for _, d := range all[ends[i]:ends[i+1]] {
			rev[next[d.step]] = i
			next[d.step]++
		}
	}
	// next[j] is now where step j's dependents end; they began where
	// step j-1's end
	for j := 0; j < n; j++ {
		from := 0
		if j > 0 {
			from = next[j-1]
		}
		if from < next[j] {
			m.dependents[j] = rev[from:next[j]:next[j]]
		}
	}
}

// find is the index of step id in the machine's workflow, by the
// workflow's own index (a machine keeps none: a fan-out holds thousands
// of machines of one workflow).
func (m *Machine) find(id string) (int, bool) {
	i := m.W.StepIndex(id)
	return i, i >= 0
}

// pooled reports whether a step needs a worker to run.
func pooled(s *dag.Step) bool { return !s.Kind.RunsChildren() }

// setStatus moves step i to status, keeping count of pending pooled
// steps and of unfinished ones. Every change of a step's status goes
// through it.
func (m *Machine) setStatus(i int, status StepStatus) {
	st := m.Run.Steps[i]
	switch was, now := st.Status.Terminal(), status.Terminal(); {
	case !was && now:
		m.unfinished--
	case was && !now:
		m.unfinished++
		if m.scanned != nil {
			for _, j := range m.dependents[i] {
				m.scanned[j] = 0
			}
		}
	}
	if pooled(m.W.Steps[i]) {
		if st.Status == StepPending {
			m.pendingPooled--
		}
		if status == StepPending {
			m.pendingPooled++
		}
	}
	st.Status = status
}

// Inputs are what a decision learns from the engine beside its event.
type Inputs struct {
	// Free is how many workers the decision may take (Pooled).
	Free int
}

// Demand is the most workers applying ev can take: what the engine should
// offer it in Inputs.Free (it may offer fewer). It changes nothing.
func (m *Machine) Demand(ev Event) int {
	if !m.Pooled {
		return 0
	}
	switch ev := ev.(type) {
	case Dispatch, Cancel, TimedOut, EndWithChild:
		return 0
	case ChildSpawned:
		if !ev.Detached {
			return 0
		}
	case StepsPlanned:
		return m.pendingPooled + len(ev.Steps) // the new steps may start at once
	case Resume:
		n := m.pendingPooled
		for i, st := range m.Run.Steps {
			if st.Status == StepRunning && pooled(m.W.Steps[i]) {
				n++ // started again at once
			}
		}
		return n
	}
	return m.pendingPooled
}

// StepPriority is step i's priority: its own (a literal, or a reference
// that resolves to an int in range), else its run's.
func (m *Machine) StepPriority(i int) int {
	if i >= 0 && i < len(m.W.Steps) {
		switch p := m.W.Steps[i].Priority.(type) {
		case int64:
			return int(p)
		case *dag.Ref:
			if n, ok := m.Resolve(p).(int64); ok && dag.PriorityInRange(n) {
				return int(n)
			}
		}
	}
	return m.Run.Priority
}

// StepState returns the state of a step, or nil.
func (m *Machine) StepState(id string) *Step {
	if i, ok := m.find(id); ok {
		return m.Run.Steps[i]
	}
	return nil
}

// result accumulates the effects of one event.
type result struct {
	Result
	// changedIdx are the indexes of Changed; changed indexes them once
	// there are many (most events change one or two steps)
	changedIdx []int
	idxBuf     [8]int
	changed    map[int]bool
	at         time.Time
	// toStart are the steps that may start, given the free workers once
	// the event is applied, by priority; free is what is left of them
	toStart []int
	free    int
}

func (r *result) change(i int, id string) {
	if r.changed != nil {
		if r.changed[i] {
			return
		}
		r.changed[i] = true
	} else {
		for _, j := range r.changedIdx {
			if j == i {
				return
			}
		}
		if len(r.changedIdx) == 16 {
			r.changed = make(map[int]bool, 64)
			for _, j := range r.changedIdx {
				r.changed[j] = true
			}
			r.changed[i] = true
		}
	}
	r.changedIdx = append(r.changedIdx, i)
	r.Changed = append(r.Changed, id)
}

func (r *result) record(rec Record) {
	rec.Time = r.at
	r.History = append(r.History, rec)
}

// Apply moves the run forward by one event. Events that no longer fit the
// state (a stale attempt, a run that already ended) change nothing.
func (m *Machine) Apply(ev Event, in Inputs) Result {
	r := results.Get().(*result)
	*r = result{at: ev.at(), free: in.Free, toStart: r.toStart[:0]}
	r.changedIdx = r.idxBuf[:0]
	r.Changed = m.changed[:0]
	defer func() {
		// what is returned is copied out; the builder keeps only its
		// buffer of steps to start, the machine its list of changes
		m.changed = r.Changed[:0]
		*r = result{toStart: r.toStart[:0]}
		results.Put(r)
	}()
	if rr, ok := ev.(Rerun); ok {
		m.rerun(r, rr)
		m.admitAll(r)
		m.maybeEnd(r)
		return r.Result
	}
	if m.Run.Status.Terminal() {
		return r.Result
	}
	switch ev := ev.(type) {
	case Start:
		m.start(r, ev.Detail)
	case StepEnded:
		m.stepEnded(r, ev, true)
	case StepsPlanned:
		m.plan(r, ev) // plan.go
	case RetryDue:
		m.retryDue(r, ev)
	case Dispatch:
		m.dispatch(r, ev)
	case ChildSpawned:
		m.childSpawned(r, ev)
	case ChildEnded:
		m.childEnded(r, ev)
	case EndWithChild:
		m.endWithChild(r, ev)
	case Cancel:
		m.cancel(r, false)
	case TimedOut:
		m.cancel(r, true)
	case Resume:
		m.resume(r)
	}
	m.admitAll(r)
	m.maybeEnd(r)
	return r.Result
}

func (m *Machine) start(r *result, detail string) {
	if m.Run.Status != RunPending {
		return
	}
	m.Run.Status = RunRunning
	m.Run.StartedAt = r.at
	r.RunChanged = true
	r.record(Record{Type: RecRunStarted, Detail: detail})
	for i := range m.W.Steps {
		m.evaluate(r, i)
	}
}

// stepEnded ends an attempt; a failure is retried while retries are left
// and retry allows it.
func (m *Machine) stepEnded(r *result, ev StepEnded, retry bool) {
	i, st, ok := m.attempt(ev.Step, ev.Attempt, StepRunning)
	if !ok {
		return // a late report from an attempt that is no longer current
	}
	def := m.W.Steps[i]
	st.EndedAt = r.at
	st.EndError = "" // used (childEnded), or the step ended without its child
	st.EngineStops = 0
	r.change(i, st.ID)
	switch {
	case ev.Error == "":
		m.setStatus(i, StepSucceeded)
		st.Output, st.Error = ev.Output, ""
	case m.Run.CancelRequested:
		m.setStatus(i, StepCancelled)
		st.Output, st.Error = ev.Output, ev.Error
	case retry && st.RetriesUsed < def.Retries:
		m.setStatus(i, StepPending)
		st.Output, st.Error = ev.Output, ev.Error
		st.RetryAt = r.at.Add(def.RetryDelay)
		r.record(Record{Type: RecStepEnded, Step: st.ID, Attempt: st.Attempt, Status: string(StepFailed), Error: ev.Error})
		r.record(Record{Type: RecRetryScheduled, Step: st.ID, Attempt: st.Attempt})
		r.Actions = append(r.Actions, ArmTimer{Step: st.ID, Attempt: st.Attempt, At: st.RetryAt})
		return
	default:
		// a failed step keeps what it produced (a shell step's output);
		// references to it still resolve to None
		m.setStatus(i, StepFailed)
		st.Output, st.Error = ev.Output, ev.Error
	}
	r.record(Record{Type: RecStepEnded, Step: st.ID, Attempt: st.Attempt, Status: string(st.Status), Error: st.Error})
	m.propagate(r, i)
}

// attempt finds a step whose current attempt is the given one and whose
// status is want: events about any other attempt are late and change
// nothing.
func (m *Machine) attempt(step string, attempt int, want StepStatus) (int, *Step, bool) {
	i, ok := m.find(step)
	if !ok {
		return 0, nil, false
	}
	st := m.Run.Steps[i]
	return i, st, st.Status == want && st.Attempt == attempt
}

func (m *Machine) childSpawned(r *result, ev ChildSpawned) {
	i, st, ok := m.attempt(ev.Step, ev.Attempt, StepRunning)
	if !ok || st.ChildRunID == ev.ChildRunID {
		return
	}
	st.ChildRunID = ev.ChildRunID
	r.change(i, st.ID)
	r.record(Record{Type: RecChildSpawned, Step: st.ID, Attempt: st.Attempt, Child: ev.ChildRunID, Detail: ev.Detail})
	if ev.Detached {
		m.stepEnded(r, StepEnded{Step: ev.Step, Attempt: ev.Attempt, Output: map[string]any{"child_run_id": ev.ChildRunID}, At: ev.At}, true)
	}
}

func (m *Machine) childEnded(r *result, ev ChildEnded) {
	i, st, ok := m.attempt(ev.Step, ev.Attempt, StepRunning)
	if !ok {
		return
	}
	r.record(Record{Type: RecChildEnded, Step: st.ID, Attempt: st.Attempt, Child: ev.ChildRunID, Status: string(ev.Status), Error: ev.Error})
	if st.ChildRunID == "" {
		st.ChildRunID = ev.ChildRunID
		r.change(i, st.ID)
	}
	end := StepEnded{Step: ev.Step, Attempt: ev.Attempt, Output: ev.Output, At: ev.At}
	// a child cancelled by a user fails the step for good: retries are
	// for failures, not cancels; a child cancelled for the step's own
	// timeout (EndError set) is a failure like any other
	retry := !(ev.Status == RunCancelled && st.EndError == "")
	if ev.Status != RunSucceeded {
		end.Output = nil
		end.Error = ev.Error
		if st.EndError != "" {
			end.Error = st.EndError // the child was cancelled for the step
		}
		if end.Error == "" {
			end.Error = fmt.Sprintf("child run %s %s", ev.ChildRunID, ev.Status)
		}
	}
	m.stepEnded(r, end, retry)
}

// endWithChild sets (or, with an empty error, clears) the error a running
// sub_workflow attempt ends with when its cancelled child ends.
func (m *Machine) endWithChild(r *result, ev EndWithChild) {
	i, st, ok := m.attempt(ev.Step, ev.Attempt, StepRunning)
	if !ok {
		return
	}
	st.EndError = ev.Error
	r.change(i, st.ID)
	rec := Record{Type: RecStepEnding, Step: st.ID, Attempt: st.Attempt, Error: ev.Error}
	if ev.Error == "" {
		rec.Detail = "the step no longer ends with its child: the child could not be cancelled"
	}
	r.record(rec)
}

func (m *Machine) retryDue(r *result, ev RetryDue) {
	i, st, ok := m.attempt(ev.Step, ev.Attempt, StepPending)
	if !ok || st.RetryAt.IsZero() {
		return
	}
	st.RetryAt = time.Time{}
	st.RetriesUsed++
	m.begin(r, i)
}
