package crashtest

// TestCrashRerunFailedForEach: kill -9 during `rerun --failed` of a
// fan-out.
//
// A for_each over 20 items (4 at once, on_failure "continue") fails for
// items 3, 7 and 11 (a file marks them broken). The marks are removed and
// `rerun --failed` is killed at a random moment, then resumed until the
// tree ends (the rerun is given again if the kill came before it was
// committed). Whatever the moment (SPEC §4b, §7 Control):
//
//   - the root succeeded with every item's output in item order;
//   - the 17 children that succeeded at first were kept: one child run
//     each, and their shell ran once (done.txt);
//   - items 3, 7 and 11 have exactly two child runs, the first failed and
//     the second succeeded: the rerun started one child for each, crashes
//     included.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

const rerunItems = 20

var rerunBroken = map[int]bool{3: true, 7: true, 11: true}

const rerunRoot = `
each = for_each("load", items = list(range(20)), workflow = "item",
                inputs = lambda i: {"i": i}, max_concurrency = 4, on_failure = "continue")
output(results = each.output["results"])
`

const rerunChild = `
workflow(params = {"i": 0})
shell("work", "if [ -e broken-$INPUT_I ]; then exit 1; fi; if [ -e slow ]; then sleep 0.3; fi; echo $INPUT_I >> done.txt", inputs = {"i": param("i")})
output(i = param("i"))
`

func TestCrashRerunFailedForEach(t *testing.T) {
	rounds, rng := crashSetup(t, 3)
	files := map[string]string{"main.star": rerunRoot, "item.star": rerunChild}
	for i := range rerunBroken {
		files[fmt.Sprintf("broken-%d", i)] = ""
	}
	var refDur time.Duration
	for n := 0; n <= rounds; n++ {
		r := newRoundFiles(t, n, rng, files)
		r.failOK = true
		r.snap = func(*generation) {}
		r.created = func() bool { return len(r.listRuns()) > 0 }
		r.exec("run", 0, "run", "main.star", "--durability", "durable")
		root := r.rerunRoot()
		for i := range rerunBroken {
			if err := os.Remove(filepath.Join(r.dir, fmt.Sprintf("broken-%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		// the rerun's children take a while: kills land in it, not only
		// before it
		if err := os.WriteFile(filepath.Join(r.dir, "slow"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			// a crash-free rerun: how long one takes
			r.exec("rerun", 0, "rerun", "--failed", root, "--durability", "durable")
			refDur = r.gens[len(r.gens)-1].dur
			t.Logf("a crash-free rerun takes %s", refDur.Round(time.Millisecond))
		} else {
			kill := time.Duration(10+rng.IntN(int(refDur.Milliseconds())*9/10)) * time.Millisecond
			killed := r.exec("rerun", kill, "rerun", "--failed", root, "--durability", "durable")
			state := r.rootStatus(root)
			for killed && !r.resume(false, refDur) {
			}
			if r.rootStatus(root) == "failed" {
				// killed before the rerun was committed: give it again
				r.exec("rerun", 0, "rerun", "--failed", root, "--durability", "durable")
			}
			t.Logf("round %d: rerun killed %v after %s, the root then %s", n, killed, kill, state)
		}
		r.checkRerunForEach(n, root)
		if t.Failed() {
			t.Logf("round %d processes:\n%s", n, r.stderr.String())
			return
		}
		r.cleanup()
	}
}

func (r *round) rerunRoot() string {
	for _, run := range r.listRuns() {
		if run.Workflow == "main" {
			return run.ID
		}
	}
	r.t.Fatalf("round %d: no root run", r.n)
	return ""
}

func (r *round) rootStatus(id string) string {
	var rec treeRun
	if err := json.Unmarshal(r.cli("show", "--json", id), &rec); err != nil {
		r.t.Fatal(err)
	}
	return rec.Status
}

func (r *round) checkRerunForEach(n int, root string) {
	t := r.t
	t.Helper()
	r.waitOrphans()
	var rec treeRun
	if err := json.Unmarshal(r.cli("show", "--json", root), &rec); err != nil {
		t.Fatal(err)
	}
	results := make([]any, rerunItems)
	for i := range results {
		results[i] = map[string]any{"i": float64(i)}
	}
	if rec.Status != "succeeded" || !reflect.DeepEqual(rec.Output, map[string]any{"results": results}) {
		t.Errorf("round %d: root %s, output %v, error %q", n, rec.Status, rec.Output, deref(rec.Error))
	}
	kids := map[string][]*treeRun{}
	for _, run := range r.listRuns() {
		if run.Workflow == "item" {
			kids[deref(run.ParentStepID)] = append(kids[deref(run.ParentStepID)], run)
		}
	}
	data, err := os.ReadFile(filepath.Join(r.dir, "done.txt"))
	if err != nil {
		t.Fatal(err)
	}
	done := map[string]int{}
	for _, l := range strings.Fields(string(data)) {
		done[l]++
	}
	for i := 0; i < rerunItems; i++ {
		step := fmt.Sprintf("load[%d]", i)
		ks := kids[step]
		if !rerunBroken[i] {
			if len(ks) != 1 || ks[0].Status != "succeeded" {
				t.Errorf("round %d: %s has %d child runs, want the one kept", n, step, len(ks))
			}
			if c := done[fmt.Sprint(i)]; c != 1 {
				t.Errorf("round %d: the shell of %s ran %d times, want once (its child was kept)", n, step, c)
			}
			continue
		}
		sort.Slice(ks, func(a, b int) bool { return ks[a].ID < ks[b].ID }) // ids sort by creation
		if len(ks) != 2 || ks[0].Status != "failed" || ks[1].Status != "succeeded" {
			var st []string
			for _, k := range ks {
				st = append(st, k.Status)
			}
			t.Errorf("round %d: %s has child runs %v, want [failed succeeded]", n, step, st)
		}
	}
}
