package flowscript_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

func TestBlockingChildOutputAndParams(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"parent.star": `
workflow(name = "parent", params = {"env": "prod"})
b = task("build", lambda ctx: {"artifact": "bin/app"})
d = sub_workflow("deploy", inputs = {"artifact": b.output["artifact"], "env": param("env")})
output(url = d.output["url"], child = d.child_run_id)
`,
		"deploy.star": `
workflow(params = {"artifact": "", "env": "staging", "region": "eu"})
def go(ctx):
    return {"url": "https://%s.%s/%s" % (ctx.params["env"], ctx.params["region"], ctx.params["artifact"])}
task("release", go)
output(url = param("env"))
`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "parent.star"), flowscript.RunOptions{Priority: 7})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s: %s", rec.Status, deref(rec.Error))
	}
	d := stepByID(t, rec, "deploy")
	if d.ChildRunID == nil || d.ChildWorkflow != "deploy" || d.ChildVersion != 1 {
		t.Fatalf("deploy step %+v", d)
	}
	child, err := eng.Get(context.Background(), *d.ChildRunID)
	if err != nil {
		t.Fatal(err)
	}
	if deref(child.ParentRunID) != rec.ID || deref(child.ParentStepID) != "deploy" || child.RootRunID != rec.ID || child.Depth != 2 || child.Priority != 7 {
		t.Fatalf("child links: %+v", child)
	}
	if run, step := child.Parent(); run != rec.ID || step != "deploy" {
		t.Fatalf("child's Parent() is %q, %q; want %q, \"deploy\"", run, step, rec.ID)
	}
	if run, step := rec.Parent(); run != "" || step != "" {
		t.Fatalf("root's Parent() is %q, %q; want none", run, step)
	}
	wantParams := map[string]any{"artifact": "bin/app", "env": "prod", "region": "eu"}
	if !reflect.DeepEqual(child.Params, wantParams) {
		t.Fatalf("child params %v, want %v", child.Params, wantParams)
	}
	if !reflect.DeepEqual(d.Output, map[string]any{"url": "prod"}) {
		t.Fatalf("deploy output %#v", d.Output)
	}
	if out := rec.Output.(map[string]any); out["url"] != "prod" || out["child"] != *d.ChildRunID {
		t.Fatalf("run output %#v", rec.Output)
	}
	hist, _ := eng.History(context.Background(), rec.ID)
	var types []string
	for _, h := range hist {
		types = append(types, h.Type)
	}
	if !strings.Contains(strings.Join(types, " "), "step_started child_spawned child_ended step_ended") {
		t.Fatalf("history %v", types)
	}
}

func TestFailedChildFailsStepWithItsError(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
c = sub_workflow("mid")
task("cleanup", lambda ctx: None, after = [c.failed])
sub_workflow("mid", id = "unhandled")
`,
		"mid.star":  `sub_workflow("leaf")`,
		"leaf.star": `shell("boom", "echo leaf broke >&2; exit 4")`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "failed" {
		t.Fatalf("status %s", rec.Status)
	}
	// the refusal deep in the tree reaches the root's error
	if e := deref(rec.Error); !strings.HasPrefix(e, "unhandled: child run ") || !strings.Contains(e, "boom: command exited with status 4: leaf broke") {
		t.Fatalf("root error %q", e)
	}
	if s := stepByID(t, rec, "cleanup"); s.Status != "succeeded" {
		t.Fatalf("cleanup %+v", s)
	}
}

func TestDetachedChildRunsOnAndRunWaitsForTree(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
n = sub_workflow("notify", detach = True)
task("after", lambda ctx: {"id": ctx.inputs["id"]}, inputs = {"id": n.output["child_run_id"]})
`,
		"notify.star": `shell("slow", "sleep 0.3; echo notified > notified.txt")`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%v %v", rec, err)
	}
	n := stepByID(t, rec, "notify")
	childID := n.Output.(map[string]any)["child_run_id"].(string)
	if child, _ := eng.Get(ctx, childID); child.Status.Terminal() || !child.Detached {
		t.Fatalf("the detached child already ended or is not marked detached: %+v", child)
	}
	if _, err := eng.WaitTree(ctx, id); err != nil {
		t.Fatal(err)
	}
	if child, _ := eng.Get(ctx, childID); child.Status != "succeeded" {
		t.Fatalf("child %s", child.Status)
	}
	if _, err := os.Stat(filepath.Join(ws, "notified.txt")); err != nil {
		t.Fatalf("the child's shell step did not run in the workspace: %v", err)
	}
}

func TestDepthLimitAtSpawnTime(t *testing.T) {
	// c declares its child from source at run time, so only the spawn can
	// see that it nests a fourth level
	ws := writeWorkspace(t, map[string]string{
		"a.star": `sub_workflow("b")`,
		"b.star": `sub_workflow("c")`,
		"c.star": `
workflow(params = {"src": "task('x', lambda ctx: None)"})
sub_workflow("d", script = param("src"))
`,
		"ok.star": `sub_workflow("b2")`,
		"b2.star": `sub_workflow("c2", script = "task('leaf', lambda ctx: {'deep': True})")`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "a.star"), flowscript.RunOptions{})
	want := "sub-workflow nesting depth 4 exceeds the limit of 3 (chain: a -> b -> c -> d)"
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), want) {
		t.Fatalf("run %s: %q, want it to contain %q", rec.Status, deref(rec.Error), want)
	}
	// depth 3 passes, and a script child's source is kept with its run
	rec = runFile(t, eng, filepath.Join(ws, "ok.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("depth 3: %s %s", rec.Status, deref(rec.Error))
	}
	runs, _ := eng.List(context.Background(), flowscript.ListFilter{Workflow: "c2"})
	if len(runs) != 1 || runs[0].Depth != 3 {
		t.Fatalf("script child runs %+v", runs)
	}
}

func TestWorkflowCycleAtSpawnTime(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"loop.star": `
workflow(params = {"src": ""})
sub_workflow("again", script = param("src"))
`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "loop.star"), flowscript.RunOptions{Params: map[string]any{"src": "workflow(name = 'loop')\ntask('x', lambda ctx: None)"}})
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), "workflow cycle: loop -> loop") {
		t.Fatalf("run %s: %q", rec.Status, deref(rec.Error))
	}
}

func TestResumeReattachesChildren(t *testing.T) {
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
a = sub_workflow("kid", id = "first")
sub_workflow("kid", id = "second", after = [a])
`,
		"kid.star": `shell("work", "echo $$ >> ledger; test -f go-on || sleep 30")`,
	})
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { data, _ := os.ReadFile(filepath.Join(ws, "ledger")); return len(data) > 0 })
	eng.Close()
	os.WriteFile(filepath.Join(ws, "go-on"), nil, 0o644)

	eng2 := openEngine(t, dbDir, flowscript.Options{})
	resumed, err := eng2.Resume(ctx)
	if err != nil || len(resumed) != 2 {
		t.Fatalf("resumed %v %v (want the root and its child)", resumed, err)
	}
	rec, err := eng2.Wait(ctx, id)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%+v %v", rec, err)
	}
	kids, _ := eng2.List(ctx, flowscript.ListFilter{Workflow: "kid"})
	if len(kids) != 2 {
		t.Fatalf("%d kid runs, want exactly one per step", len(kids))
	}
	for _, k := range kids {
		if k.Status != "succeeded" {
			t.Fatalf("kid %s %s", k.ID, k.Status)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A tree's transitions are few transactions: the root's creation carries
// the whole tree's creation down to the leaf's first step, and the leaf's
// end carries every parent's end with it.
func TestDepth3TreeTakesTwoTransactions(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `sub_workflow("mid")`,
		"mid.star":  `sub_workflow("leaf")`,
		"leaf.star": `task("noop", lambda ctx: None)`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Run(ctx, prog, flowscript.RunOptions{}); err != nil { // registers the definitions
		t.Fatal(err)
	}
	before := eng.Stats().Transactions
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%v %v", rec, err)
	}
	if got := eng.Stats().Transactions - before; got != 2 {
		t.Fatalf("a depth-3 tree took %d transactions, want 2", got)
	}
}
