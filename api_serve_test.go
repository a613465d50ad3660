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
	"testing/fstest"

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
	// logs --follow streams the step's output until the run ends, each line
	// after its step, as the CLI's own logs --follow prints it
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
	if code := follow.ProcessState.ExitCode(); code != 0 || streamed.String()+string(rest) != "wait: out| started\n" {
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

// logs --tree, answered by an embedding program, shows the logs of the
// run and of every run below it, each line prefixed by its run and step,
// as the CLI's own logs --tree does; with --follow (-f) it streams a
// child's output while the child runs, until the root ends.
func TestServeAnswersLogsTree(t *testing.T) {
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
	gate := filepath.Join(dir, "gate")
	fsys := fstest.MapFS{
		"root.star": {Data: []byte(`
workflow(name = "root", params = {"gate": ""})
top = shell("top", "echo top")
sub_workflow("kid", id = "child", inputs = {"gate": param("gate")}, after = [top])
`)},
		"kid.star": {Data: []byte(`
workflow(name = "kid", params = {"gate": ""})
shell("wait", "echo child started; while [ ! -e \"$INPUT_GATE\" ]; do sleep 0.05; done; echo child done", inputs = {"gate": param("gate")})
`)},
	}
	ctx := context.Background()
	prog, err := eng.Load(ctx, flowscript.FS(fsys, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Params: map[string]any{"gate": gate}})
	if err != nil {
		t.Fatal(err)
	}
	follow := exec.Command(cli, "--db", db, "logs", id[:10], "--tree", "-f")
	var followErr strings.Builder
	follow.Stderr = &followErr
	pipe, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(pipe)
	var streamed strings.Builder
	for !strings.HasSuffix(streamed.String(), " wait: out| child started\n") {
		line, err := lines.ReadString('\n')
		streamed.WriteString(line)
		if err != nil {
			follow.Wait()
			t.Fatalf("logs --tree -f ended before the child's output (exit %d): %v\n%s%s", follow.ProcessState.ExitCode(), err, streamed.String(), followErr.String())
		}
	}
	// the child is still running: its first line came while it ran
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(lines)
	follow.Wait()
	rec, err := eng.Wait(ctx, id)
	if err != nil || rec.Status != flowscript.RunSucceeded || rec.Steps[1].ChildRunID == nil {
		t.Fatalf("the run: %v %+v", err, rec)
	}
	child := *rec.Steps[1].ChildRunID
	want := id + " top: out| top\n" + child + " wait: out| child started\n" + child + " wait: out| child done\n"
	if got := streamed.String() + string(rest); follow.ProcessState.ExitCode() != 0 || got != want {
		t.Errorf("logs --tree -f: exit %d\n%s%s\nwant\n%s", follow.ProcessState.ExitCode(), got, followErr.String(), want)
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(cli, append([]string{"--db", db}, args...)...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("logs", id, "--tree"); code != 0 || out != want {
		t.Errorf("logs --tree: exit %d\n%s\nwant\n%s", code, out, want)
	}
	if out, code := run("logs", id); code != 0 || out != "== top (attempt 1) ==\nout| top\n" {
		t.Errorf("logs without --tree: exit %d\n%s", code, out)
	}
}
