package flowscript_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

func auditHistory(t *testing.T, eng *flowscript.Engine, id string) []flowscript.HistoryEvent {
	t.Helper()
	h, err := eng.History(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// retries: each attempt is a step_started and a step_ended in the history,
// ctx.attempt counts from 1, the delay is kept between attempts.
func TestSpecRetriesWithDelay(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
def flaky(ctx):
    if ctx.attempt < 3:
        fail("attempt %d failed" % ctx.attempt)
    return {"attempt": ctx.attempt}

task("flaky", flaky, retries = 3, retry_delay = "200ms")
task("never", lambda ctx: fail("always"), retries = 2, retry_delay = "50ms", optional = True)
`, "", flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	f := stepByID(t, rec, "flaky")
	if f.Attempt != 3 || f.Output.(map[string]any)["attempt"] != int64(3) || f.Error != nil {
		t.Fatalf("flaky %+v", f)
	}
	n := stepByID(t, rec, "never")
	if n.Attempt != 3 || n.Status != "failed" || !strings.HasSuffix(deref(n.Error), "always") {
		t.Fatalf("never %+v %s", n, deref(n.Error))
	}
	hist := auditHistory(t, eng, rec.ID)
	var started, ended []flowscript.HistoryEvent
	for _, h := range hist {
		if h.Step != "flaky" {
			continue
		}
		switch h.Type {
		case "step_started":
			started = append(started, h)
		case "step_ended":
			ended = append(ended, h)
		}
	}
	if len(started) != 3 || len(ended) != 3 {
		t.Fatalf("flaky: %d starts, %d ends in %+v", len(started), len(ended), hist)
	}
	for i := 0; i < 3; i++ {
		if started[i].Attempt != i+1 || ended[i].Attempt != i+1 {
			t.Errorf("attempt numbers: start %d end %d, want %d", started[i].Attempt, ended[i].Attempt, i+1)
		}
		if i < 2 {
			if ended[i].Status != "failed" || !strings.Contains(ended[i].Error, "failed") {
				t.Errorf("ended[%d] %+v", i, ended[i])
			}
			if gap := started[i+1].Time.Sub(ended[i].Time); gap < 190*time.Millisecond {
				t.Errorf("retry %d started %v after the failure, want >= 200ms", i+1, gap)
			}
		}
	}
	if ended[2].Status != "succeeded" {
		t.Errorf("last end %+v", ended[2])
	}
}

// a step timeout stops the body (Starlark busy loop, sleep, sh) and fails
// it with "timed out after <d>".
func TestSpecStepTimeoutStopsBody(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ws := t.TempDir()
	start := time.Now()
	rec := specRun(t, eng, `
def busy(ctx):
    n = 0
    while True:
        n += 1

def sleeper(ctx):
    sleep("20s")
    return {"woke": True}

def shy(ctx):
    r = sh("sleep 20; echo done > sh-finished", check = False)
    return {"code": r.exit_code}

task("busy", busy, timeout = "300ms", optional = True)
task("sleeper", sleeper, timeout = "300ms", optional = True)
task("shy", shy, timeout = "300ms", optional = True)
shell("shellstep", "sleep 20; touch shell-finished", timeout = "300ms", optional = True)
`, ws, flowscript.RunOptions{})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: a timeout did not stop a body", d)
	}
	for _, id := range []string{"busy", "sleeper", "shy", "shellstep"} {
		s := stepByID(t, rec, id)
		if s.Status != "failed" || deref(s.Error) != "timed out after 300ms" {
			t.Errorf("%s: %s %q", id, s.Status, deref(s.Error))
		}
	}
}

// a Go handler that overruns its timeout must not end the step succeeded.
func TestSpecStepTimeoutGoHandlerOverrun(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	eng.RegisterHandler("stubborn", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		time.Sleep(700 * time.Millisecond) // ignores ctx
		return map[string]any{"ok": true}, nil
	})
	rec := specRun(t, eng, `task("s", "stubborn", timeout = "100ms", optional = True)`, "", flowscript.RunOptions{})
	s := stepByID(t, rec, "s")
	if s.Status != "failed" || !strings.Contains(deref(s.Error), "timed out after 100ms") {
		t.Fatalf("step that ran 700ms with timeout=100ms: %s %q output %v", s.Status, deref(s.Error), s.Output)
	}
}

// the same for a Starlark body that swallows nothing but finishes after the
// deadline via sh(check=False) on a command that ignores SIGTERM? Not
// needed: sh returns an error once the step context ended.

// retries and timeout combined: each attempt gets its own timeout.
func TestSpecRetriesAndTimeoutCombined(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ws := t.TempDir()
	start := time.Now()
	rec := specRun(t, eng, `
shell("s", "echo x >> tries; sleep 20", timeout = "250ms", retries = 2, retry_delay = "20ms")
`, ws, flowscript.RunOptions{})
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("took %v", d)
	}
	s := stepByID(t, rec, "s")
	if s.Status != "failed" || s.Attempt != 3 || deref(s.Error) != "timed out after 250ms" {
		t.Fatalf("s %s attempt %d %q", s.Status, s.Attempt, deref(s.Error))
	}
	data, _ := os.ReadFile(filepath.Join(ws, "tries"))
	if strings.Count(string(data), "x") != 3 {
		t.Fatalf("tries %q", data)
	}
	if rec.Status != "failed" || deref(rec.Error) != "s: timed out after 250ms" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	n := 0
	for _, h := range auditHistory(t, eng, rec.ID) {
		if h.Type == "step_ended" && h.Step == "s" {
			n++
			if h.Error != "timed out after 250ms" {
				t.Errorf("history end %+v", h)
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d step_ended events, want 3", n)
	}
}

// workflow(timeout=) bounds the whole run: it ends failed, running bodies stopped.
func TestSpecRunTimeout(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ws := t.TempDir()
	start := time.Now()
	rec := specRun(t, eng, `
workflow(timeout = "400ms")
a = shell("a", "sleep 20; touch finished")
task("b", lambda ctx: None, after = [a])
`, ws, flowscript.RunOptions{})
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), "timed out") {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	t.Logf("run error %q, steps %v", deref(rec.Error), specStatuses(rec))
	if _, err := os.Stat(filepath.Join(ws, "finished")); err == nil {
		t.Fatal("the shell ran on")
	}
	// b never started: attempt 0
	if b := stepByID(t, rec, "b"); b.Attempt != 0 || b.Status == "running" || b.Status == "pending" {
		t.Fatalf("b %+v", b)
	}
}

// A rerun of a run whose workflow has a timeout gets to run: the timeout
// is not counted from the first start of the run, long past.
func TestSpecRerunAfterRunTimeoutWindow(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ws := t.TempDir()
	rec := specRun(t, eng, `
workflow(timeout = "1s")
a = task("a", lambda ctx: None)
shell("b", "if [ -f fixed ]; then sleep 0.2; exit 0; fi; exit 1", after = [a])
`, ws, flowscript.RunOptions{})
	if rec.Status != "failed" || rec.RerunAt != nil {
		t.Fatalf("first run %s, rerun_at %v", rec.Status, rec.RerunAt)
	}
	time.Sleep(1200 * time.Millisecond)
	os.WriteFile(filepath.Join(ws, "fixed"), nil, 0o644)
	ctx := context.Background()
	if _, err := eng.Rerun(ctx, rec.ID, "b", runtimeRerunOptions()); err != nil {
		t.Fatal(err)
	}
	got, err := eng.Wait(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "succeeded" {
		t.Fatalf("rerun %s %q; b %s %q", got.Status, deref(got.Error), stepByID(t, got, "b").Status, deref(stepByID(t, got, "b").Error))
	}
	// the record says when the timeout's window restarted
	if got.RerunAt == nil || !got.RerunAt.After(*rec.EndedAt) || got.RerunAt.After(*got.EndedAt) {
		t.Fatalf("rerun_at %v, want between the first end %v and the rerun's end %v", got.RerunAt, rec.EndedAt, got.EndedAt)
	}
}
