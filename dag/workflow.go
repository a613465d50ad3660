package dag

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the kind of a step.
type Kind string

const (
	KindTask        Kind = "task"
	KindShell       Kind = "shell"
	KindSubWorkflow Kind = "sub_workflow"
	KindForEach     Kind = "for_each"
	KindLoop        Kind = "loop"
	KindPlanner     Kind = "planner"
)

// Condition is what an upstream step must have done for a dependency to be met.
type Condition string

const (
	Succeeded Condition = "succeeded" // what a bare step in after= means
	Failed    Condition = "failed"
	Done      Condition = "done" // succeeded or failed
)

// The priority range, for runs and steps: higher runs first. Every
// check of a priority is PriorityInRange; every text that names the
// range is made from these two.
const (
	MinPriority = 0
	MaxPriority = 99
)

// PriorityInRange reports whether n is a priority: an int from
// MinPriority to MaxPriority.
func PriorityInRange(n int64) bool { return n >= MinPriority && n <= MaxPriority }

// Idempotency strategies of sub_workflow and of a run's start.
const (
	// ReturnExisting reuses the run the key is bound to, whatever its
	// status (the default when only a key is given).
	ReturnExisting = "return_existing"
	// FailExisting refuses to start, naming the run the key is bound to.
	FailExisting = "fail"
	// FailOnRunning refuses only while the bound run is unfinished, and
	// otherwise starts a new run that takes the key.
	FailOnRunning = "fail_on_running"
)

// IdempotencyStrategies lists the strategies, the default first. Every
// check of a strategy (IsIdempotencyStrategy) and every text that lists
// them (StrategyList, StrategyMeaning) is made from it.
var IdempotencyStrategies = []string{ReturnExisting, FailExisting, FailOnRunning}

// strategyMeanings say, in a few words, what a start does by each
// strategy when its key is already bound to a run.
var strategyMeanings = map[string]string{
	ReturnExisting: "reuse the bound run, whatever its status",
	FailExisting:   "refuse to start, naming the bound run",
	FailOnRunning:  "refuse while the bound run is unfinished, else start a new run that takes the key",
}

// IsIdempotencyStrategy reports whether s names a strategy ("" does not:
// it means the default, ReturnExisting).
func IsIdempotencyStrategy(s string) bool { return slices.Contains(IdempotencyStrategies, s) }

// StrategyList is the strategies as an error names them:
// "return_existing, fail, fail_on_running".
func StrategyList() string { return strings.Join(IdempotencyStrategies, ", ") }

// StrategyMeaning says in a few words what a start does by strategy s
// when its key is already bound to a run; "" for what is not a strategy.
func StrategyMeaning(s string) string { return strategyMeanings[s] }

// DefaultMaxDepth is the sub-workflow nesting limit when workflow() sets none.
const DefaultMaxDepth = 3

// MaxDepthLimit is the largest max_depth a workflow may declare.
const MaxDepthLimit = 10

// Dep is one dependency of a step on another.
type Dep struct {
	Step     string
	Cond     Condition
	Implicit bool   // added by a reference the step makes, not by after=
	Via      string // for an implicit dependency, the argument holding the reference: inputs, env, priority, idempotency_key or script
	Pos      Pos
}

// String renders the dependency as after= would write it.
func (d Dep) String() string {
	if d.Cond == Succeeded || d.Cond == "" {
		return d.Step
	}
	return d.Step + "." + string(d.Cond)
}

// Child describes the workflow a sub_workflow step runs.
type Child struct {
	Name                string // the workflow name; only a label when Script is set
	Version             int    // 0: the latest
	Detach              bool
	IdempotencyKey      any    // nil, a string or a *Ref
	IdempotencyStrategy string // "", return_existing, fail, fail_on_running
	Script              any    // nil, a string or a *Ref: a child declared at spawn time
}

// Static reports whether the child is known before the run starts.
func (c *Child) Static() bool { return c.Script == nil }

// Step is one declared step.
type Step struct {
	ID   string
	Kind Kind
	Pos  Pos // the call that declared it

	After  []Dep          // explicit after= entries, in order
	Inputs map[string]any // may hold references

	// task
	Body    string // the name of the Starlark body function ("lambda" for lambdas)
	Handler string // the name of a task handler the host registered

	// shell
	Command string
	Env     map[string]any
	Dir     string

	Retries    int
	RetryDelay time.Duration
	Timeout    time.Duration
	Optional   bool
	Priority   any // nil, int64 or *Ref

	Child   *Child   // sub_workflow, for_each and loop
	Dynamic *Dynamic // for_each and loop (dynamic.go)
}

// Deps returns the explicit dependencies followed by the implicit ones that
// references add, one entry per upstream step. A reference to a step that
// after= already names adds nothing: the explicit condition rules.
func (s *Step) Deps() []Dep {
	deps := make([]Dep, 0, len(s.After)+2)
	// few dependencies: a linear search beats allocating a map
	var seen map[string]bool
	has := func(id string) bool {
		if seen != nil {
			return seen[id]
		}
		for _, d := range deps {
			if d.Step == id {
				return true
			}
		}
		return false
	}
	add := func(d Dep) {
		deps = append(deps, d)
		switch {
		case seen != nil:
			seen[d.Step] = true
		case len(deps) > 32:
			seen = make(map[string]bool, 2*len(deps))
			for _, e := range deps {
				seen[e.Step] = true
			}
		}
	}
	for _, d := range s.After {
		add(d)
	}
	s.walkRefs(func(arg string, r *Ref) {
		if (r.Kind == RefOutput || r.Kind == RefChildRunID) && !has(r.Step) {
			add(Dep{Step: r.Step, Cond: Succeeded, Implicit: true, Via: arg, Pos: r.Pos})
		}
	})
	return deps
}

// WalkRefs visits every reference a step makes, with the argument that
// holds it (inputs, env, priority, idempotency_key, script).
func (s *Step) WalkRefs(fn func(arg string, r *Ref)) { s.walkRefs(fn) }

// walkRefs visits every reference a step makes, with the argument that
// holds it.
func (s *Step) walkRefs(fn func(arg string, r *Ref)) {
	in := func(arg string) func(*Ref) { return func(r *Ref) { fn(arg, r) } }
	WalkRefs(s.Inputs, in("inputs"))
	WalkRefs(s.Env, in("env"))
	WalkRefs(s.Priority, in("priority"))
	if s.Child != nil {
		WalkRefs(s.Child.IdempotencyKey, in("idempotency_key"))
		WalkRefs(s.Child.Script, in("script"))
	}
	if s.Dynamic != nil {
		WalkRefs(s.Dynamic.Items, in("items"))
	}
}

// Param is a declared run parameter with its default.
type Param struct {
	Name    string
	Default any
}

// Workflow is a declared workflow.
type Workflow struct {
	Name        string
	Version     int // 0: automatic, one new version per distinct content
	Description string
	Params      []Param
	Secrets     []string
	Timeout     time.Duration
	MaxDepth    int
	Pos         Pos    // the workflow() call, or the file's start
	File        string // the root file, as the user named it

	Steps     []*Step        // in declaration order
	Output    map[string]any // nil: the outputs of the steps nothing depends on
	OutputPos Pos

	index map[string]int
}

// Step returns the step with the given id, or nil.
func (w *Workflow) Step(id string) *Step {
	if w.index == nil || len(w.index) != len(w.Steps) {
		w.reindex()
	}
	if i, ok := w.index[id]; ok {
		return w.Steps[i]
	}
	return nil
}

// Freeze builds the step index, after which the workflow is only read:
// call it before sharing the workflow between goroutines.
func (w *Workflow) Freeze() { w.reindex() }

// StepIndex returns the declaration index of a step, or -1.
func (w *Workflow) StepIndex(id string) int {
	if w.Step(id) == nil {
		return -1
	}
	return w.index[id]
}

func (w *Workflow) reindex() {
	w.index = make(map[string]int, len(w.Steps))
	for i, s := range w.Steps {
		if _, dup := w.index[s.ID]; !dup {
			w.index[s.ID] = i
		}
	}
}

// AddStep appends a step.
func (w *Workflow) AddStep(s *Step) {
	w.Steps = append(w.Steps, s)
	if w.index != nil {
		if _, dup := w.index[s.ID]; !dup {
			w.index[s.ID] = len(w.Steps) - 1
		}
	}
}

// ParamNames lists the declared params in order.
func (w *Workflow) ParamNames() []string {
	names := make([]string, len(w.Params))
	for i, p := range w.Params {
		names[i] = p.Name
	}
	return names
}

// Param returns a declared param, or nil.
func (w *Workflow) Param(name string) *Param {
	for i := range w.Params {
		if w.Params[i].Name == name {
			return &w.Params[i]
		}
	}
	return nil
}

// HasSecret reports whether the workflow declares the secret.
func (w *Workflow) HasSecret(name string) bool {
	for _, s := range w.Secrets {
		if s == name {
			return true
		}
	}
	return false
}

// EffectiveMaxDepth is MaxDepth, or the default when unset.
func (w *Workflow) EffectiveMaxDepth() int {
	if w.MaxDepth == 0 {
		return DefaultMaxDepth
	}
	return w.MaxDepth
}

// Handled reports whether some step's after= names the step's .failed or
// .done, so that its failure does not fail the run.
func (w *Workflow) Handled(id string) bool {
	for _, s := range w.Steps {
		for _, d := range s.After {
			if d.Step == id && (d.Cond == Failed || d.Cond == Done) {
				return true
			}
		}
	}
	return false
}

// Sinks lists, in declaration order, the steps nothing depends on: their
// outputs make the workflow's output when output() is not called.
func (w *Workflow) Sinks() []*Step {
	used := make(map[string]bool)
	for _, s := range w.Steps {
		for _, d := range s.Deps() {
			used[d.Step] = true
		}
	}
	var sinks []*Step
	for _, s := range w.Steps {
		if !used[s.ID] {
			sinks = append(sinks, s)
		}
	}
	return sinks
}

// Downstream returns the ids of the steps that depend, directly or not, on
// the given step, in declaration order, the step itself first.
func (w *Workflow) Downstream(id string) []string {
	dependents := make(map[string][]string)
	for _, s := range w.Steps {
		for _, d := range s.Deps() {
			dependents[d.Step] = append(dependents[d.Step], s.ID)
		}
	}
	reached := map[string]bool{id: true}
	queue := []string{id}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range dependents[cur] {
			if !reached[next] {
				reached[next] = true
				queue = append(queue, next)
			}
		}
	}
	out := []string{id}
	for _, s := range w.Steps {
		if reached[s.ID] && s.ID != id {
			out = append(out, s.ID)
		}
	}
	return out
}

// DownstreamOf is the union of Downstream over ids, in declaration
// order.
func (w *Workflow) DownstreamOf(ids []string) []string {
	in := map[string]bool{}
	for _, id := range ids {
		for _, s := range w.Downstream(id) {
			in[s] = true
		}
	}
	var out []string
	for _, s := range w.Steps {
		if in[s.ID] {
			out = append(out, s.ID)
		}
	}
	return out
}

var stepIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// MaxStepIDLen bounds the length of a step id.
const MaxStepIDLen = 128

// ShortQuote quotes a string for a message, cut to a readable length.
func ShortQuote(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "…"
	}
	return strconv.Quote(s)
}

// ValidStepID reports whether id is a valid declared step id.
func ValidStepID(id string) bool { return stepIDPattern.MatchString(id) }
