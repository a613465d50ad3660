package flowscript_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// runWithin runs a file and fails (instead of hanging) if Run does not
// return in time.
func runWithin(t *testing.T, eng *flowscript.Engine, file string, d time.Duration) *flowscript.RunRecord {
	t.Helper()
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, file, flowscript.LoadOptions{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	type res struct {
		rec *flowscript.RunRecord
		err error
	}
	ch := make(chan res, 1)
	go func() {
		rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
		ch <- res{rec, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("run: %v", r.err)
		}
		return r.rec
	case <-time.After(d):
		t.Fatalf("Run did not return within %s (deadlock / lost wake-up)", d)
	}
	return nil
}

// Two keyed sub_workflow steps that start in the same decision both spawn:
// an idempotency key is reserved, not locked, until its spawn commits.
func TestTwoKeyedSpawnsInOneDecision(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
sub_workflow("job", id = "a", idempotency_key = "ka")
sub_workflow("job", id = "b", idempotency_key = "kb")
`,
		"job.star": `task("t", lambda ctx: {"ok": True})`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runWithin(t, eng, filepath.Join(ws, "root.star"), 10*time.Second)
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	// each step spawned a child of its own, bound to its own key
	a := keyedChild(t, eng, rec, "a", "ka")
	b := keyedChild(t, eng, rec, "b", "kb")
	if a.ID == b.ID {
		t.Fatalf("steps a and b share the child %s", a.ID)
	}
}

// keyedChild is the child of step of rec, which must have succeeded with
// the job's output and be bound to key.
func keyedChild(t *testing.T, eng *flowscript.Engine, rec *flowscript.RunRecord, step, key string) *flowscript.RunRecord {
	t.Helper()
	s := stepByID(t, rec, step)
	if s.ChildRunID == nil {
		t.Fatalf("step %s has no child", step)
	}
	child, err := eng.Get(context.Background(), *s.ChildRunID)
	if err != nil {
		t.Fatal(err)
	}
	if child.Status != "succeeded" || deref(child.IdempotencyKey) != key {
		t.Fatalf("step %s: child %s is %s with key %q; want succeeded with key %q", step, child.ID, child.Status, deref(child.IdempotencyKey), key)
	}
	if got := fmt.Sprint(s.Output); got != "map[t:map[ok:true]]" {
		t.Fatalf("step %s: output %s; want the job's", step, got)
	}
	return child
}

// A keyed child whose own first step is a keyed sub_workflow: both spawns
// are decided (and committed) together.
func TestNestedKeyedSpawns(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `sub_workflow("mid", idempotency_key = "k-mid")`,
		"mid.star":  `sub_workflow("leaf", idempotency_key = "k-leaf")`,
		"leaf.star": `task("t", lambda ctx: {"ok": True})`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runWithin(t, eng, filepath.Join(ws, "root.star"), 10*time.Second)
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	s := stepByID(t, rec, "mid")
	if s.ChildRunID == nil {
		t.Fatal("step mid has no child")
	}
	mid, err := eng.Get(context.Background(), *s.ChildRunID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Status != "succeeded" || deref(mid.IdempotencyKey) != "k-mid" {
		t.Fatalf("mid: %s with key %q; want succeeded with k-mid", mid.Status, deref(mid.IdempotencyKey))
	}
	leaf := keyedChild(t, eng, mid, "leaf", "k-leaf")
	if deref(leaf.ParentRunID) != mid.ID {
		t.Fatalf("leaf's parent is %s; want mid %s", deref(leaf.ParentRunID), mid.ID)
	}
}

// A Go handler's output is capped like a body's: an oversized one fails
// the step (and Run returns) instead of failing the run's commit.
func TestOversizedHandlerOutputFailsTheStep(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `task("big", "big")`,
	})
	eng, err := flowscript.OpenInMemory(flowscript.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Error})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	eng.RegisterHandler("big", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		return map[string]any{"blob": strings.Repeat("x", 3<<20)}, nil
	})
	rec := runWithin(t, eng, filepath.Join(ws, "root.star"), 10*time.Second)
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), "more than the limit of 1 MiB") {
		t.Fatalf("run %s %q: an oversized handler output must fail its step", rec.Status, deref(rec.Error))
	}
}
