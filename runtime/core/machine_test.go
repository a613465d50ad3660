package core_test

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func declare(t testing.TB, src string) *dag.Workflow {
	t.Helper()
	ws := lang.NewWorkspaceFiles(map[string][]byte{"main.star": []byte("def f(ctx):\n    pass\n" + src)}, lang.Options{})
	prog, err := ws.Load(context.Background(), "main.star")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(prog.Errors) > 0 {
		t.Fatalf("script errors: %v", prog.Errors)
	}
	return prog.Workflow
}

// harness applies events and checks what comes out.
type harness struct {
	t   *testing.T
	m   *core.Machine
	now time.Time
	// free is the workers offered to each event (m.Pooled)
	free int
}

func newHarness(t *testing.T, src string, params map[string]any) *harness {
	w := declare(t, src)
	return &harness{t: t, m: core.New(w, &core.Run{ID: "r1", Params: params}), now: t0}
}

func (h *harness) apply(ev core.Event) core.Result {
	h.t.Helper()
	h.now = h.now.Add(time.Second)
	return h.m.Apply(ev, core.Inputs{Free: h.free})
}

func (h *harness) start() core.Result { return h.apply(core.Start{At: h.now}) }

func (h *harness) ok(step string, output any) core.Result {
	h.t.Helper()
	return h.apply(core.StepEnded{Step: step, Attempt: h.m.StepState(step).Attempt, Output: output, At: h.now})
}

func (h *harness) fail(step, msg string) core.Result {
	h.t.Helper()
	return h.apply(core.StepEnded{Step: step, Attempt: h.m.StepState(step).Attempt, Error: msg, At: h.now})
}

// statuses renders "id=status/attempt" for every step, in order.
func (h *harness) statuses() string {
	var parts []string
	for _, s := range h.m.Run.Steps {
		parts = append(parts, s.ID+"="+string(s.Status)+"/"+itoa(s.Attempt))
	}
	return strings.Join(parts, " ")
}

func (h *harness) expect(want string) {
	h.t.Helper()
	if got := h.statuses(); got != want {
		h.t.Fatalf("step states:\n got  %s\n want %s", got, want)
	}
}

func (h *harness) expectRun(status core.RunStatus, errText string) {
	h.t.Helper()
	if h.m.Run.Status != status || h.m.Run.Error != errText {
		h.t.Fatalf("run = %s %q, want %s %q", h.m.Run.Status, h.m.Run.Error, status, errText)
	}
}

func started(res core.Result) []string {
	var ids []string
	for _, a := range res.Actions {
		if s, ok := a.(core.StartStep); ok {
			ids = append(ids, s.Step+"#"+itoa(s.Attempt))
		}
	}
	return ids
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestChainRunsInOrderAndSucceeds(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
b = task("b", f, after = [a])
task("c", f, inputs = {"x": b.output["v"]})
`, nil)
	if got := started(h.start()); !reflect.DeepEqual(got, []string{"a#1"}) {
		t.Fatalf("start began %v, want [a#1]", got)
	}
	if got := started(h.ok("a", nil)); !reflect.DeepEqual(got, []string{"b#1"}) {
		t.Fatalf("a's end began %v", got)
	}
	h.ok("b", map[string]any{"v": int64(7)})
	h.expect("a=succeeded/1 b=succeeded/1 c=running/1")
	if v := h.m.Resolve(h.m.W.Step("c").Inputs); !reflect.DeepEqual(v, map[string]any{"x": int64(7)}) {
		t.Fatalf("c's inputs resolve to %v", v)
	}
	res := h.ok("c", map[string]any{"done": true})
	h.expectRun(core.RunSucceeded, "")
	if _, ok := res.Actions[len(res.Actions)-1].(core.EndRun); !ok {
		t.Fatalf("last action is %T, want EndRun", res.Actions[len(res.Actions)-1])
	}
	// without output(), the output is that of the steps nothing depends on
	if want := map[string]any{"c": map[string]any{"done": true}}; !reflect.DeepEqual(h.m.Run.Output, want) {
		t.Fatalf("output %v, want %v", h.m.Run.Output, want)
	}
}

func TestFailureSkipsDownstreamAndFailsRun(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
b = task("b", f, after = [a])
task("c", f, after = [b])
task("other", f)
`, nil)
	h.start()
	h.fail("a", "boom")
	h.expect("a=failed/1 b=skipped/0 c=skipped/0 other=running/1")
	h.expectRun(core.RunRunning, "")
	h.ok("other", nil)
	h.expectRun(core.RunFailed, "a: boom")
}

func TestHandledFailureRunsBranchesAndSucceeds(t *testing.T) {
	h := newHarness(t, `
d = task("deploy", f)
task("rollback", f, after = [d.failed])
task("report", f, after = ["deploy.done"])
task("next", f, after = [d])
`, nil)
	h.start()
	res := h.fail("deploy", "bad")
	if got := started(res); !reflect.DeepEqual(got, []string{"rollback#1", "report#1"}) {
		t.Fatalf("deploy's failure began %v", got)
	}
	h.expect("deploy=failed/1 rollback=running/1 report=running/1 next=skipped/0")
	h.ok("rollback", nil)
	h.ok("report", nil)
	h.expectRun(core.RunSucceeded, "")
}

func TestSuccessSkipsFailedBranch(t *testing.T) {
	h := newHarness(t, `
d = task("deploy", f)
task("rollback", f, after = [d.failed])
task("report", f, after = [d.done])
`, nil)
	h.start()
	h.ok("deploy", nil)
	h.expect("deploy=succeeded/1 rollback=skipped/0 report=running/1")
	h.ok("report", nil)
	h.expectRun(core.RunSucceeded, "")
}

func TestOptionalFailureLetsDependentsProceed(t *testing.T) {
	h := newHarness(t, `
a = task("a", f, optional = True)
task("b", f, inputs = {"x": a.output})
`, nil)
	h.start()
	h.fail("a", "flaky")
	h.expect("a=failed/1 b=running/1")
	// a reference to a step that did not succeed resolves to None
	if v := h.m.Resolve(h.m.W.Step("b").Inputs); !reflect.DeepEqual(v, map[string]any{"x": nil}) {
		t.Fatalf("inputs = %v", v)
	}
	h.ok("b", nil)
	h.expectRun(core.RunSucceeded, "")
}

func TestRetriesWaitForTheTimerThenGiveUp(t *testing.T) {
	h := newHarness(t, `task("a", f, retries = 2, retry_delay = "10s")`, nil)
	h.start()
	failedAt := h.now
	res := h.fail("a", "try 1")
	timer, ok := res.Actions[0].(core.ArmTimer)
	if !ok || timer.At != failedAt.Add(10*time.Second) {
		t.Fatalf("actions %v, want a timer 10s ahead", res.Actions)
	}
	h.expect("a=pending/1")
	// a stale end report for attempt 1 changes nothing
	if res := h.apply(core.StepEnded{Step: "a", Attempt: 1, At: h.now}); len(res.Changed) != 0 {
		t.Fatalf("stale report changed %v", res.Changed)
	}
	if got := started(h.apply(core.RetryDue{Step: "a", Attempt: 1, At: h.now})); !reflect.DeepEqual(got, []string{"a#2"}) {
		t.Fatalf("retry began %v", got)
	}
	h.fail("a", "try 2")
	h.apply(core.RetryDue{Step: "a", Attempt: 2, At: h.now})
	h.fail("a", "try 3")
	h.expect("a=failed/3")
	h.expectRun(core.RunFailed, "a: try 3")
}

func TestCancelStopsRunningAndCancelsPending(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
task("b", f, after = [a])
task("c", f)
`, nil)
	h.start()
	h.ok("c", nil)
	res := h.apply(core.Cancel{At: h.now})
	if len(res.Actions) != 1 || res.Actions[0] != (core.StopStep{Step: "a", Attempt: 1}) {
		t.Fatalf("cancel actions %v, want StopStep a#1", res.Actions)
	}
	h.expect("a=running/1 b=cancelled/0 c=succeeded/1")
	h.expectRun(core.RunRunning, "")
	h.fail("a", "killed")
	h.expect("a=cancelled/1 b=cancelled/0 c=succeeded/1")
	h.expectRun(core.RunCancelled, "")
	// nothing restarts a cancelled run
	if res := h.apply(core.Resume{At: h.now}); len(res.Actions) != 0 {
		t.Fatalf("resume of a cancelled run acted: %v", res.Actions)
	}
}

func TestTimeoutFailsTheRun(t *testing.T) {
	h := newHarness(t, `
workflow(timeout = "1m")
task("a", f)
`, nil)
	h.start()
	h.apply(core.TimedOut{At: h.now})
	h.fail("a", "stopped")
	h.expectRun(core.RunFailed, "the run timed out after 1m")
}

func TestResumeRestartsAttemptsWithoutUsingRetries(t *testing.T) {
	h := newHarness(t, `
a = task("a", f, retries = 1)
sub_workflow("child", id = "kid", script = "x")
task("b", f, after = [a])
`, nil)
	h.start()
	h.m.StepState("kid").ChildRunID = "child-1"
	h.expect("a=running/1 kid=running/1 b=pending/0")
	res := h.apply(core.Resume{At: h.now})
	var reattached bool
	for _, a := range res.Actions {
		if ra, ok := a.(core.ReattachChild); ok && ra.ChildRunID == "child-1" && ra.Attempt == 1 {
			reattached = true
		}
	}
	if !reattached {
		t.Fatalf("resume did not reattach the child: %v", res.Actions)
	}
	if got := started(res); !reflect.DeepEqual(got, []string{"a#2"}) {
		t.Fatalf("resume began %v, want [a#2]", got)
	}
	h.expect("a=running/2 kid=running/1 b=pending/0")
	// the restart did not use up a's one retry
	h.fail("a", "once")
	h.expect("a=pending/2 kid=running/1 b=pending/0")
}

func TestOutputResolvesReferencesAndParams(t *testing.T) {
	h := newHarness(t, `
workflow(params = {"env": "dev"})
a = task("a", f)
output(url = a.output["urls"][1], env = param("env"), missing = a.output["nope"]["deeper"])
`, map[string]any{"env": "prod"})
	h.start()
	h.ok("a", map[string]any{"urls": []any{"x", "y"}})
	want := map[string]any{"url": "y", "env": "prod", "missing": nil}
	if !reflect.DeepEqual(h.m.Run.Output, want) {
		t.Fatalf("output %v, want %v", h.m.Run.Output, want)
	}
}

func TestHistoryRecordsEveryTransition(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
task("b", f, after = [a.failed])
`, nil)
	var types []string
	for _, res := range []core.Result{h.start(), h.ok("a", nil)} {
		for _, r := range res.History {
			types = append(types, string(r.Type)+":"+r.Step+":"+r.Status)
		}
	}
	want := []string{"run_started::", "step_started:a:", "step_ended:a:succeeded", "step_ended:b:skipped", "run_ended::succeeded"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("history\n got  %v\n want %v", types, want)
	}
}

func TestRerunResetsDownstreamAndKeepsUpstream(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
b = task("b", f, after = [a])
c = task("c", f, after = [b])
task("d", f, after = [c.failed])
`, nil)
	h.start()
	h.ok("a", map[string]any{"v": int64(1)})
	h.ok("b", nil)
	h.fail("c", "broke")
	h.ok("d", nil)
	h.expectRun(core.RunSucceeded, "")
	res := h.apply(core.Rerun{Reset: []string{"b", "c", "d"}, At: h.now})
	if got := started(res); !reflect.DeepEqual(got, []string{"b#2"}) {
		t.Fatalf("rerun began %v, want [b#2]", got)
	}
	h.expect("a=succeeded/1 b=running/2 c=pending/1 d=pending/1")
	h.expectRun(core.RunRunning, "")
	h.ok("b", nil)
	h.ok("c", nil)
	// c succeeded this time: its .failed handler is skipped
	h.expect("a=succeeded/1 b=succeeded/2 c=succeeded/2 d=skipped/1")
	h.expectRun(core.RunSucceeded, "")
}

func TestRerunReopensAWaitingStep(t *testing.T) {
	h := newHarness(t, `
k = sub_workflow("kid", script = "x")
task("after", f, after = [k])
`, nil)
	h.start()
	h.m.StepState("kid").ChildRunID = "child-1"
	h.apply(core.ChildEnded{Step: "kid", Attempt: 1, ChildRunID: "child-1", Status: core.RunFailed, Error: "child broke", At: h.now})
	h.expectRun(core.RunFailed, "kid: child broke")
	res := h.apply(core.Rerun{Reset: []string{"after"}, Reopen: []string{"kid"}, At: h.now})
	if len(started(res)) != 0 {
		t.Fatalf("a reopened step must wait for its child, not start: %v", started(res))
	}
	h.expect("kid=running/2 after=pending/0")
	h.apply(core.ChildEnded{Step: "kid", Attempt: 2, ChildRunID: "child-1", Status: core.RunSucceeded, Output: map[string]any{"ok": true}, At: h.now})
	h.ok("after", nil)
	h.expectRun(core.RunSucceeded, "")
}

func TestResumeOfACancelledRunStartsNothing(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
task("b", f, after = [a])
`, nil)
	h.start()
	h.m.Run.CancelRequested = true // written, then the process died
	res := h.apply(core.Resume{At: h.now})
	if len(started(res)) != 0 {
		t.Fatalf("resume started %v", started(res))
	}
	h.expect("a=cancelled/1 b=cancelled/0")
	h.expectRun(core.RunCancelled, "")
}

// With a pool of workers, the steps that may start get the free workers
// by priority; those without one stay pending (Ready) and start on
// Dispatch, as new attempts only then. A Ready step that is cancelled
// ignores its Dispatch.
func TestPooledStartsByPriorityAndDispatchesTheRest(t *testing.T) {
	h := newHarness(t, `
task("low", f, priority = 10)
task("high", f, priority = 90)
task("mid", f, priority = 50)
`, nil)
	h.m.Pooled = true
	if d := h.m.Demand(core.Start{At: h.now}); d != 3 {
		t.Fatalf("Demand(Start) = %d; want 3 (three pending steps)", d)
	}
	h.free = 1
	res := h.start()
	h.free = 0
	if res.Took != 1 {
		t.Fatalf("took %d workers of the 1 offered", res.Took)
	}
	var started, waiting []string
	for _, a := range res.Actions {
		switch a := a.(type) {
		case core.StartStep:
			started = append(started, a.Step)
		case core.AwaitWorker:
			waiting = append(waiting, a.Step)
		}
	}
	if strings.Join(started, ",") != "high" || strings.Join(waiting, ",") != "mid,low" {
		t.Fatalf("started %v, waiting %v", started, waiting)
	}
	for _, id := range []string{"mid", "low"} {
		if st := h.m.StepState(id); st.Status != core.StepPending || st.Attempt != 0 || !st.Ready {
			t.Fatalf("%s: %+v, want pending, attempt 0, ready", id, st)
		}
	}
	// a step that ends frees no worker here: the engine dispatches
	h.ok("high", nil)
	at := h.now
	res = h.apply(core.Dispatch{Step: "mid", At: at})
	if len(res.Actions) != 1 || res.Actions[0] != (core.StartStep{Step: "mid", Attempt: 1, StartedAt: at}) {
		t.Fatalf("dispatch of mid: %+v", res.Actions)
	}
	h.apply(core.Cancel{At: h.now})
	if st := h.m.StepState("low"); st.Status != core.StepCancelled {
		t.Fatalf("low after cancel: %s", st.Status)
	}
	if res := h.apply(core.Dispatch{Step: "low", At: h.now}); len(res.Actions) != 0 || len(res.Changed) != 0 {
		t.Fatalf("dispatch of a cancelled step did something: %+v", res)
	}
}

// A sub_workflow step whose child was cancelled for it ends with the
// error it was given, not the child's; a child that succeeded first still
// ends it succeeded; the next attempt starts without that error.
func TestEndWithChild(t *testing.T) {
	h := newHarness(t, `sub_workflow("kid", id = "k", retries = 1, retry_delay = "1ms")`+"\n", nil)
	h.start()
	h.apply(core.ChildSpawned{Step: "k", Attempt: 1, ChildRunID: "c1", At: h.now})
	res := h.apply(core.EndWithChild{Step: "k", Attempt: 1, Error: "timed out after 1s; its child run c1 was cancelled", At: h.now})
	if len(res.Changed) != 1 || len(res.History) != 1 || res.History[0].Type != "step_ending" || res.History[0].Error == "" {
		t.Fatalf("EndWithChild on the running attempt: changed %v, history %+v; want the step changed and step_ending noted", res.Changed, res.History)
	}
	if res := h.apply(core.EndWithChild{Step: "k", Attempt: 2, Error: "x", At: h.now}); len(res.Changed) != 0 || len(res.History) != 0 {
		t.Fatalf("EndWithChild on an attempt that is not running changed something: %+v", res)
	}
	h.apply(core.ChildEnded{Step: "k", Attempt: 1, ChildRunID: "c1", Status: core.RunCancelled, Error: "cancelled", At: h.now})
	st := h.m.StepState("k")
	if st.Status != core.StepPending || st.Error != "timed out after 1s; its child run c1 was cancelled" {
		t.Fatalf("after the cancelled child: %s %q", st.Status, st.Error)
	}
	h.apply(core.RetryDue{Step: "k", Attempt: 1, At: h.now})
	if st.Attempt != 2 || st.EndError != "" {
		t.Fatalf("retry: attempt %d, end error %q", st.Attempt, st.EndError)
	}
	h.apply(core.EndWithChild{Step: "k", Attempt: 2, Error: "timed out", At: h.now})
	h.apply(core.ChildEnded{Step: "k", Attempt: 2, ChildRunID: "c2", Status: core.RunSucceeded, Output: 1, At: h.now})
	if st.Status != core.StepSucceeded {
		t.Fatalf("a child that succeeded first: %s %q", st.Status, st.Error)
	}
}
