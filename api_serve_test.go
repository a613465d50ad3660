package flowscript_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

// The real flowscript command, pointed at a database this process holds
// and serves, cancels a run that is running here and lists it; commands
// the engine does not serve exit 2 naming those it does. watch follows a
// run here, and its Ctrl-C names the run and this process.
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
	prog, err := eng.Load(ctx, flowscript.Script("slow.star", `shell("wait", "echo started; sleep 120")`), flowscript.LoadOptions{})
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
	if out, code := run("runs", "-q", "--limit", "1"); code != 0 || out != id+"\n" {
		t.Errorf("runs -q --limit 1: exit %d\n%s", code, out)
	}
	// watch follows the run here; Ctrl-C on it says where the run goes on
	watch := exec.Command(cli, "--db", db, "watch", id[:10])
	var watchErr strings.Builder
	watch.Stderr = &watchErr
	pipe, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(pipe)
	for lines.Scan() && !strings.Contains(lines.Text(), "step_started wait") {
	}
	watch.Process.Signal(os.Interrupt)
	io.Copy(io.Discard, pipe)
	watch.Wait()
	want := fmt.Sprintf("interrupted: run %s goes on in the process holding the database (pid %d)", id, os.Getpid())
	if code := watch.ProcessState.ExitCode(); code != 130 || !strings.Contains(watchErr.String(), want) {
		t.Errorf("watch interrupted: exit %d, stderr:\n%s\nwant %q", code, watchErr.String(), want)
	}
	// logs --follow streams the step's output until the run ends
	follow := exec.Command(cli, "--db", db, "logs", id, "--follow")
	followOut, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followed := bufio.NewReader(followOut)
	var streamed strings.Builder
	for !strings.Contains(streamed.String(), "started\n") {
		line, err := followed.ReadString('\n')
		streamed.WriteString(line)
		if err != nil {
			t.Fatalf("logs --follow ended before the step's output: %v\n%s", err, streamed.String())
		}
	}
	if out, code := run("cancel", id[:10]); code != 0 || !strings.Contains(out, id+" cancelled") {
		t.Errorf("cancel: exit %d\n%s", code, out)
	}
	rest, _ := io.ReadAll(followed)
	follow.Wait()
	if code := follow.ProcessState.ExitCode(); code != 0 || streamed.String()+string(rest) != "--- wait (attempt 1)\nout| started\n" {
		t.Errorf("logs --follow: exit %d\n%s%s", code, streamed.String(), rest)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil || rec.Status != flowscript.RunCancelled || rec.Steps[0].Status != flowscript.StepCancelled {
		t.Errorf("after the CLI's cancel: %v %+v", err, rec)
	}
	if out, code := run("watch", id); code != 1 || !strings.Contains(out, "run_ended cancelled") || !strings.HasSuffix(out, id+" cancelled\n") {
		t.Errorf("watch of the cancelled run: exit %d\n%s", code, out)
	}
	if out, code := run("show", "nosuchrun"); code != 2 || !strings.Contains(out, "unknown run") {
		t.Errorf("show of an unknown run: exit %d\n%s", code, out)
	}
	if out, code := run("rerun", id, "--from", "wait"); code != 2 || !strings.Contains(out, "it answers show, runs, tree, history, logs, watch, cancel") {
		t.Errorf("rerun: exit %d\n%s", code, out)
	}
}
