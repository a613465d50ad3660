package core_test

import (
	"testing"

	"github.com/flowscript/flowscript/runtime/core"
)

// SPEC §4 [12-02]: a child cancelled by a user fails its parent's step
// with the cancel as the error, and the step is not retried; a child
// that failed (a timeout included) is retried.
func TestUserCancelledChildIsNotRetried(t *testing.T) {
	h := newHarness(t, `sub_workflow("kid", retries = 2, retry_delay = "1ms")`+"\n", nil)
	h.start()
	h.apply(core.ChildSpawned{Step: "kid", Attempt: 1, ChildRunID: "c1", At: h.now})
	res := h.apply(core.ChildEnded{Step: "kid", Attempt: 1, ChildRunID: "c1", Status: core.RunCancelled, Error: "child run c1 (kid) cancelled", At: h.now})
	for _, a := range res.Actions {
		if _, ok := a.(core.ArmTimer); ok {
			t.Fatalf("a user-cancelled child scheduled a retry: %+v", res.Actions)
		}
	}
	h.expect("kid=failed/1")
	h.expectRun(core.RunFailed, "kid: child run c1 (kid) cancelled")
}

func TestFailedChildIsRetried(t *testing.T) {
	h := newHarness(t, `sub_workflow("kid", retries = 2, retry_delay = "1ms")`+"\n", nil)
	h.start()
	h.apply(core.ChildSpawned{Step: "kid", Attempt: 1, ChildRunID: "c1", At: h.now})
	h.apply(core.ChildEnded{Step: "kid", Attempt: 1, ChildRunID: "c1", Status: core.RunFailed, Error: "the run timed out after 1s", At: h.now})
	if st := h.m.StepState("kid"); st.Status != core.StepPending || st.RetryAt.IsZero() {
		t.Fatalf("a failed child: step %s, retry at %v; want a retry scheduled", st.Status, st.RetryAt)
	}
}

// SPEC §4 [12-02]: a run that does not fail but has a cancelled step ends
// cancelled, also after a rerun from a later step.
func TestRerunOfACancelledRunStaysCancelled(t *testing.T) {
	h := newHarness(t, `
long = task("long", f)
task("final", f)
`, nil)
	h.start()
	h.ok("final", nil)
	h.apply(core.Cancel{At: h.now})
	h.apply(core.StepEnded{Step: "long", Attempt: 1, Error: "cancelled", At: h.now})
	h.expect("long=cancelled/1 final=succeeded/1")
	h.expectRun(core.RunCancelled, "")
	h.apply(core.Rerun{Reset: []string{"final"}, At: h.now})
	h.ok("final", nil)
	h.expect("long=cancelled/1 final=succeeded/2")
	h.expectRun(core.RunCancelled, "")
	// resetting the cancelled step too lets the run succeed
	h.apply(core.Rerun{Reset: []string{"long"}, At: h.now})
	h.ok("long", nil)
	h.expectRun(core.RunSucceeded, "")
}
