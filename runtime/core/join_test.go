package core_test

import (
	"fmt"
	"testing"

	"github.com/flowscript/flowscript/runtime/core"
)

// A join after a fan-out (more dependencies than manyDeps) starts only
// once every one of them ended, whatever the order of their ends; it is
// skipped when one of them fails; and after a rerun that resets one of
// them, it waits for that one again.
func TestJoinAfterManyDependencies(t *testing.T) {
	const n = 12
	src := fmt.Sprintf("fan = [task(\"f%%d\" %% i, f) for i in range(%d)]\ntask(\"join\", f, after = fan)\n", n)
	h := newHarness(t, src, nil)
	h.start()
	order := []int{5, 0, 11, 1, 2, 3, 4, 6, 7, 8, 10}
	for _, i := range order {
		h.ok(fmt.Sprintf("f%d", i), nil)
		if st := h.m.StepState("join").Status; st != core.StepPending {
			t.Fatalf("join is %s after %d of %d ends, want pending", st, len(order), n)
		}
	}
	h.ok("f9", nil)
	if st := h.m.StepState("join").Status; st != core.StepRunning {
		t.Fatalf("join is %s after every dependency ended, want running", st)
	}
	h.ok("join", nil)
	if h.m.Run.Status != core.RunSucceeded {
		t.Fatalf("run %s, want succeeded", h.m.Run.Status)
	}

	// a rerun from f3 resets it and the join: the join waits for f3 again
	h.apply(core.Rerun{Reset: []string{"f3", "join"}, At: h.now})
	if st := h.m.StepState("join").Status; st != core.StepPending {
		t.Fatalf("join is %s after the rerun, before f3 ends again, want pending", st)
	}
	h.ok("f3", nil)
	if st := h.m.StepState("join").Status; st != core.StepRunning {
		t.Fatalf("join is %s once f3 ended again, want running", st)
	}

	// one failed dependency skips the join
	h2 := newHarness(t, src, nil)
	h2.start()
	for i := 0; i < n; i++ {
		if i == 7 {
			h2.fail("f7", "boom")
			continue
		}
		h2.ok(fmt.Sprintf("f%d", i), nil)
	}
	if st := h2.m.StepState("join").Status; st != core.StepSkipped {
		t.Fatalf("join is %s after f7 failed, want skipped", st)
	}
}
