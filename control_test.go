package flowscript_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/runtime"
)

// pidsIn reads the pids that shell steps wrote, one per file in dir.
func pidsIn(dir string) []int {
	entries, _ := os.ReadDir(dir)
	var pids []int
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

func startFile(t *testing.T, eng *flowscript.Engine, file string, opts flowscript.RunOptions) string {
	t.Helper()
	prog, err := eng.LoadFile(context.Background(), file, flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(context.Background(), prog, opts)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestCancelStopsTheTreeButNotDetachedChildren(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
sub_workflow("worker", id = "w1")
sub_workflow("worker", id = "w2")
sub_workflow("loner", detach = True)
task("body", lambda ctx: sh("echo $$ > pids/body; sleep 30"))
`,
		"worker.star": `
s = shell("sleep", "echo $$ > pids/$(date +%s%N); sleep 30")
shell("never", "touch never-ran", after = [s])
`,
		"loner.star": `shell("sleep", "sleep 1; touch loner-done")`,
	})
	os.Mkdir(filepath.Join(ws, "pids"), 0o755)
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	id := startFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	waitFor(t, func() bool { return len(pidsIn(filepath.Join(ws, "pids"))) == 3 })
	pids := pidsIn(filepath.Join(ws, "pids"))

	start := time.Now()
	if _, err := eng.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil || rec.Status != "cancelled" {
		t.Fatalf("root %v %v", rec, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancel took %s", d)
	}
	tree, err := eng.Tree(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tree.Children {
		want := "cancelled"
		if c.Run.Detached {
			want = "running"
		}
		if got := string(c.Run.Status); got != want && !(c.Run.Detached && got == "succeeded") {
			t.Fatalf("child %s (%s) is %s, want %s", c.Run.ID, c.Run.Workflow, got, want)
		}
	}
	for _, pid := range pids {
		waitFor(t, func() bool { return !alive(pid) })
	}
	if _, err := os.Stat(filepath.Join(ws, "never-ran")); err == nil {
		t.Fatal("a step started after the cancel")
	}
	// the detached child was not cancelled: it ends by itself
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(ws, "loner-done")); return err == nil })

	// cancelling a run that ended changes nothing
	if _, err := eng.Cancel(ctx, id); !errors.Is(err, runtime.ErrAlreadyEnded) {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestCancellingAChildFailsItsParentStep(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"parent.star": `sub_workflow("kid")`,
		"kid.star":    `shell("sleep", "sleep 30")`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	id := startFile(t, eng, filepath.Join(ws, "parent.star"), flowscript.RunOptions{})
	var kid string
	waitFor(t, func() bool {
		rec, _ := eng.Get(ctx, id)
		if c := rec.Steps[0].ChildRunID; c != nil {
			kid = *c
		}
		return kid != ""
	})
	if _, err := eng.Cancel(ctx, kid); err != nil {
		t.Fatal(err)
	}
	rec, _ := eng.Wait(ctx, id)
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), "child run "+kid+" (kid) cancelled") {
		t.Fatalf("parent %s %q", rec.Status, deref(rec.Error))
	}
}

func TestCrashRightAfterCancelStaysCancelled(t *testing.T) {
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
k = sub_workflow("kid")
shell("after", "echo ran >> ledger", after = [k.done])
`,
		"kid.star": `shell("sleep", "echo started >> ledger; sleep 30")`,
	})
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id := startFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	waitFor(t, func() bool { data, _ := os.ReadFile(filepath.Join(ws, "ledger")); return len(data) > 0 })
	if _, err := eng.Cancel(ctx, id); err != nil {
		t.Fatal(err)
	}
	eng.Close() // the process dies before the cancel is carried out everywhere

	eng2 := openEngine(t, dbDir, flowscript.Options{})
	if _, err := eng2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := eng2.WaitTree(ctx, id)
	if err != nil || rec.Status != "cancelled" {
		t.Fatalf("%+v %v", rec, err)
	}
	runs, _ := eng2.List(ctx, flowscript.ListFilter{})
	for _, r := range runs {
		if r.Status != "cancelled" {
			t.Fatalf("run %s (%s) is %s", r.ID, r.Workflow, r.Status)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "ledger")); string(data) != "started\n" {
		t.Fatalf("ledger %q: nothing may start again after a cancel", data)
	}
}

func TestRerunFromAStepKeepsUpstream(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{"main.star": `
a = shell("a", "echo a >> ledger; echo A")
b = shell("b", "echo b >> ledger", after = [a])
c = shell("c", "echo c >> ledger; test -f fixed", after = [b])
shell("d", "echo d >> ledger", after = [c.failed])
`})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" || stepByID(t, rec, "c").Status != "failed" {
		t.Fatalf("first run: %s, c %s", rec.Status, stepByID(t, rec, "c").Status)
	}
	// a dry run plans and changes nothing
	plan, err := eng.Rerun(ctx, rec.ID, "b", flowscript.RerunOptions{DryRun: true})
	if err != nil || len(plan.Runs) != 1 || strings.Join(plan.Runs[0].Steps, ",") != "b,c,d" {
		t.Fatalf("plan %+v %v", plan, err)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "ledger")); string(data) != "a\nb\nc\nd\n" {
		t.Fatalf("ledger after dry run %q", data)
	}
	os.WriteFile(filepath.Join(ws, "fixed"), nil, 0o644)
	if _, err := eng.Rerun(ctx, rec.ID, "b", flowscript.RerunOptions{}); err != nil {
		t.Fatal(err)
	}
	rec, err = eng.Wait(ctx, rec.ID)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%+v %v", rec, err)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "ledger")); string(data) != "a\nb\nc\nd\nb\nc\n" {
		t.Fatalf("ledger %q: a must not run again, b and c must", data)
	}
	for id, want := range map[string]string{"a": "succeeded/1", "b": "succeeded/2", "c": "succeeded/2", "d": "skipped/1"} {
		s := stepByID(t, rec, id)
		if got := string(s.Status) + "/" + strconv.Itoa(s.Attempt); got != want {
			t.Fatalf("step %s is %s, want %s", id, got, want)
		}
	}
	if out := stepByID(t, rec, "a").Output.(map[string]any); out["stdout"] != "A\n" {
		t.Fatalf("a's output was not kept: %v", out)
	}
	hist, _ := eng.History(ctx, rec.ID)
	found := false
	for _, h := range hist {
		found = found || (h.Type == "rerun" && strings.Contains(h.Detail, "from step b"))
	}
	if !found {
		t.Fatal("the history does not record the rerun")
	}
	if _, err := eng.Rerun(ctx, rec.ID, "nope", flowscript.RerunOptions{}); !errors.Is(err, runtime.ErrInput) {
		t.Fatalf("unknown step: %v", err)
	}
}

func TestRerunInsideAChildReopensItsParents(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": `
m = sub_workflow("mid")
shell("report", "echo report >> ledger", after = [m])
shell("on-fail", "echo on-fail >> ledger", after = [m.failed])
`,
		"mid.star": `sub_workflow("leaf")`,
		"leaf.star": `
p = shell("prepare", "echo prepare >> ledger")
shell("flaky", "echo flaky >> ledger; test -f fixed", after = [p])
`,
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" { // the failure was handled by on-fail
		t.Fatalf("first run %s %s", rec.Status, deref(rec.Error))
	}
	leaves, _ := eng.List(ctx, flowscript.ListFilter{Workflow: "leaf"})
	if len(leaves) != 1 || leaves[0].Status != "failed" {
		t.Fatalf("leaf runs %+v", leaves)
	}
	// the tree is not active any more: rerun the leaf from its failed step
	os.WriteFile(filepath.Join(ws, "fixed"), nil, 0o644)
	plan, err := eng.Rerun(ctx, leaves[0].ID, "flaky", flowscript.RerunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Root != rec.ID || len(plan.Runs) != 3 || strings.Join(plan.Runs[0].Reopen, ",") != "mid" {
		t.Fatalf("plan %+v", plan)
	}
	rec, err = eng.WaitTree(ctx, plan.Root)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%+v %v", rec, err)
	}
	if data, _ := os.ReadFile(filepath.Join(ws, "ledger")); string(data) != "prepare\nflaky\non-fail\nflaky\nreport\n" {
		t.Fatalf("ledger %q", data)
	}
	if m := stepByID(t, rec, "mid"); m.Status != "succeeded" || m.Attempt != 2 {
		t.Fatalf("mid step %+v", m)
	}
	if s := stepByID(t, rec, "on-fail"); s.Status != "skipped" {
		t.Fatalf("on-fail %s: a .failed handler that ran is reset too", s.Status)
	}
	kids, _ := eng.List(ctx, flowscript.ListFilter{Workflow: "leaf"})
	if len(kids) != 1 || kids[0].Status != "succeeded" {
		t.Fatalf("the leaf was rerun in place: %+v", kids)
	}
}

func TestRerunRefusedWhileActive(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{"main.star": `shell("s", "sleep 30")`})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	id := startFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	_, err := eng.Rerun(context.Background(), id, "s", flowscript.RerunOptions{})
	if !errors.Is(err, runtime.ErrInput) || !strings.Contains(err.Error(), "cannot be rerun while its tree is active") {
		t.Fatalf("rerun of an active run: %v", err)
	}
}

// A declared secret that is missing when a run is resumed fails the step
// that asks for it (SPEC §7), not the resume.
func TestResumeWithoutASecretFailsTheStepThatAsks(t *testing.T) {
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{"main.star": `
workflow(secrets = ["FLOWSCRIPT_TEST_ONLY_TOKEN"])
a = shell("wait", "touch started; while [ ! -f go-on ]; do sleep 0.05; done")
task("use", lambda ctx: {"n": len(ctx.secret("FLOWSCRIPT_TEST_ONLY_TOKEN"))}, after = [a])
`})
	eng, err := flowscript.Open(dbDir, flowscript.Options{Secrets: map[string]string{"FLOWSCRIPT_TEST_ONLY_TOKEN": "abc"}})
	if err != nil {
		t.Fatal(err)
	}
	id := startFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(ws, "started")); return err == nil })
	eng.Close()

	os.WriteFile(filepath.Join(ws, "go-on"), nil, 0o644)
	eng2 := openEngine(t, dbDir, flowscript.Options{}) // the secret is gone
	ctx := context.Background()
	if _, err := eng2.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	rec, err := eng2.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "failed" || !strings.Contains(deref(rec.Error), "use: ") || !strings.Contains(deref(rec.Error), "secret FLOWSCRIPT_TEST_ONLY_TOKEN is not set") {
		t.Fatalf("run %s %q", rec.Status, deref(rec.Error))
	}
	if s := stepByID(t, rec, "wait"); s.Status != "succeeded" || s.Attempt != 2 {
		t.Fatalf("wait %+v", s)
	}
}
