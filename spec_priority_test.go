package flowscript_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// Priorities 0–99, higher first: with one worker and three steps ready at
// once (released by the same gate step), the higher priority starts first.
func TestSpecPriorityAfterGate(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 1})
	ws := t.TempDir()
	rec := specRun(t, eng, `
g = task("gate", lambda ctx: None)
shell("low", "echo low >> order", after = [g], priority = 10)
shell("high", "echo high >> order", after = [g], priority = 90)
shell("mid", "echo mid >> order", after = [g], priority = 50)
`, ws, flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	data, _ := os.ReadFile(filepath.Join(ws, "order"))
	if got := strings.Fields(string(data)); strings.Join(got, ",") != "high,mid,low" {
		t.Fatalf("start order %v, want high,mid,low", got)
	}
}

// The same, with the three steps ready when the run starts.
func TestSpecPriorityAtStart(t *testing.T) {
	for i := 0; i < 10; i++ {
		eng := specEngine(t, flowscript.Options{Workers: 1})
		ws := t.TempDir()
		specRun(t, eng, `
shell("low", "echo low >> order", priority = 10)
shell("high", "echo high >> order", priority = 90)
shell("mid", "echo mid >> order", priority = 50)
`, ws, flowscript.RunOptions{})
		data, _ := os.ReadFile(filepath.Join(ws, "order"))
		if got := strings.Fields(string(data)); strings.Join(got, ",") != "high,mid,low" {
			t.Fatalf("try %d: start order %v, want high,mid,low", i, got)
		}
	}
}

// A run's priority (RunOptions.Priority) orders steps of different runs
// sharing the worker pool: steps without priority= take the run's.
func TestSpecRunPriorityAcrossRuns(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 1})
	ws := t.TempDir()
	// occupy the single worker so that both runs queue behind it
	ctx := t.Context()
	blocker, err := eng.LoadString(ctx, "block.star", `shell("hold", "sleep 0.5")`)
	if err != nil {
		t.Fatal(err)
	}
	bid, err := eng.Start(ctx, blocker, flowscript.RunOptions{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		r, _ := eng.Get(ctx, bid)
		return r != nil && len(r.Steps) == 1 && r.Steps[0].Status == "running"
	})
	lowP, _ := eng.LoadString(ctx, "low.star", `shell("s", "echo low >> order")`)
	highP, _ := eng.LoadString(ctx, "high.star", `shell("s", "echo high >> order")`)
	lid, err := eng.Start(ctx, lowP, flowscript.RunOptions{Workspace: ws, Priority: 5})
	if err != nil {
		t.Fatal(err)
	}
	hid, err := eng.Start(ctx, highP, flowscript.RunOptions{Workspace: ws, Priority: 95})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{bid, lid, hid} {
		if _, err := eng.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(filepath.Join(ws, "order"))
	if got := strings.Fields(string(data)); strings.Join(got, ",") != "high,low" {
		t.Fatalf("order %v, want high,low", got)
	}
}

// priority outside 0–99 is a definition error with a position.
func TestSpecPriorityRange(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	_, err := eng.LoadString(t.Context(), "main.star", "task(\"a\", lambda ctx: None, priority = 100)\n")
	if err == nil || !strings.Contains(err.Error(), "main.star:1:") {
		t.Fatalf("err %v", err)
	}
}

// The worker pool is bounded: with Workers=2, no more than two step
// attempts execute at once.
func TestSpecWorkerPoolBounded(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 2})
	ws2 := t.TempDir()
	os.Mkdir(filepath.Join(ws2, "running"), 0o755)
	rec := specRun(t, eng, `
for i in range(6):
    shell("s%d" % i, "n=$(ls running | wc -l); echo $n >> peaks; touch running/$$; sleep 0.2; rm running/$$")
`, ws2, flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	data, _ := os.ReadFile(filepath.Join(ws2, "peaks"))
	for _, f := range strings.Fields(string(data)) {
		if f != "0" && f != "1" {
			t.Fatalf("a step saw %s others running: %q", f, data)
		}
	}
}

// A step's started_at is when it started running. With one worker, a step
// that waited in the queue behind a 400ms step did not start with it.
func TestSpecStartedAtIsWhenItRuns(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 1})
	rec := specRun(t, eng, `
shell("first", "sleep 0.4", priority = 90)
shell("second", "true", priority = 10)
`, "", flowscript.RunOptions{})
	first, second := stepByID(t, rec, "first"), stepByID(t, rec, "second")
	if second.StartedAt.Before(first.EndedAt.Add(-50 * time.Millisecond)) {
		t.Fatalf("second started_at %v, but the only worker was busy with first until %v", second.StartedAt, first.EndedAt)
	}
}
