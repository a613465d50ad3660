package flowscript_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

// §4 idempotency at the root: return_existing (the default) reuses the
// bound run; fail refuses naming it; fail_on_running refuses only while the
// bound run is active.
func TestSpecIdempotencyRoot(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ctx := context.Background()
	prog, err := eng.LoadString(ctx, "main.star", `shell("s", "sleep 0.3")`)
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	id1, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws, IdempotencyKey: "k"})
	if err != nil || id2 != id1 {
		t.Fatalf("return_existing: %s %v (first %s)", id2, err, id1)
	}
	if _, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws, IdempotencyKey: "k", IdempotencyStrategy: "fail"}); err == nil || !strings.Contains(err.Error(), id1) || !flowscript.IsInputError(err) {
		t.Fatalf("fail: %v", err)
	}
	if _, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws, IdempotencyKey: "k", IdempotencyStrategy: "fail_on_running"}); err == nil || !strings.Contains(err.Error(), id1) {
		t.Fatalf("fail_on_running while active: %v", err)
	}
	eng.Wait(ctx, id1)
	id3, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws, IdempotencyKey: "k", IdempotencyStrategy: "fail_on_running"})
	if err != nil || id3 == id1 {
		t.Fatalf("fail_on_running after the end: %s %v", id3, err)
	}
	eng.Wait(ctx, id3)
	runs, _ := eng.List(ctx, flowscript.ListFilter{})
	if len(runs) != 2 {
		t.Fatalf("%d runs", len(runs))
	}
}

// §4: with no key anywhere, a strategy is ignored and the history says so
// (at the root run as at a sub_workflow step).
func TestSpecIdempotencyStrategyWithoutKeyNoted(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"kid\", idempotency_strategy = \"fail\")\n",
		"kid.star":  "task(\"a\", lambda ctx: None)\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{IdempotencyStrategy: "fail"})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	var child, root bool
	for _, h := range auditHistory(t, eng, rec.ID) {
		if strings.Contains(h.Detail, "ignored") {
			if h.Type == "child_spawned" {
				child = true
			} else {
				root = true
			}
		}
	}
	if !child {
		t.Errorf("the child spawn does not note the ignored strategy")
	}
	if !root {
		t.Errorf("the root run's history does not say its strategy (no key) was ignored")
	}
}

// §4: a sub_workflow's key reuses the run bound to it, waiting for it when
// active; both steps get its output.
func TestSpecIdempotencySubReuse(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
a = sub_workflow("kid", id = "a", idempotency_key = "same")
b = sub_workflow("kid", id = "b", idempotency_key = "same")
`,
		"kid.star": "shell(\"s\", \"sleep 0.3; echo x >> ran\")\noutput(v = 7)\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	a, b := stepByID(t, rec, "a"), stepByID(t, rec, "b")
	if deref(a.ChildRunID) != deref(b.ChildRunID) {
		t.Fatalf("children %s %s", deref(a.ChildRunID), deref(b.ChildRunID))
	}
	for _, s := range []flowscript.StepRecord{a, b} {
		if out, _ := s.Output.(map[string]any); out["v"] != int64(7) {
			t.Fatalf("%s output %#v", s.ID, s.Output)
		}
	}
}
