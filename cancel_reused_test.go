package flowscript_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// A cancelled sub_workflow step whose child is a run it reused through an
// idempotency key (not a child of its own) ends cancelled at once, and the
// reused run goes on: it is not cancelled with the tree. Its own child, in
// the same cancel, is cancelled and ends the step that waits for it.
func TestCancelEndsAStepOnAReusedRunAndLeavesTheRun(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"kid.star": `shell("s", "sleep 60")`,
		"own.star": `shell("s", "sleep 60")`,
		"root.star": `
sub_workflow("kid", id = "a", idempotency_key = "same")
sub_workflow("own", id = "b")
`,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	running := make(chan string, 8) // workflow of each run whose shell started
	bound := make(chan string, 1)   // step a's child, once its spawn is recorded
	eng := openEngine(t, t.TempDir(), flowscript.Options{Observer: func(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
		switch {
		case ev.Type == "step_started" && ev.Step == "s":
			running <- run.Workflow
		case run.Workflow == "root" && ev.Step == "a" && ev.Child != "":
			select {
			case bound <- ev.Child:
			default: // told once is enough
			}
		}
	}})
	load := func(name string) *flowscript.Program {
		prog, err := eng.LoadFile(ctx, filepath.Join(ws, name), flowscript.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return prog
	}
	reused, err := eng.Start(ctx, load("kid.star"), flowscript.RunOptions{IdempotencyKey: "same"})
	if err != nil {
		t.Fatal(err)
	}
	if w := <-running; w != "kid" {
		t.Fatalf("first shell started in %s", w)
	}
	root, err := eng.Start(ctx, load("root.star"), flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if w := <-running; w != "own" {
		t.Fatalf("second shell started in %s", w)
	}
	if got := <-bound; got != reused {
		t.Fatalf("step a's child is %q, want the reused run %s", got, reused)
	}
	rec, err := eng.Get(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	own := deref(stepByID(t, rec, "b").ChildRunID)
	if _, err := eng.Cancel(ctx, root); err != nil {
		t.Fatal(err)
	}
	rec, err = eng.Wait(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "cancelled" {
		t.Fatalf("root %s", rec.Status)
	}
	for _, id := range []string{"a", "b"} {
		if s := stepByID(t, rec, id); s.Status != "cancelled" {
			t.Fatalf("step %s %s", id, s.Status)
		}
	}
	if kid, err := eng.Get(ctx, own); err != nil || kid.Status != "cancelled" {
		t.Fatalf("own child: %v %v", kid.Status, err)
	}
	if r, err := eng.Get(ctx, reused); err != nil || r.Status != "running" {
		t.Fatalf("reused run after the cancel: %+v %v", r, err)
	}
	if _, err := eng.Cancel(ctx, reused); err != nil {
		t.Fatal(err)
	}
	if r, err := eng.Wait(ctx, reused); err != nil || r.Status != "cancelled" {
		t.Fatalf("reused run: %v %v", r.Status, err)
	}
}
