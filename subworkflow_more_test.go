package flowscript_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

func TestSubWorkflowRetriesOptionalPrioritySecrets(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
r = sub_workflow("flaky", retries = 1, retry_delay = "10ms")
sub_workflow("broken", optional = True)
sub_workflow("prio", priority = 42)
sub_workflow("secretive")
`,
		"flaky.star":  `shell("once", "test -f tried || { touch tried; exit 1; }")`,
		"broken.star": `shell("no", "exit 3")`,
		"prio.star":   `task("x", lambda ctx: None)`,
		"secretive.star": `
workflow(secrets = ["CHILD_TOKEN"])
task("use", lambda ctx: {"len": len(ctx.secret("CHILD_TOKEN"))})
`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{Secrets: map[string]string{"CHILD_TOKEN": "abc"}})
	ctx := context.Background()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{Priority: 5})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	// a retry spawns a new child: two runs of flaky, the first failed
	flaky, _ := eng.List(ctx, flowscript.ListFilter{Workflow: "flaky"})
	if len(flaky) != 2 || flaky[0].Status != "failed" || flaky[1].Status != "succeeded" {
		t.Fatalf("flaky runs %+v", flaky)
	}
	if s := stepByID(t, rec, "flaky"); s.Attempt != 2 || deref(s.ChildRunID) != flaky[1].ID {
		t.Fatalf("flaky step %+v", s)
	}
	if s := stepByID(t, rec, "broken"); s.Status != "failed" || !strings.Contains(deref(s.Error), "no: command exited with status 3") {
		t.Fatalf("broken step %+v %s", s, deref(s.Error))
	}
	prio, _ := eng.List(ctx, flowscript.ListFilter{Workflow: "prio"})
	sec, _ := eng.List(ctx, flowscript.ListFilter{Workflow: "secretive"})
	if prio[0].Priority != 42 || sec[0].Priority != 5 {
		t.Fatalf("priorities: step-set %d (want 42), inherited %d (want 5)", prio[0].Priority, sec[0].Priority)
	}
	if out := stepByID(t, rec, "secretive").Output.(map[string]any)["use"].(map[string]any); out["len"] != int64(3) {
		t.Fatalf("the child did not resolve its own secret: %v", out)
	}
}

func TestSubWorkflowIdempotency(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
a = sub_workflow("job", id = "a", idempotency_key = "k1")
b = sub_workflow("job", id = "b", idempotency_key = "k1", after = [a])
c = sub_workflow("job", id = "c", idempotency_key = "k1", idempotency_strategy = "fail", after = [b], optional = True)
sub_workflow("job", id = "d", idempotency_strategy = "return_existing", after = [c.done])
`,
		"job.star":    `shell("count", "echo x >> count")`,
		"lonely.star": `sub_workflow("job", idempotency_strategy = "fail")`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{IdempotencyKey: "root-key"})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	a, b := stepByID(t, rec, "a"), stepByID(t, rec, "b")
	if deref(a.ChildRunID) == "" || deref(a.ChildRunID) != deref(b.ChildRunID) {
		t.Fatalf("b did not reuse a's child: %s vs %s", deref(a.ChildRunID), deref(b.ChildRunID))
	}
	if c := stepByID(t, rec, "c"); c.Status != "failed" || !strings.Contains(deref(c.Error), `idempotency key "k1" of job is already bound to run `+deref(a.ChildRunID)) {
		t.Fatalf("c %+v %s", c, deref(c.Error))
	}
	// d names only a strategy: it inherits the run's key
	d := stepByID(t, rec, "d")
	dChild, err := eng.Get(ctx, deref(d.ChildRunID))
	if err != nil || deref(dChild.IdempotencyKey) != "root-key" {
		t.Fatalf("d's child key: %v %v", dChild, err)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "count")); string(data) != "x\nx\n" {
		t.Fatalf("job ran %q, want twice (a's child, d's child)", data)
	}
	// a strategy with no key anywhere is ignored, and the history says so
	lonely := runFile(t, eng, filepath.Join(ws, "lonely.star"), flowscript.RunOptions{})
	hist, _ := eng.History(ctx, lonely.ID)
	found := false
	for _, h := range hist {
		found = found || (h.Type == "child_spawned" && strings.Contains(h.Detail, "idempotency_strategy fail ignored"))
	}
	if lonely.Status != "succeeded" || !found {
		t.Fatalf("lonely %s, history says ignored: %v", lonely.Status, found)
	}
}

func TestSubWorkflowVersionPins(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"lib.star":  "task(\"v\", lambda ctx: {\"v\": 1})\n",
		"root.star": "p = sub_workflow(\"lib\", id = \"pinned\", version = 1)\nl = sub_workflow(\"lib\", id = \"latest\")\noutput(p = p.output, l = l.output)\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	lib1, err := eng.LoadFile(ctx, filepath.Join(ws, "lib.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := eng.Register(ctx, lib1); err != nil || v != 1 {
		t.Fatalf("register v1: %d %v", v, err)
	}
	os.WriteFile(filepath.Join(ws, "lib.star"), []byte("task(\"v\", lambda ctx: {\"v\": 2})\n"), 0o644)
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	out := rec.Output.(map[string]any)
	if out["p"].(map[string]any)["v"].(map[string]any)["v"] != int64(1) || out["l"].(map[string]any)["v"].(map[string]any)["v"] != int64(2) {
		t.Fatalf("output %v: the pin must run version 1, the other the latest (2)", out)
	}
	if s := stepByID(t, rec, "pinned"); s.ChildVersion != 1 {
		t.Fatalf("pinned step records version %d", s.ChildVersion)
	}
	if s := stepByID(t, rec, "latest"); s.ChildVersion != 2 {
		t.Fatalf("latest step records version %d", s.ChildVersion)
	}
}
