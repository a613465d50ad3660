package dag

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dynamic steps (SPEC §4b) start children whose number is known only at
// run time. A for_each or loop step runs the workflow named by its Child
// (Child.Name, Child.Version) once per item or per iteration; a planner
// step runs a body, like a task, that declares more steps.
//
// The Starlark functions such a step declares (for_each's inputs, loop's
// until) are not data: the program keeps them beside the task bodies,
// under BodyKey(step, part), and a run finds them again by re-evaluating
// its stored source snapshot.

// On-failure policies of a for_each step.
const (
	FailFast = "fail_fast" // the first failed child cancels the others
	Continue = "continue"  // every child runs; the step fails at the end if any failed
)

// OnFailurePolicies lists the valid on_failure values, the default first.
var OnFailurePolicies = []string{FailFast, Continue}

// DefaultMaxIterations is a loop's max_iterations when it sets none.
const DefaultMaxIterations = 100

// Dynamic holds what a for_each or loop step declares besides its child.
type Dynamic struct {
	// Items (for_each) is a literal []any, or a *Ref to a step's output
	// or a param that must resolve to a list.
	Items any
	// InputsFn: the child's inputs come from a function of the item
	// (for_each) stored under BodyKey(id, "inputs"); otherwise the step's
	// Inputs are every child's inputs.
	InputsFn bool
	// MaxConcurrency bounds the children running at once; 0: no bound
	// other than the workers.
	MaxConcurrency int
	// OnFailure is FailFast or Continue (for_each).
	OnFailure string
	// MaxIterations bounds a loop's iterations.
	MaxIterations int
	// Delay is the pause between two iterations of a loop.
	Delay time.Duration
}

// BodyKey is the key under which a program keeps a Starlark function a
// dynamic step declares: "load#inputs", "wait#until". Step ids cannot
// hold '#', so no key meets a task's body, which is kept under its id.
func BodyKey(step, part string) string { return step + "#" + part }

// IsDynamic reports whether the kind starts children known only at run
// time (for_each, loop) or declares steps at run time (planner).
func (k Kind) IsDynamic() bool {
	return k == KindForEach || k == KindLoop || k == KindPlanner
}

// RunsChildren reports whether steps of this kind run child workflows:
// sub_workflow, for_each and loop.
func (k Kind) RunsChildren() bool {
	return k == KindSubWorkflow || k == KindForEach || k == KindLoop
}

// SpawnsMany reports whether steps of this kind start many children, one
// child run per item or iteration: for_each and loop.
func (k Kind) SpawnsMany() bool { return k == KindForEach || k == KindLoop }

// DynamicChildID is the step id of a dynamic step's child i: "load[3]".
func DynamicChildID(step string, i int) string {
	return step + "[" + strconv.Itoa(i) + "]"
}

// ParseDynamicChildID splits "load[3]" into "load" and 3.
func ParseDynamicChildID(id string) (step string, i int, ok bool) {
	open := strings.LastIndexByte(id, '[')
	if open <= 0 || !strings.HasSuffix(id, "]") {
		return "", 0, false
	}
	n, err := strconv.Atoi(id[open+1 : len(id)-1])
	if err != nil || n < 0 {
		return "", 0, false
	}
	return id[:open], n, true
}

// dynamicSummary is the text form of what a dynamic step runs.
func dynamicSummary(s *Step) string {
	var b strings.Builder
	if s.Child != nil {
		b.WriteString(" " + s.Child.Name)
		if s.Child.Version > 0 {
			fmt.Fprintf(&b, " version %d", s.Child.Version)
		}
	}
	d := s.Dynamic
	switch s.Kind {
	case KindForEach:
		fmt.Fprintf(&b, " over %s", FormatValue(d.Items))
	case KindLoop:
		fmt.Fprintf(&b, " until %s()", BodyKey(s.ID, "until"))
	case KindPlanner:
		b.WriteString(" " + s.Body + "()")
	}
	return b.String()
}

// dynamicOptions are the text form of a dynamic step's settings.
func dynamicOptions(s *Step) []string {
	d := s.Dynamic
	if d == nil {
		return nil
	}
	var parts []string
	if d.InputsFn {
		parts = append(parts, "inputs="+BodyKey(s.ID, "inputs")+"(item)")
	}
	if d.MaxConcurrency > 0 {
		parts = append(parts, fmt.Sprintf("max_concurrency=%d", d.MaxConcurrency))
	}
	if d.OnFailure != "" {
		parts = append(parts, "on_failure="+d.OnFailure)
	}
	if s.Kind == KindLoop {
		parts = append(parts, fmt.Sprintf("max_iterations=%d", d.MaxIterations))
		if d.Delay > 0 {
			parts = append(parts, "delay="+FormatDuration(d.Delay))
		}
	}
	return parts
}

// DynamicJSON is the JSON form of a dynamic step's settings.
type DynamicJSON struct {
	Items          any     `json:"items,omitempty"`
	InputsFn       string  `json:"inputs_fn,omitempty"`
	Until          string  `json:"until,omitempty"`
	MaxConcurrency int     `json:"max_concurrency,omitempty"`
	OnFailure      string  `json:"on_failure,omitempty"`
	MaxIterations  int     `json:"max_iterations,omitempty"`
	Delay          *string `json:"delay,omitempty"`
}

func dynamicJSON(s *Step) *DynamicJSON {
	d := s.Dynamic
	if d == nil {
		return nil
	}
	j := &DynamicJSON{
		Items:          EncodeValue(d.Items),
		MaxConcurrency: d.MaxConcurrency,
		OnFailure:      d.OnFailure,
		MaxIterations:  d.MaxIterations,
		Delay:          optDuration(d.Delay),
	}
	if d.InputsFn {
		j.InputsFn = BodyKey(s.ID, "inputs")
	}
	if s.Kind == KindLoop {
		j.Until = BodyKey(s.ID, "until")
	}
	return j
}

// forEachOutputKeys are the keys of a for_each step's output.
var forEachOutputKeys = []string{"failed", "results"}

// validateDynamic checks what the dynamic steps of one workflow declare:
// a for_each's output has only the keys results and failed, and items
// given by a param must default to a list.
func validateDynamic(w *Workflow, byID map[string]*Step) ErrorList {
	var errs ErrorList
	checkOutput := func(r *Ref) {
		if r.Kind != RefOutput || len(r.Path) == 0 {
			return
		}
		target := byID[r.Step]
		if target == nil || target.Kind != KindForEach {
			return
		}
		k, ok := r.Path[0].(string)
		if !ok {
			errs.Add(r.Pos, "%s's output is a dict with the keys failed and results; index it with one of them, not %s", r.Step, FormatValue(r.Path[0]))
			return
		}
		if k != "results" && k != "failed" {
			errs.Add(r.Pos, "%s's output has no key %q: a for_each step's output has the keys failed and results%s", r.Step, k, DidYouMean(k, forEachOutputKeys))
		}
	}
	for _, s := range w.Steps {
		s.walkRefs(func(_ string, r *Ref) { checkOutput(r) })
		if s.Kind != KindForEach || s.Dynamic == nil {
			continue
		}
		if r, ok := s.Dynamic.Items.(*Ref); ok && r.Kind == RefParam {
			if p := w.Param(r.Name); p != nil && p.Default != nil {
				if _, isList := p.Default.([]any); !isList {
					errs.Add(r.Pos, "for_each %q: items: param %q defaults to %s, not a list", s.ID, r.Name, FormatValue(p.Default))
				}
			}
		}
	}
	WalkRefs(w.Output, checkOutput)
	return errs
}
