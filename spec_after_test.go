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

// §7: `after` entries are ANDed; .done means succeeded or failed.
func TestSpecAfterConditionsAnded(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
a = task("a", lambda ctx: {"v": 1})
b = task("b", lambda ctx: fail("b broke"))
task("and_ok_fail", lambda ctx: None, after = [a, b])          # b did not succeed: skipped
task("and_ok_failed", lambda ctx: None, after = [a, b.failed])  # both met
task("and_done", lambda ctx: None, after = [a.done, b.done])   # both met
task("a_failed", lambda ctx: None, after = [a.failed, b.done]) # a succeeded: skipped
task("str_after", lambda ctx: None, after = ["a", "b.failed"]) # strings too
task("str_later", lambda ctx: None, after = ["zz.done"])       # may name a later step
task("zz", lambda ctx: None)
`, "", flowscript.RunOptions{})
	want := map[string]string{
		"a": "succeeded", "b": "failed", "and_ok_fail": "skipped", "and_ok_failed": "succeeded",
		"and_done": "succeeded", "a_failed": "skipped", "str_after": "succeeded", "str_later": "succeeded", "zz": "succeeded",
	}
	if got := specStatuses(rec); !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses %v\nwant %v", got, want)
	}
	// b is handled (.failed/.done name it): the run succeeds
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
}

// §7: a skipped upstream step meets no condition, so its dependents end skipped.
func TestSpecSkippedUpstreamMeetsNoCondition(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
a = task("a", lambda ctx: fail("a broke"))
b = task("b", lambda ctx: None, after = [a])
task("b_done", lambda ctx: None, after = [b.done])
task("b_failed", lambda ctx: None, after = [b.failed])
task("a_handler", lambda ctx: None, after = [a.failed])
`, "", flowscript.RunOptions{})
	want := map[string]string{"a": "failed", "b": "skipped", "b_done": "skipped", "b_failed": "skipped", "a_handler": "succeeded"}
	if got := specStatuses(rec); !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses %v\nwant %v", got, want)
	}
	if rec.Status != "succeeded" {
		t.Fatalf("a is handled by a_handler; run %s %s", rec.Status, deref(rec.Error))
	}
	for _, s := range rec.Steps {
		if s.Status == "skipped" && (s.Attempt != 0 || s.StartedAt != nil) {
			t.Errorf("skipped step %s: attempt %d started_at %v", s.ID, s.Attempt, s.StartedAt)
		}
	}
}

// §7: a cancelled upstream step meets no condition, so its dependents end
// skipped. A cancelled run rerun from an independent step reaches a step
// whose other upstream stays cancelled.
func TestSpecCancelledUpstreamMeetsNoCondition(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ctx := context.Background()
	ws := t.TempDir()
	prog, err := eng.LoadString(ctx, "main.star", `
a = shell("a", "sleep 30")
c = shell("c", "if [ -f again ]; then exit 0; fi; sleep 30")
task("d", lambda ctx: None, after = [a, c])
task("e", lambda ctx: None, after = [a.done, c])
`)
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := eng.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil || rec.Status != "cancelled" {
		t.Fatalf("after cancel: %v %v", rec, err)
	}
	os.WriteFile(filepath.Join(ws, "again"), nil, 0o644)
	if _, err := eng.Rerun(ctx, id, "c", flowscript.RerunOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err = eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got := specStatuses(rec)
	want := map[string]string{"a": "cancelled", "c": "succeeded", "d": "skipped", "e": "skipped"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses %v\nwant %v", got, want)
	}
}

// §7: a failed optional step ends failed, but its dependents proceed as if it
// had succeeded; a reference to it resolves to None.
func TestSpecFailedOptionalDependentsProceed(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
o = shell("o", "echo partial; exit 4", optional = True)
task("dep", lambda ctx: {"got": ctx.inputs["x"], "has": "x" in ctx.inputs}, inputs = {"x": o.output["stdout"]})
task("dep_failed", lambda ctx: None, after = [o.failed])
task("dep_done", lambda ctx: None, after = ["o.done"])
task("dep_str", lambda ctx: None, after = ["o"])
output(v = o.output["stdout"], w = o.output)
`, "", flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	want := map[string]string{"o": "failed", "dep": "succeeded", "dep_failed": "succeeded", "dep_done": "succeeded", "dep_str": "succeeded"}
	if got := specStatuses(rec); !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses %v\nwant %v", got, want)
	}
	dep := stepByID(t, rec, "dep")
	if !reflect.DeepEqual(dep.Output, map[string]any{"got": nil, "has": true}) {
		t.Fatalf("dep output %#v", dep.Output)
	}
	if !reflect.DeepEqual(dep.Inputs, map[string]any{"x": nil}) {
		t.Fatalf("dep inputs %#v", dep.Inputs)
	}
	if !reflect.DeepEqual(rec.Output, map[string]any{"v": nil, "w": nil}) {
		t.Fatalf("run output %#v", rec.Output)
	}
}

// §7: a reference to a step that did not succeed resolves to None (a failed,
// handled step; a skipped step reached through .done of a handler chain).
func TestSpecRefToFailedStepIsNone(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
a = shell("a", "echo out; exit 2")
task("h", lambda ctx: {"in": ctx.inputs}, inputs = {"o": a.output["stdout"], "all": a.output, "l": [a.output["exit_code"]]}, after = [a.done])
`, "", flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	h := stepByID(t, rec, "h")
	want := map[string]any{"in": map[string]any{"o": nil, "all": nil, "l": []any{nil}}}
	if !reflect.DeepEqual(h.Output, want) {
		t.Fatalf("h output %#v", h.Output)
	}
}

// §4: a run fails iff a step fails that is neither optional nor handled.
func TestSpecRunOutcome(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	cases := []struct {
		src, status string
	}{
		{`task("a", lambda ctx: fail("x"), optional = True)`, "succeeded"},
		{"a = task(\"a\", lambda ctx: fail(\"x\"))\ntask(\"h\", lambda ctx: None, after = [a.done])", "succeeded"},
		{"a = task(\"a\", lambda ctx: fail(\"x\"))\ntask(\"h\", lambda ctx: None, after = [\"a.failed\"])", "succeeded"},
		// handled even if the handler itself ends skipped
		{"a = task(\"a\", lambda ctx: fail(\"x\"))\nz = task(\"z\", lambda ctx: fail(\"z\"), optional = True)\ntask(\"h\", lambda ctx: None, after = [a.failed, z.failed])", "succeeded"},
		{"a = task(\"a\", lambda ctx: fail(\"x\"))\ntask(\"h\", lambda ctx: None, after = [a])", "failed"},
		{"a = task(\"a\", lambda ctx: fail(\"x\"))\ntask(\"h\", lambda ctx: None, inputs = {\"v\": a.output})", "failed"},
	}
	for i, c := range cases {
		rec := specRun(t, eng, c.src, "", flowscript.RunOptions{})
		if string(rec.Status) != c.status {
			t.Errorf("case %d: run %s (%s), want %s; steps %v", i, rec.Status, deref(rec.Error), c.status, specStatuses(rec))
		}
		if c.status == "failed" && !strings.HasPrefix(deref(rec.Error), "a: ") {
			t.Errorf("case %d: error %q", i, deref(rec.Error))
		}
		if c.status == "succeeded" && rec.Error != nil {
			t.Errorf("case %d: succeeded run has error %q", i, *rec.Error)
		}
	}
}

// §7: a failed run's error is `<step>: <message>` of its first unhandled
// failure: the one that failed first in time, not first in declaration.
func TestSpecFirstUnhandledFailureByTime(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
def slow(ctx):
    sleep("400ms")
    fail("slow failure")

task("slow", slow)
task("fast", lambda ctx: fail("fast failure"))
`, "", flowscript.RunOptions{})
	if rec.Status != "failed" {
		t.Fatalf("run %s", rec.Status)
	}
	e := deref(rec.Error)
	if !strings.HasPrefix(e, "fast: ") || !strings.HasSuffix(e, "fast failure") {
		t.Fatalf("error %q, want fast: ... fast failure", e)
	}
	// and the reverse timing
	rec = specRun(t, eng, `
def slow(ctx):
    sleep("400ms")
    fail("slow failure")

task("fast", lambda ctx: fail("fast failure"), retries = 2, retry_delay = "300ms")
task("slow", slow)
`, "", flowscript.RunOptions{})
	e = deref(rec.Error)
	if !strings.HasPrefix(e, "slow: ") || !strings.HasSuffix(e, "slow failure") {
		t.Fatalf("error %q, want slow: ... slow failure (fast's last attempt failed at ~600ms)", e)
	}
}

// The error of a failed run is `<step>: <message>`: the message of fail()
// is the step's error.
func TestSpecFailMessage(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
def body(ctx):
    fail("disk is full")
task("a", body)
`, "", flowscript.RunOptions{})
	a := stepByID(t, rec, "a")
	if !strings.Contains(deref(a.Error), "disk is full") || strings.Contains(deref(a.Error), "fail: ") {
		t.Fatalf("step error %q", deref(a.Error))
	}
	t.Logf("fail() step error: %q; run error %q", deref(a.Error), deref(rec.Error))
	if deref(rec.Error) != "a: "+deref(a.Error) {
		t.Fatalf("run error %q, step error %q", deref(rec.Error), deref(a.Error))
	}
}
