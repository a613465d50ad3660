package flowscript_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/runtime"
)

// threeLevels is a root with a blocking child, which has a blocking
// grandchild, and a detached child.
var threeLevels = fstest.MapFS{
	"root.star": {Data: []byte(`
workflow(name = "root")
m = sub_workflow("mid", inputs = {"n": 1})
sub_workflow("side", detach = True, after = [m])
`)},
	"mid.star": {Data: []byte(`
workflow(name = "mid", params = {"n": 0})
sub_workflow("leaf", inputs = {"n": param("n")})
`)},
	"leaf.star": {Data: []byte(`
workflow(name = "leaf", params = {"n": 0})
task("work", lambda ctx: {"n": ctx.params["n"] + 1})
`)},
	"side.star": {Data: []byte(`
shell("note", "echo side")
`)},
}

// start loads file from fsys and starts it; wait also waits for its tree.
func start(t *testing.T, eng *flowscript.Engine, fsys fstest.MapFS, file string, wait bool) string {
	t.Helper()
	ctx := context.Background()
	prog, err := eng.Load(ctx, flowscript.FS(fsys, file), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if wait {
		if _, err := eng.WaitTree(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func openMem(t *testing.T, opts flowscript.Options) *flowscript.Engine {
	t.Helper()
	eng, err := flowscript.OpenInMemory(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// The records users see carry no engine bookkeeping, and every field the
// SPEC lists.
func TestRecordJSONIsTheUsersView(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eng, err := flowscript.Open(filepath.Join(dir, "db"), flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	id := start(t, eng, threeLevels, "root.star", true)
	tree, err := eng.Tree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	mid, err := eng.Get(ctx, tree.Children[0].Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(mid)
	var m map[string]any
	json.Unmarshal(data, &m)
	for _, internal := range []string{"hash", "workspace", "epoch", "lineage", "max_depth", "children", "cancel_requested", "timed_out"} {
		if _, ok := m[internal]; ok {
			t.Errorf("the run record shows %q: %s", internal, data)
		}
	}
	for _, field := range []string{"id", "workflow", "version", "status", "params", "output", "error", "parent_run_id", "parent_step_id", "root_run_id", "depth", "priority", "idempotency_key", "created_at", "started_at", "ended_at", "steps"} {
		if _, ok := m[field]; !ok {
			t.Errorf("the run record lacks %q: %s", field, data)
		}
	}
	step := m["steps"].([]any)[0].(map[string]any)
	for _, internal := range []string{"child_hash", "epoch", "retries_used"} {
		if _, ok := step[internal]; ok {
			t.Errorf("the step record shows %q: %v", internal, step)
		}
	}
	if mid.Depth != 2 || *mid.ParentRunID != id || mid.Status != flowscript.RunSucceeded || mid.Steps[0].Status != flowscript.StepSucceeded {
		t.Errorf("mid: %+v", mid)
	}
}

// Subscribe replays what was committed and then follows the tree live:
// every run of the tree, each event once, in seq order per run, the
// channel closed after the root's end.
func TestSubscribeFollowsTheTree(t *testing.T) {
	ctx := context.Background()
	for _, late := range []bool{false, true} {
		eng := openMem(t, flowscript.Options{})
		// late: everything has happened before the subscription, and is replayed
		id := start(t, eng, threeLevels, "root.star", late)
		sub, err := eng.Subscribe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		seqs := map[string][]uint64{}
		workflows := map[string]string{}
		ended := map[string]bool{}
		for ev := range sub.Events() {
			seqs[ev.Run.ID] = append(seqs[ev.Run.ID], ev.Seq)
			workflows[ev.Run.ID] = ev.Run.Workflow
			if ev.Type == "run_ended" {
				ended[ev.Run.Workflow] = true
			}
		}
		if _, err := eng.WaitTree(ctx, id); err != nil {
			t.Fatal(err)
		}
		for run, s := range seqs {
			h, _ := eng.History(ctx, run)
			if workflows[run] != "side" && len(s) != len(h) {
				t.Errorf("late=%v: %s got %d events, its history has %d", late, workflows[run], len(s), len(h))
			}
			for i, n := range s {
				if n != uint64(i+1) {
					t.Errorf("late=%v: %s events out of order or repeated: %v", late, workflows[run], s)
					break
				}
			}
		}
		for _, w := range []string{"root", "mid", "leaf"} {
			if !ended[w] {
				t.Errorf("late=%v: no run_ended of %s among the events (%v)", late, w, workflows)
			}
		}
	}
}

// Stubs replace tasks (a shell step too), and children by name wherever
// they are declared, positional arguments included.
func TestStubs(t *testing.T) {
	ctx := context.Background()
	fsys := fstest.MapFS{
		"main.star": {Data: []byte(`
s = shell("build", "exit 3")
d = sub_workflow("deploy", {"artifact": s.output["bin"]}, "ship")
sub_workflow("notify", {}, "tell", 0, True, after = [d])
`)},
		"deploy.star": {Data: []byte(`workflow(params = {"artifact": ""})` + "\n" + `shell("up", "exit 1")` + "\n")},
	}
	eng := openMem(t, flowscript.Options{Stubs: &flowscript.Stubs{
		Tasks:     map[string]flowscript.Stub{"build": {Output: map[string]any{"bin": "app"}}},
		Workflows: map[string]flowscript.Stub{"deploy": {Output: map[string]any{"url": "u"}}, "notify": {Fail: "smtp down"}},
	}})
	rec, err := eng.WaitTree(ctx, start(t, eng, fsys, "main.star", false))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != flowscript.RunSucceeded {
		t.Fatalf("status %s: %v", rec.Status, *rec.Error)
	}
	if b := rec.Step("build"); b.Kind != "task" || b.Output.(map[string]any)["bin"] != "app" {
		t.Errorf("build: %+v", b)
	}
	ship := rec.Step("ship")
	if ship.Output.(map[string]any)["url"] != "u" || ship.ChildRunID == nil {
		t.Errorf("ship: %+v", ship)
	}
	child, _ := eng.Get(ctx, *ship.ChildRunID)
	if child.Workflow != "deploy" || child.Params["artifact"] != "app" {
		t.Errorf("the stand-in child: %+v", child)
	}
	tell := rec.Step("tell")
	notify, _ := eng.Wait(ctx, *tell.ChildRunID)
	if !notify.Detached || notify.Status != flowscript.RunFailed || !strings.Contains(*notify.Error, "smtp down") {
		t.Errorf("the detached stand-in: %+v", notify)
	}
}

// One loader shape: a file, an fs.FS and a string load alike, without an
// engine, and report problems with positions.
func TestLoadSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for name, f := range threeLevels {
		os.WriteFile(filepath.Join(dir, name), f.Data, 0o644)
	}
	for i, src := range []flowscript.Source{
		flowscript.File(filepath.Join(dir, "root.star")),
		flowscript.FS(threeLevels, "root.star"),
		flowscript.Script("root.star", string(threeLevels["root.star"].Data)),
	} {
		opts := flowscript.LoadOptions{}
		if i == 2 {
			opts.Workspace = dir // the string's children are found there
		}
		prog, err := flowscript.Load(ctx, src, opts)
		if err != nil {
			t.Errorf("%+v: %v", src, err)
			continue
		}
		if prog.Name() != "root" || strings.Join(prog.Steps(), ",") != "mid,side" {
			t.Errorf("%+v: %s %v", src, prog.Name(), prog.Steps())
		}
	}
	// a string alone has no workspace: its child is unknown
	err := flowscript.Validate(ctx, flowscript.Script("root.star", string(threeLevels["root.star"].Data)), flowscript.LoadOptions{})
	var se *flowscript.ScriptErrors
	if !errors.As(err, &se) || se.List[0].File != "root.star" || se.List[0].Line != 3 || !strings.Contains(se.List[0].Msg, `unknown workflow "mid"`) {
		t.Errorf("validate without a workspace: %v", err)
	}
	// a missing file is an input error, not a script error
	err = flowscript.Validate(ctx, flowscript.File(filepath.Join(dir, "nope.star")), flowscript.LoadOptions{})
	if !errors.Is(err, flowscript.ErrInput) || errors.Is(err, flowscript.ErrScript) {
		t.Errorf("missing file: %v", err)
	}
}

// The package's constants say what the engine underneath means.
func TestConstantsAgree(t *testing.T) {
	if flowscript.TimeFormat != runtime.TimeFormat {
		t.Errorf("TimeFormat %q, the runtime writes %q", flowscript.TimeFormat, runtime.TimeFormat)
	}
	for _, pair := range [][2]string{
		{string(flowscript.ReturnExisting), runtime.ReturnExisting},
		{string(flowscript.FailExisting), runtime.FailExisting},
		{string(flowscript.FailOnRunning), runtime.FailOnRunning},
	} {
		if pair[0] != pair[1] {
			t.Errorf("idempotency strategy %q, the runtime's %q", pair[0], pair[1])
		}
	}
}
