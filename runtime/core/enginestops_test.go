package core_test

import (
	"strings"
	"testing"

	"github.com/flowscript/flowscript/runtime/core"
)

// A step running at each of 3 resumes in a row is failed by the third
// instead of being started again; its dependents are skipped and the run
// fails; an attempt that ends in between starts the count again.
func TestResumeFailsAStepTheEngineStoppedUnderThreeTimes(t *testing.T) {
	h := newHarness(t, `
a = task("a", f)
task("b", f, after = [a])
`, nil)
	h.start()
	h.apply(core.Resume{At: h.now})
	h.apply(core.Resume{At: h.now})
	h.expect("a=running/3 b=pending/0")
	res := h.apply(core.Resume{At: h.now})
	if got := started(res); len(got) != 0 {
		t.Fatalf("the third resume started %v", got)
	}
	h.expect("a=failed/3 b=skipped/0")
	if e := h.m.StepState("a").Error; !strings.HasPrefix(e, "the engine stopped 3 times while this step ran") {
		t.Fatalf("error %q", e)
	}
	if h.m.Run.Status != core.RunFailed {
		t.Fatalf("run %s", h.m.Run.Status)
	}
}

func TestEngineStopsCountOnlyInARow(t *testing.T) {
	h := newHarness(t, `
a = task("a", f, retries = 5)
`, nil)
	h.m.MaxEngineStops = 2
	h.start()
	h.apply(core.Resume{At: h.now}) // stop 1 under attempt 2
	h.fail("a", "flaky")            // the attempt ended: the count starts again
	h.apply(core.RetryDue{Step: "a", Attempt: 2, At: h.now})
	h.apply(core.Resume{At: h.now}) // stop 1 again
	h.expect("a=running/4")
	h.apply(core.Resume{At: h.now}) // stop 2: at the limit
	h.expect("a=failed/4")
}
