package flowscript_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// §4: a failed child fails the step; the step's error includes the child's
// error text, and so does the root's error.
func TestSpecSubFailedChildErrorText(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"mid\", id = \"m\")\n",
		"mid.star":  "sub_workflow(\"leaf\", id = \"l\")\n",
		"leaf.star": "task(\"deep\", lambda ctx: fail(\"the disk is on fire\"))\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "failed" || !strings.HasPrefix(deref(rec.Error), "m: ") || !strings.Contains(deref(rec.Error), "the disk is on fire") {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	t.Logf("root error: %s", deref(rec.Error))
}

// §4: when a blocking sub_workflow step times out, its child is cancelled
// (its running shell stopped), and the step fails.
func TestSpecSubTimeoutCancelsChild(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"slow\", id = \"s\", timeout = \"400ms\", optional = True)\n",
		"slow.star": "shell(\"hang\", \"sleep 3; touch child-finished\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	start := time.Now()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("took %v", time.Since(start))
	}
	s := stepByID(t, rec, "s")
	if s.Status != "failed" || !strings.Contains(deref(s.Error), "timed out after 400ms") || s.ChildRunID == nil {
		t.Fatalf("s %s %q", s.Status, deref(s.Error))
	}
	child, err := eng.Get(context.Background(), *s.ChildRunID)
	if err != nil {
		t.Fatal(err)
	}
	if child.Status != "cancelled" {
		// the cancel is only requested when the parent run ends
		t.Logf("child %s when its parent's run ended", child.Status)
	}
	child, err = eng.Wait(context.Background(), *s.ChildRunID)
	if err != nil || child.Status != "cancelled" {
		t.Fatalf("child %v %v", child, err)
	}
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(filepath.Join(ws, "child-finished")); err == nil {
		t.Fatal("the child's shell ran on")
	}
}

// §4: a retried sub_workflow step gets a new child per attempt; the
// failed first child stays failed.
func TestSpecSubRetriesSpawnNewChild(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star":  "sub_workflow(\"flaky\", id = \"f\", retries = 2, retry_delay = \"20ms\")\n",
		"flaky.star": "shell(\"try\", \"echo x >> tries; test $(wc -l < tries) -ge 2\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	f := stepByID(t, rec, "f")
	if f.Attempt != 2 {
		t.Fatalf("f attempt %d", f.Attempt)
	}
	var spawned []string
	for _, h := range auditHistory(t, eng, rec.ID) {
		if h.Type == "child_spawned" {
			spawned = append(spawned, h.Child)
		}
	}
	if len(spawned) != 2 || spawned[0] == spawned[1] || *f.ChildRunID != spawned[1] {
		t.Fatalf("spawned %v, step child %s", spawned, deref(f.ChildRunID))
	}
	first, _ := eng.Get(context.Background(), spawned[0])
	if first.Status != "failed" {
		t.Fatalf("first child %s", first.Status)
	}
}

// §4: a sub_workflow step with timeout and retries: the hanging child is
// cancelled before the next attempt's child is spawned.
func TestSpecSubTimeoutThenRetry(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"hang\", id = \"h\", timeout = \"400ms\", retries = 1, retry_delay = \"10ms\")\n",
		"hang.star": "shell(\"s\", \"echo x >> tries; if [ $(wc -l < tries) -ge 2 ]; then exit 0; fi; sleep 5\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	var spawned, ending, ended []string
	for _, h := range auditHistory(t, eng, rec.ID) {
		switch h.Type {
		case "child_spawned":
			spawned = append(spawned, h.Child)
		case "step_ending":
			ending = append(ending, h.Error)
		case "step_ended":
			ended = append(ended, h.Error)
		}
	}
	if len(spawned) != 2 {
		t.Fatalf("spawned %v", spawned)
	}
	first, _ := eng.Get(context.Background(), spawned[0])
	if first.Status != "cancelled" {
		t.Fatalf("first child %s", first.Status)
	}
	// the error the first attempt ends with is in the history (and stored
	// with the step) before its child is cancelled, and is the one it
	// ends with
	want := "timed out after 400ms; its child run " + spawned[0] + " was cancelled"
	if len(ending) != 1 || ending[0] != want || len(ended) < 1 || ended[0] != want {
		t.Fatalf("step_ending %q, step_ended errors %q; want both %q", ending, ended, want)
	}
}

// §4: detach=True: the step succeeds at once with {"child_run_id": ...};
// children inherit the parent's priority unless priority= sets it; a
// priority outside 0–99 (from a reference) fails the step.
func TestSpecSubDetachAndPriority(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
workflow(params = {"p": 150})
d = sub_workflow("kid", id = "d", detach = True)
sub_workflow("kid", id = "inherit")
sub_workflow("kid", id = "own", priority = 3)
sub_workflow("kid", id = "bad", priority = param("p"), optional = True)
`,
		"kid.star": "shell(\"s\", \"sleep 0.3\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{Priority: 40})
	ctx := context.Background()
	d := stepByID(t, rec, "d")
	out, _ := d.Output.(map[string]any)
	if d.Status != "succeeded" || out["child_run_id"] == nil || out["child_run_id"] != deref(d.ChildRunID) {
		t.Fatalf("d %+v", d)
	}
	if d.EndedAt.After(stepByID(t, rec, "inherit").EndedAt.Add(-200 * time.Millisecond)) {
		t.Errorf("detached step did not end at once: %v", d.EndedAt)
	}
	in, _ := eng.Get(ctx, deref(stepByID(t, rec, "inherit").ChildRunID))
	own, _ := eng.Get(ctx, deref(stepByID(t, rec, "own").ChildRunID))
	if in.Priority != 40 || own.Priority != 3 {
		t.Fatalf("priorities inherit=%d own=%d", in.Priority, own.Priority)
	}
	bad := stepByID(t, rec, "bad")
	if bad.Status != "failed" || !strings.Contains(deref(bad.Error), "150") {
		t.Fatalf("bad %s %q", bad.Status, deref(bad.Error))
	}
	eng.WaitTree(ctx, rec.ID)
}

// §4: "When a blocking sub_workflow step times out or is retried, its
// current child is cancelled first": the first child (whose shell takes 1s
// to stop) has ended before the retry's child starts.
func TestSpecSubRetryWaitsForCancelledChild(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"hang\", id = \"h\", timeout = \"500ms\", retries = 1, retry_delay = \"10ms\")\n",
		"hang.star": `shell("s", """n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count; echo start$n >> log
if [ $n -ge 2 ]; then exit 0; fi
trap 'sleep 1; echo end1 >> log; exit 1' TERM
sleep 10 & wait""")
`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	time.Sleep(1500 * time.Millisecond)
	data, _ := os.ReadFile(filepath.Join(ws, "log"))
	if got := strings.Fields(string(data)); strings.Join(got, ",") != "start1,end1,start2" {
		t.Fatalf("log %v: the retry's child started before the timed-out child was cancelled", got)
	}
}

// §4: a cancelled child fails its blocking step, whose error includes the
// child's; the parent run fails (it is not cancelled).
func TestSpecSubCancelledChildFailsStep(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "k = sub_workflow(\"kid\", id = \"k\")\ntask(\"after\", lambda ctx: None, after = [k])\n",
		"kid.star":  "shell(\"s\", \"sleep 20\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	id := startFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	var child string
	waitFor(t, func() bool {
		r, _ := eng.Get(ctx, id)
		if r != nil && r.Steps[0].ChildRunID != nil {
			child = *r.Steps[0].ChildRunID
		}
		return child != ""
	})
	if _, err := eng.Cancel(ctx, child); err != nil {
		t.Fatal(err)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	k := stepByID(t, rec, "k")
	if rec.Status != "failed" || k.Status != "failed" || !strings.Contains(deref(k.Error), "cancelled") || !strings.HasPrefix(deref(rec.Error), "k: ") {
		t.Fatalf("run %s %q; k %s %q", rec.Status, deref(rec.Error), k.Status, deref(k.Error))
	}
	if a := stepByID(t, rec, "after"); a.Status != "skipped" {
		t.Fatalf("after %s", a.Status)
	}
}

// the run timeout reaches the run's blocking children.
func TestSpecRunTimeoutCancelsChildren(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "workflow(timeout = \"400ms\")\nsub_workflow(\"kid\", id = \"k\")\n",
		"kid.star":  "shell(\"s\", \"sleep 8\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	start := time.Now()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	k := stepByID(t, rec, "k")
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), "timed out") || time.Since(start) > 5*time.Second {
		c, _ := eng.Get(ctx, deref(k.ChildRunID))
		t.Fatalf("run %s %q after %v; step k %s %q; child %s", rec.Status, deref(rec.Error), time.Since(start), k.Status, deref(k.Error), c.Status)
	}
	child, err := eng.Wait(ctx, deref(k.ChildRunID))
	if err != nil || child.Status != "cancelled" {
		t.Fatalf("child %v %v", child, err)
	}
}

// The error a timed-out sub_workflow step ends with is stored (and in the
// history) before its child is cancelled: after a restart between the
// two, the step still ends with it when the child ends cancelled.
func TestSpecSubTimeoutMessageSurvivesRestart(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"hang\", id = \"h\", timeout = \"300ms\")\n",
		"hang.star": "shell(\"s\", \"sleep 30\")\n",
	})
	dir := t.TempDir()
	ending := make(chan string, 1)
	release := make(chan struct{})
	obs := func(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
		if ev.Type == "step_ending" {
			ending <- ev.Error
			<-release // the engine closes before the child is cancelled
		}
	}
	eng, err := flowscript.Open(dir, flowscript.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var msg string
	select {
	case msg = <-ending:
	case <-ctx.Done():
		t.Fatal("no step_ending event")
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	close(release)

	eng = openEngine(t, dir, flowscript.Options{})
	rec, err := eng.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	h := stepByID(t, rec, "h")
	hist, err := eng.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	stored := ""
	for _, ev := range hist {
		if ev.Type == "step_ending" && ev.Step == "h" {
			stored = ev.Error
		}
	}
	if h.Status != "running" || stored != msg || h.ChildRunID == nil {
		t.Fatalf("after the restart: step h %s, step_ending %q, child %v; want running with %q", h.Status, stored, h.ChildRunID, msg)
	}
	if _, err := eng.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// the resumed engine re-arms the step's timeout from its start (long
	// past), so it may cancel the child itself before this does
	if _, err := eng.Cancel(ctx, *h.ChildRunID); err != nil && !errors.Is(err, flowscript.ErrAlreadyEnded) {
		t.Fatal(err)
	}
	rec, err = eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h := stepByID(t, rec, "h"); h.Status != "failed" || deref(h.Error) != msg {
		t.Fatalf("step h %s with %q; want failed with the stored %q", h.Status, deref(h.Error), msg)
	}
}
