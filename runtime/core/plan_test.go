package core_test

import (
	"strings"
	"testing"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
)

func plannedTask(id string, after ...string) *dag.Step {
	s := &dag.Step{ID: id, Kind: dag.KindTask, Body: "f", Pos: dag.Pos{File: "main.star", Line: 9, Col: 5}}
	for _, a := range after {
		s.After = append(s.After, dag.Dep{Step: a, Cond: dag.Succeeded})
	}
	return s
}

func (h *harness) planned(step string, steps []*dag.Step, replace ...string) core.Result {
	h.t.Helper()
	return h.apply(core.StepsPlanned{Step: step, Attempt: h.m.StepState(step).Attempt, Steps: steps, Replace: replace, Output: map[string]any{"steps": []any{}}, At: h.now})
}

// A planner's steps join the run after it: pending, started once their
// conditions hold, the run ending only when they have.
func TestStepsPlannedJoinTheRun(t *testing.T) {
	h := newHarness(t, `planner("p", f)`+"\n", nil)
	h.start()
	res := h.planned("p", []*dag.Step{plannedTask("a", "p"), plannedTask("b", "a")})
	if got := h.m.StepState("p").Status; got != core.StepSucceeded {
		t.Fatalf("planner %s", got)
	}
	if h.m.StepState("a").Status != core.StepRunning || h.m.StepState("b").Status != core.StepPending {
		t.Fatalf("a %s, b %s", h.m.StepState("a").Status, h.m.StepState("b").Status)
	}
	if !strings.Contains(strings.Join(res.Changed, " "), "b") || res.History[0].Type != core.RecStepsPlanned {
		t.Fatalf("changed %v, history %+v", res.Changed, res.History)
	}
	h.ok("a", nil)
	if h.m.Run.Status.Terminal() {
		t.Fatal("the run ended before its planned steps")
	}
	h.ok("b", nil)
	if h.m.Run.Status != core.RunSucceeded {
		t.Fatalf("run %s", h.m.Run.Status)
	}
}

// Two planners: the second's steps are appended to the workflow as the
// first left it; a step id the first took meanwhile fails the second.
func TestStepsPlannedByTwoPlanners(t *testing.T) {
	h := newHarness(t, `planner("p", f)`+"\n"+`planner("q", f)`+"\n", nil)
	h.start()
	h.planned("p", []*dag.Step{plannedTask("a", "p")})
	h.planned("q", []*dag.Step{plannedTask("a", "q")})
	st := h.m.StepState("q")
	if st.Status != core.StepFailed || !strings.Contains(st.Error, `duplicate step id "a" (another planner declared it meanwhile`) {
		t.Fatalf("q %s: %s", st.Status, st.Error)
	}
	if n := len(h.m.W.Steps); n != 3 {
		t.Fatalf("%d steps, want p, q, a", n)
	}
}

// A re-plan drops the steps planned before (the last of the run) and
// appends the new ones; a cancel requested meanwhile plans nothing.
func TestStepsReplannedAndCancelled(t *testing.T) {
	h := newHarness(t, `planner("p", f)`+"\n", nil)
	h.start()
	h.planned("p", []*dag.Step{plannedTask("a", "p"), plannedTask("b", "p")})
	h.ok("a", nil)
	h.ok("b", nil)
	h.apply(core.Rerun{Reset: []string{"p", "a", "b"}, At: h.now})
	h.planned("p", []*dag.Step{plannedTask("c", "p")}, "a", "b")
	var ids []string
	for _, s := range h.m.W.Steps {
		ids = append(ids, s.ID)
	}
	if strings.Join(ids, ",") != "p,c" || h.m.StepState("a") != nil {
		t.Fatalf("steps %v", ids)
	}
	h.ok("c", nil)
	if h.m.Run.Status != core.RunSucceeded {
		t.Fatalf("run %s", h.m.Run.Status)
	}

	h2 := newHarness(t, `planner("p", f)`+"\n", nil)
	h2.start()
	h2.apply(core.Cancel{At: h2.now})
	h2.planned("p", []*dag.Step{plannedTask("a", "p")})
	if len(h2.m.W.Steps) != 1 || h2.m.StepState("p").Status != core.StepCancelled {
		t.Fatalf("steps %d, p %s", len(h2.m.W.Steps), h2.m.StepState("p").Status)
	}
}
