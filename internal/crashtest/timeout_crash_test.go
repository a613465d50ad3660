package crashtest

// TestCrashSubWorkflowTimeout: kill -9 while a blocking sub_workflow step
// with a timeout waits for its child.
//
// The root's step "slow" has timeout="1s"; its child's only step sleeps
// for 4 s before it writes a marker. Each round kills `run` at a random
// moment within the first 1.5 s (so before, around and after the timeout
// passes), then resumes until a resume runs to its end, sometimes killing
// the resume too. Whatever the moment, the step's timeout counts from its
// started_at (SPEC §4, issue 10 item 7), so at the end:
//
//   - the root failed, and its step "slow" failed with "timed out after 1s";
//   - the child run exists exactly once (per attempt) and ended cancelled;
//   - the child's step ended cancelled (a shell that a killed engine
//     left behind may still finish on its own: steps are at least once),
//     and the root's step after the timeout ("after") was skipped.
//
// The default is 3 rounds; FLOWSCRIPT_HEAVY_ROUNDS (make reliability: 50),
// else FLOWSCRIPT_RELIABILITY_ROUNDS, and
// FLOWSCRIPT_CRASH_SEED work as for TestCrashResume.

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const timeoutRoot = `
s = sub_workflow("slow", timeout = "1s")
task("after", lambda ctx: None, after = [s])
`

const timeoutChild = `
shell("work", "sleep 4; touch finished")
`

func TestCrashSubWorkflowTimeout(t *testing.T) {
	rounds, rng := crashSetup(t, 3, "FLOWSCRIPT_HEAVY_ROUNDS")
	for n := 1; n <= rounds; n++ {
		r := newRoundFiles(t, n, rng, map[string]string{"main.star": timeoutRoot, "slow.star": timeoutChild})
		r.created = func() bool { return len(r.listRuns()) > 0 }
		r.snap = func(*generation) {}
		r.failOK = true // the run ends failed: its step times out
		r.crash(1500 * time.Millisecond)
		var root *treeRun
		var kids []*treeRun
		for _, run := range r.listRuns() {
			switch run.Workflow {
			case "main":
				root = run
			case "slow":
				kids = append(kids, run)
			}
		}
		if root == nil {
			t.Fatalf("round %d: no root run\n%s", n, r.stderr.String())
		}
		var rec treeRun
		if err := json.Unmarshal(r.cli("show", "--json", root.ID), &rec); err != nil {
			t.Fatal(err)
		}
		step := map[string]stepRecord{}
		for _, s := range rec.Steps {
			step[s.ID] = s.stepRecord
		}
		if rec.Status != "failed" || step["slow"].Status != "failed" || !strings.Contains(deref(rec.Error), "timed out after 1s") {
			t.Errorf("round %d: root %s (%q), slow %s; want the step timed out\n%s", n, rec.Status, deref(rec.Error), step["slow"].Status, r.stderr.String())
		}
		if step["after"].Status != "skipped" {
			t.Errorf("round %d: after is %s, want skipped", n, step["after"].Status)
		}
		if len(kids) != step["slow"].Attempt || len(kids) != 1 {
			t.Errorf("round %d: %d child runs for attempt %d, want exactly one", n, len(kids), step["slow"].Attempt)
		}
		for _, k := range kids {
			if k.Status != "cancelled" {
				t.Errorf("round %d: child %s ended %s, want cancelled", n, k.ID, k.Status)
			}
		}
		for _, k := range kids {
			var kid treeRun
			if err := json.Unmarshal(r.cli("show", "--json", k.ID), &kid); err != nil {
				t.Fatal(err)
			}
			if len(kid.Steps) != 1 || kid.Steps[0].Status != "cancelled" {
				t.Errorf("round %d: the child's step %+v; want it cancelled, never succeeded past the timeout", n, kid.Steps)
			}
		}
		if t.Failed() {
			t.Logf("round %d processes:\n%s", n, r.stderr.String())
			return
		}
		r.cleanup()
	}
}
