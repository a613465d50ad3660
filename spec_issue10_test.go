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

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

func waitRun(t *testing.T, eng *flowscript.Engine, id string) *flowscript.RunRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait %s: %v", id, err)
	}
	return rec
}

// Issue 10 item 4, SPEC §4 [12-02]: a child cancelled by a user fails its
// parent's step with the cancel as the error, and the step is not retried.
func TestIssue10UserCancelledChildIsNotRetried(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"kid\", retries = 2, retry_delay = \"10ms\")\n",
		"kid.star":  "shell(\"hang\", \"touch started-$$; sleep 30\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	id := startFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	var child string
	deadline := time.Now().Add(20 * time.Second)
	for child == "" && time.Now().Before(deadline) {
		rec, err := eng.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if c := stepByID(t, rec, "kid").ChildRunID; c != nil {
			child = *c
		}
		time.Sleep(10 * time.Millisecond)
	}
	if child == "" {
		t.Fatal("the child was never spawned")
	}
	// wait for its shell to run, then cancel the child alone
	for time.Now().Before(deadline) {
		m, _ := filepath.Glob(filepath.Join(ws, "started-*"))
		if len(m) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := eng.Cancel(context.Background(), child); err != nil {
		t.Fatalf("cancel the child: %v", err)
	}
	rec := waitRun(t, eng, id)
	kid := stepByID(t, rec, "kid")
	if rec.Status != "failed" || kid.Status != "failed" || kid.Attempt != 1 {
		t.Fatalf("root %s, step %s attempt %d (%q); want failed at attempt 1, not retried", rec.Status, kid.Status, kid.Attempt, deref(kid.Error))
	}
	if !strings.Contains(deref(kid.Error), "cancelled") {
		t.Fatalf("step error %q does not name the cancel", deref(kid.Error))
	}
	if m, _ := filepath.Glob(filepath.Join(ws, "started-*")); len(m) != 1 {
		t.Fatalf("%d child shells ran, want 1", len(m))
	}
}

// Issue 10 item 6, SPEC §4 [12-02]: a rerun from a later step of a
// cancelled run leaves the cancelled step cancelled, so the run ends
// cancelled, not succeeded.
func TestIssue10RerunOfCancelledRunStaysCancelled(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"main.star": "shell(\"long\", \"touch started; sleep 30\")\ntask(\"final\", lambda ctx: {\"ok\": True})\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	id := startFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	waitFile(t, filepath.Join(ws, "started"))
	if _, err := eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if rec := waitRun(t, eng, id); rec.Status != "cancelled" {
		t.Fatalf("after cancel: %s", rec.Status)
	}
	if _, err := eng.Rerun(context.Background(), id, "final", runtimeRerunOptions()); err != nil {
		t.Fatalf("rerun: %v", err)
	}
	rec := waitRun(t, eng, id)
	if rec.Status != "cancelled" || stepByID(t, rec, "final").Attempt != 2 || stepByID(t, rec, "long").Status != "cancelled" {
		t.Fatalf("after rerun --from final: run %s, steps %v", rec.Status, specStatuses(rec))
	}
}

// Issue 10 item 3: fail_on_running lets a second spawn with the same key
// start a new child once the first child ended, also when the second
// spawn is decided in the very commit in which the first child ends.
func TestIssue10FailOnRunningAfterTheBoundRunEnded(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
a = sub_workflow("dbl", id = "first", idempotency_key = "k", idempotency_strategy = "fail_on_running")
sub_workflow("dbl", id = "second", idempotency_key = "k", idempotency_strategy = "fail_on_running", after = [a])
`,
		"dbl.star": "task(\"t\", lambda ctx: {\"n\": 2})\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	first, second := stepByID(t, rec, "first"), stepByID(t, rec, "second")
	if first.ChildRunID == nil || second.ChildRunID == nil || *first.ChildRunID == *second.ChildRunID {
		t.Fatalf("children %v and %v: want two different runs", deref(first.ChildRunID), deref(second.ChildRunID))
	}
}

// Issue 10 item 5, SPEC §7 Control [12-02]: rerunning a child that its
// parent's step no longer points at (a later rerun gave the step a newer
// child) is refused, naming the current child, and changes nothing.
func TestIssue10RerunOfASupersededChildIsRefused(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"kid\")\n",
		"kid.star":  "task(\"t\", lambda ctx: {\"n\": ctx.attempt})\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	old := deref(stepByID(t, rec, "kid").ChildRunID)
	if _, err := eng.Rerun(ctx, rec.ID, "kid", runtimeRerunOptions()); err != nil {
		t.Fatal(err)
	}
	rec = waitRun(t, eng, rec.ID)
	current := deref(stepByID(t, rec, "kid").ChildRunID)
	if current == old || current == "" {
		t.Fatalf("the rerun kept child %s", current)
	}
	_, err := eng.Rerun(ctx, old, "t", runtimeRerunOptions())
	if err == nil || !strings.Contains(err.Error(), current) {
		t.Fatalf("rerun of the superseded child: %v; want a refusal naming %s", err, current)
	}
	if !flowscript.IsInputError(err) {
		t.Fatalf("the refusal is not an input error (exit 2): %v", err)
	}
	after, _ := eng.Get(ctx, rec.ID)
	if deref(stepByID(t, after, "kid").ChildRunID) != current || after.Status != "succeeded" {
		t.Fatalf("the parent changed: %s child %s", after.Status, deref(stepByID(t, after, "kid").ChildRunID))
	}
}

// Issue 10 item 7: a blocking sub_workflow step's timeout counts from the
// step's started_at, also across a restart: the re-attached child is
// cancelled when it passes, and the step fails with the timeout.
func TestIssue10SubWorkflowTimeoutSurvivesARestart(t *testing.T) {
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{
		"root.star": "sub_workflow(\"slow\", timeout = \"300ms\")\n",
		"slow.star": "shell(\"work\", \"touch started; sleep 2; touch finished\")\n",
	})
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := startFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	waitFile(t, filepath.Join(ws, "started"))
	eng.Close()

	eng2 := openEngine(t, dbDir, flowscript.Options{})
	if _, err := eng2.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec := waitRun(t, eng2, id)
	s := stepByID(t, rec, "slow")
	if rec.Status != "failed" || s.Status != "failed" || !strings.Contains(deref(s.Error), "timed out after 300ms") {
		t.Fatalf("after resume: run %s, step %s %q; want the step timed out", rec.Status, s.Status, deref(s.Error))
	}
	if _, err := os.Stat(filepath.Join(ws, "finished")); err == nil {
		t.Fatal("the child's work ran to its end past the step's timeout")
	}
}

// Issue 10 item 8, SPEC §4 [12-02]: a reference into a succeeded step's
// output that names a key the output does not have fails the step that
// uses it, naming the input, the key and the keys there are; a child
// without output() has its steps' outputs by id.
func TestIssue10MissingOutputKeyFailsTheStep(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
e = task("extract", lambda ctx: {"file": "a.csv", "rows": 3})
task("load", lambda ctx: {"got": ctx.inputs["f"]}, inputs = {"f": e.output["fiel"]})
`, "", flowscript.RunOptions{})
	load := stepByID(t, rec, "load")
	want := `input f: extract's output has no key "fiel" (it has: file, rows)`
	if rec.Status != "failed" || load.Status != "failed" || deref(load.Error) != want {
		t.Fatalf("run %s, load %s %q; want failed %q", rec.Status, load.Status, deref(load.Error), want)
	}
	if load.Output != nil {
		t.Fatalf("the body ran: output %v", load.Output)
	}

	ws := writeWorkspace(t, map[string]string{
		"root.star": "c = sub_workflow(\"kid\")\ntask(\"use\", lambda ctx: None, inputs = {\"n\": c.output[\"count\"]})\n",
		"kid.star":  "task(\"t\", lambda ctx: {\"count\": 1})\n",
	})
	rec = runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	use := stepByID(t, rec, "use")
	if use.Status != "failed" || !strings.Contains(deref(use.Error), `kid's output has no key "count" (it has: t)`) {
		t.Fatalf("use %s %q", use.Status, deref(use.Error))
	}
}

// Issue 10 item 1, SPEC §2 [12-02]: names used inside a script= child
// resolve at spawn time as at validation, workspace files first, whether
// or not anything registered them; the spawn-time depth check then
// refuses a chain that goes one level too deep.
func TestIssue10ScriptChildFindsWorkspaceFiles(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "workflow(params = {\"wf\": \"\"})\nsub_workflow(\"dyn\", script = param(\"wf\"))\n",
		"c3.star":   "task(\"t\", lambda ctx: {\"from\": \"c3\"})\n",
		"deep.star": "sub_workflow(\"c4\")\n",
		"c4.star":   "task(\"t\", lambda ctx: None)\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{Params: map[string]any{"wf": "sub_workflow(\"c3\")\n"}})
	if rec.Status != "succeeded" {
		t.Fatalf("a script child naming a workspace file: %s %q", rec.Status, deref(rec.Error))
	}
	rec = runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{Params: map[string]any{"wf": "sub_workflow(\"deep\")\n"}})
	want := "sub-workflow nesting depth 4 exceeds the limit of 3 (chain: root -> dyn -> deep -> c4)"
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), want) {
		t.Fatalf("root -> dyn -> deep -> c4: %s %q; want the depth refusal %q", rec.Status, deref(rec.Error), want)
	}
}

// Issue 10 item 10, SPEC §7 [12-02]: resume leaves a run whose Go task
// handlers this engine does not have unfinished and untouched, names the
// handlers, and says so with an input error; the program that has them
// resumes it later.
func TestIssue10ResumeLeavesRunsOfMissingHandlers(t *testing.T) {
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{
		"pay.star":   "task(\"p\", \"pay\")\n",
		"plain.star": "shell(\"s\", \"touch plain-started; test -f go-on || sleep 30\")\n",
	})
	entered := make(chan struct{}, 4)
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng.RegisterHandler("pay", func(ctx context.Context, _ *flowscript.TaskContext) (map[string]any, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	payID := startFile(t, eng, filepath.Join(ws, "pay.star"), flowscript.RunOptions{})
	plainID := startFile(t, eng, filepath.Join(ws, "plain.star"), flowscript.RunOptions{})
	<-entered
	waitFile(t, filepath.Join(ws, "plain-started"))
	eng.Close()
	os.WriteFile(filepath.Join(ws, "go-on"), nil, 0o644)

	// a process without the handler: the plain run goes on, the other is
	// left as it was
	eng2, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := eng2.Resume(context.Background())
	var left *flowscript.HandlersMissingError
	if !errors.As(err, &left) || !flowscript.IsInputError(err) {
		t.Fatalf("resume: %v; want a HandlersMissingError (an input error)", err)
	}
	if len(left.Runs) != 1 || left.Runs[0].ID != payID || strings.Join(left.Runs[0].Handlers, ",") != "pay" || !strings.Contains(err.Error(), "pay") {
		t.Fatalf("left %+v (%v)", left.Runs, err)
	}
	if len(resumed) != 1 || resumed[0] != plainID {
		t.Fatalf("resumed %v, want only %s", resumed, plainID)
	}
	if rec := waitRun(t, eng2, plainID); rec.Status != "succeeded" {
		t.Fatalf("plain run %s", rec.Status)
	}
	rec, err := eng2.Get(context.Background(), payID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "running" || stepByID(t, rec, "p").Status != "running" || stepByID(t, rec, "p").Attempt != 1 {
		t.Fatalf("the left run changed: %s, step %s attempt %d", rec.Status, stepByID(t, rec, "p").Status, stepByID(t, rec, "p").Attempt)
	}
	eng2.Close()

	// the embedding program, with its handler, resumes it
	eng3 := openEngine(t, dbDir, flowscript.Options{})
	eng3.RegisterHandler("pay", func(ctx context.Context, _ *flowscript.TaskContext) (map[string]any, error) {
		return map[string]any{"paid": true}, nil
	})
	if _, err := eng3.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec := waitRun(t, eng3, payID); rec.Status != "succeeded" {
		t.Fatalf("pay run after its program resumed it: %s %q", rec.Status, deref(rec.Error))
	}
}

// Issue 10 item 12: an idempotency key with a control character is
// refused at start (an input error) and at spawn (the step fails), so no
// workflow name and key can forge another pair's binding.
func TestIssue10ControlCharactersInKeysAreRefused(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ctx := context.Background()
	prog, err := eng.LoadString(ctx, "main.star", "task(\"t\", lambda ctx: None)\n")
	if err != nil {
		t.Fatal(err)
	}
	_, err = eng.Start(ctx, prog, flowscript.RunOptions{IdempotencyKey: "x\x00K", Workspace: t.TempDir()})
	if err == nil || !flowscript.IsInputError(err) || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("start with a NUL in the key: %v", err)
	}
	ws := writeWorkspace(t, map[string]string{
		"root.star": "k = task(\"k\", lambda ctx: {\"key\": \"x\\x00K\"})\nsub_workflow(\"c\", idempotency_key = k.output[\"key\"])\n",
		"c.star":    "task(\"t\", lambda ctx: None)\n",
	})
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	c := stepByID(t, rec, "c")
	if rec.Status != "failed" || c.Status != "failed" || !strings.Contains(deref(c.Error), "control character") {
		t.Fatalf("spawn with a NUL in the key: run %s, step %s %q", rec.Status, c.Status, deref(c.Error))
	}
}

// Issue 10 item 13: a value derived from a secret that a parent hands to
// a child (in inputs) is masked in the child's params, inputs, output,
// logs and history too, in every byte of the database, also when the
// child declares the same secret; a child idempotency key holding a
// secret's value is refused.
func TestIssue10SecretsDoNotLeakThroughChildren(t *testing.T) {
	const secret = "pl41n-Derived-Secret-77"
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
workflow(secrets = ["TOKEN"])
t = task("t", lambda ctx: {"tok": ctx.secret("TOKEN")})
sub_workflow("kid", inputs = {"v": t.output["tok"]})
sub_workflow("same", inputs = {"v": t.output["tok"]})
`,
		"kid.star": `
workflow(params = {"v": ""})
def show(ctx):
    ctx.log("got", ctx.params["v"])
    return {"echo": ctx.params["v"]}
task("show", show)
shell("sh", "echo param=$INPUT_V", inputs = {"v": param("v")})
`,
		"same.star": `
workflow(params = {"v": ""}, secrets = ["TOKEN"])
task("echo", lambda ctx: fail("leaked " + ctx.params["v"]), optional = True)
`,
	})
	eng, err := flowscript.Open(dbDir, flowscript.Options{Secrets: map[string]string{"TOKEN": secret}})
	if err != nil {
		t.Fatal(err)
	}
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	kid, err := eng.Get(context.Background(), deref(stepByID(t, rec, "kid").ChildRunID))
	if err != nil {
		t.Fatal(err)
	}
	if kid.Params["v"] != "***" {
		t.Fatalf("the child's params show %v", kid.Params["v"])
	}
	if out := stepByID(t, kid, "show").Output.(map[string]any); out["echo"] != "***" {
		t.Fatalf("the child's output shows %v", out["echo"])
	}
	logs, err := eng.Logs(context.Background(), kid.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, l := range logs {
		all.WriteString(l.Text)
	}
	if !strings.Contains(all.String(), "got ***") || !strings.Contains(all.String(), "param=***") || strings.Contains(all.String(), secret) {
		t.Fatalf("child logs:\n%s", all.String())
	}
	eng.Close()
	assertNoSecretInDir(t, dbDir, secret)

	ws2 := writeWorkspace(t, map[string]string{
		"root.star": `
workflow(secrets = ["TOKEN"])
t = task("t", lambda ctx: {"tok": ctx.secret("TOKEN")})
sub_workflow("kid", idempotency_key = t.output["tok"])
`,
		"kid.star": "task(\"x\", lambda ctx: None)\n",
	})
	eng2 := openEngine(t, t.TempDir(), flowscript.Options{Secrets: map[string]string{"TOKEN": secret}})
	rec = runFile(t, eng2, filepath.Join(ws2, "root.star"), flowscript.RunOptions{})
	if k := stepByID(t, rec, "kid"); k.Status != "failed" || !strings.Contains(deref(k.Error), "idempotency_key holds the value of a secret") {
		t.Fatalf("a key holding a secret: %s %q", k.Status, deref(k.Error))
	}
}
