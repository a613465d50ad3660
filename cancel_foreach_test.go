package flowscript_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// TestCancelFanOutAsATree: cancelling a root whose for_each step is
// running (20 items, 4 at once; each child runs a sleeping shell and a
// grandchild whose shell sleeps too) ends the root, the 4 children and
// their 4 grandchildren cancelled, stops every shell, and starts nothing
// afterwards: no fifth child, no step, no retry (SPEC 4b, §5 cancel).
func TestCancelFanOutAsATree(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
each = for_each("load", items = list(range(20)), workflow = "leaf",
                inputs = lambda i: {"i": i}, max_concurrency = 4, on_failure = "continue")
shell("never", "touch never-ran", after = [each.done])
`,
		"leaf.star": `
workflow(params = {"i": 0})
shell("sleep", "echo $$ > pids/s$$; sleep 60", retries = 2)
sub_workflow("deep")
`,
		"deep.star": `
shell("sleep", "echo $$ > pids/d$$; sleep 60")
`,
	})
	if err := os.Mkdir(filepath.Join(ws, "pids"), 0o755); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var cancelAt time.Time
	var after []string
	observe := func(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Type {
		case "run_started", "step_started", "child_spawned", "run_resumed", "retry_scheduled":
			if !cancelAt.IsZero() {
				after = append(after, fmt.Sprintf("%s %s %s %s", run.Workflow, deref(run.ParentStepID), ev.Type, ev.Step))
			}
		}
	}
	eng, err := flowscript.Open(t.TempDir(), flowscript.Options{Workers: 64, Observer: observe})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	root, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if pids = pidsIn(filepath.Join(ws, "pids")); len(pids) == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 8 shells are running", len(pids))
		}
	}

	mu.Lock()
	cancelAt = time.Now()
	mu.Unlock()
	if _, err := eng.Cancel(ctx, root); err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	rec, err := eng.WaitTree(wctx, root)
	if err != nil || rec.Status != "cancelled" {
		t.Fatalf("root: %+v %v", rec, err)
	}
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = livingInGroups(pids)
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, strconv.Itoa(pid))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Errorf("%d processes alive after the cancel: %v", len(left), left)
	}

	mu.Lock()
	if len(after) > 0 {
		t.Errorf("%d things started after the cancel: %v", len(after), after)
	}
	mu.Unlock()
	runs, err := eng.List(ctx, flowscript.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.Workflow]++
		if r.Status != "cancelled" || r.RootRunID != root {
			t.Errorf("run %s (%s via %s) is %s in tree %s", r.ID, r.Workflow, deref(r.ParentStepID), r.Status, r.RootRunID)
		}
	}
	if count["root"] != 1 || count["leaf"] != 4 || count["deep"] != 4 {
		t.Errorf("runs by workflow %v, want 1 root, 4 leaf, 4 deep", count)
	}
	got := specStatuses(rec)
	if got["load"] != "cancelled" || got["never"] == "succeeded" || got["never"] == "running" {
		t.Errorf("root steps %v", got)
	}
	if _, err := os.Stat(filepath.Join(ws, "never-ran")); err == nil {
		t.Error("the step after the fan-out ran")
	}
	for i := 0; i < 4; i++ {
		if s := got[fmt.Sprintf("load[%d]", i)]; s != "cancelled" {
			t.Errorf("load[%d] is %q in show, want cancelled", i, s)
		}
	}
	if _, ok := got["load[4]"]; ok {
		t.Error("show lists load[4]: a child started after the cancel")
	}
}
