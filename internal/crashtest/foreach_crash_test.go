package crashtest

// TestCrashForEach: kill -9 in the middle of a fan-out.
//
// The root's for_each step "load" starts one child per item of 50, at
// most 4 at once; each child's shell step sleeps briefly and echoes its
// item. Each round kills `run` at a random moment of a crash-free run's
// duration, then resumes until a resume runs to its end (sometimes
// killing the resume too). Whatever the moment (SPEC §4b, §8):
//
//   - the root succeeded with the output of a crash-free run: the
//     children's outputs in item order, no failed index;
//   - the for_each step kept its first attempt;
//   - for every index there is exactly one child run (parent_step_id
//     load[i]), no more: no child was started twice;
//   - every child succeeded.
//
// The default is 3 rounds; FLOWSCRIPT_HEAVY_ROUNDS (make reliability: 50),
// else FLOWSCRIPT_RELIABILITY_ROUNDS, and
// FLOWSCRIPT_CRASH_SEED work as for TestCrashResume.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

const forEachItems = 50

const forEachRoot = `
ls = task("list", lambda ctx: {"items": list(range(50))})
each = for_each("load", items = ls.output["items"], workflow = "item",
                inputs = lambda i: {"i": i}, max_concurrency = 4)
output(results = each.output["results"], failed = each.output["failed"])
`

const forEachChild = `
workflow(params = {"i": 0})
shell("work", "sleep 0.03")
output(i = param("i"))
`

func forEachOutput() any {
	results := make([]any, forEachItems)
	for i := range results {
		results[i] = map[string]any{"i": float64(i)}
	}
	return map[string]any{"results": results, "failed": []any{}}
}

func TestCrashForEach(t *testing.T) {
	rounds, rng := crashSetup(t, 3, "FLOWSCRIPT_HEAVY_ROUNDS")
	files := map[string]string{"main.star": forEachRoot, "item.star": forEachChild}

	// a crash-free run: how long a whole run takes, and that it works
	ref := newRoundFiles(t, 0, rng, files)
	ref.created = func() bool { return len(ref.listRuns()) > 0 }
	ref.snap = func(*generation) {}
	ref.exec("run", 0, "run", "main.star", "--durability", "durable")
	refDur := ref.gens[0].dur
	ref.checkForEach(0)
	if t.Failed() {
		t.Fatalf("the crash-free run is wrong\n%s", ref.stderr.String())
	}
	t.Logf("a crash-free run takes %s", refDur.Round(time.Millisecond))

	for n := 1; n <= rounds; n++ {
		r := newRoundFiles(t, n, rng, files)
		r.created = func() bool { return len(r.listRuns()) > 0 }
		var kidsAt []int // child runs in the store after each process
		r.snap = func(*generation) { kidsAt = append(kidsAt, len(r.listRuns())-1) }
		killed, resumeKills := r.crash(refDur)
		t.Logf("round %d: killed %v, resumes killed %d; child runs once each process was gone: %v", n, killed, resumeKills, kidsAt)
		r.checkForEach(n)
		if t.Failed() {
			t.Logf("round %d (killed %v, resumes killed %d) processes:\n%s", n, killed, resumeKills, r.stderr.String())
			return
		}
		r.cleanup()
	}
}

// checkForEach checks the round's tree once no process holds the database.
func (r *round) checkForEach(n int) {
	t := r.t
	t.Helper()
	var root *treeRun
	perIndex := map[string][]*treeRun{}
	for _, run := range r.listRuns() {
		switch run.Workflow {
		case "main":
			if root != nil {
				t.Errorf("round %d: two root runs, %s and %s", n, root.ID, run.ID)
			}
			root = run
		case "item":
			perIndex[deref(run.ParentStepID)] = append(perIndex[deref(run.ParentStepID)], run)
		default:
			t.Errorf("round %d: unexpected run %s of %s", n, run.ID, run.Workflow)
		}
	}
	if root == nil {
		t.Fatalf("round %d: no root run", n)
	}
	var rec treeRun
	if err := json.Unmarshal(r.cli("show", "--json", root.ID), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Status != "succeeded" {
		t.Errorf("round %d: root %s, error %q; want succeeded", n, rec.Status, deref(rec.Error))
	}
	if !reflect.DeepEqual(rec.Output, forEachOutput()) {
		t.Errorf("round %d: root output %v\nwant %v", n, rec.Output, forEachOutput())
	}
	for _, s := range rec.Steps {
		if s.ID == "load" && s.Attempt != 1 {
			t.Errorf("round %d: load ended at attempt %d; a crash must not start the fan-out again", n, s.Attempt)
		}
	}
	for i := 0; i < forEachItems; i++ {
		id := fmt.Sprintf("load[%d]", i)
		kids := perIndex[id]
		if len(kids) != 1 {
			t.Errorf("round %d: %d child runs for %s, want exactly one", n, len(kids), id)
			continue
		}
		k := kids[0]
		if k.Status != "succeeded" || deref(k.ParentRunID) != root.ID {
			t.Errorf("round %d: child %s of %s is %s under %s", n, k.ID, id, k.Status, deref(k.ParentRunID))
		}
		delete(perIndex, id)
	}
	for step, kids := range perIndex {
		t.Errorf("round %d: %d child runs name the parent step %q", n, len(kids), step)
	}
}
