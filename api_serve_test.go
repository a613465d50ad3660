package flowscript_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

// The real flowscript command, pointed at a database this process holds
// and serves, cancels a run that is running here and lists it; commands
// the engine does not serve exit 2 naming those it does.
func TestServeAnswersTheCLI(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the CLI with")
	}
	dir := t.TempDir()
	cli := filepath.Join(dir, "flowscript")
	if out, err := exec.Command(goTool, "build", "-o", cli, "./cmd/flowscript").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "db")
	eng, err := flowscript.Open(db, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Serve(flowscript.ServeOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prog, err := eng.Load(ctx, flowscript.Script("slow.star", `shell("wait", "sleep 120")`), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(cli, append([]string{"--db", db}, args...)...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("runs", "--json"); code != 0 || !strings.Contains(out, `"id": "`+id+`"`) {
		t.Errorf("runs --json: exit %d\n%s", code, out)
	}
	if out, code := run("cancel", id[:10]); code != 0 || !strings.Contains(out, id+" cancelled") {
		t.Errorf("cancel: exit %d\n%s", code, out)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil || rec.Status != flowscript.RunCancelled || rec.Steps[0].Status != flowscript.StepCancelled {
		t.Errorf("after the CLI's cancel: %v %+v", err, rec)
	}
	if out, code := run("show", "nosuchrun"); code != 2 || !strings.Contains(out, "unknown run") {
		t.Errorf("show of an unknown run: exit %d\n%s", code, out)
	}
	if out, code := run("rerun", id, "--from", "wait"); code != 2 || !strings.Contains(out, "it answers show, runs, tree, history, logs, cancel") {
		t.Errorf("rerun: exit %d\n%s", code, out)
	}
}
