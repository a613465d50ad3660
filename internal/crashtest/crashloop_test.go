package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashLoopStepIsFailed: a step that takes the engine down (here a
// shell step that kills its engine with SIGKILL, as a Go out-of-memory
// crash would) is started again by the first resumes, and once the engine
// stopped three times in a row while it ran, the next resume fails it
// with "the engine stopped 3 times while this step ran" instead of dying
// again; another run that resume continues ends normally.
func TestCrashLoopStepIsFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	files := map[string]string{
		"crash.star": "workflow(name = \"crash\")\nshell(\"boom\", \"kill -9 $PPID; sleep 5\")\n",
		"other.star": "workflow(name = \"other\")\nshell(\"wait\", \"touch started; while [ ! -f release ]; do sleep 0.05; done\")\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cli := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, binary, append([]string{"--db", db}, args...)...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		return cmd, &out
	}
	mustBeKilled := func(args ...string) {
		t.Helper()
		cmd, out := cli(args...)
		err := cmd.Run()
		if !isKilled(cmd.ProcessState) {
			t.Fatalf("flowscript %s was not killed by its step: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	mustBeKilled("run", "crash.star")
	mustBeKilled("resume")
	mustBeKilled("resume")

	// a bystander, left running by a kill once its step is running
	cmd, out := cli("run", "other.star")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := filepath.Join(dir, "started")
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if cmd.ProcessState != nil {
			t.Fatalf("run other.star ended early:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	cmd, out = cli("resume")
	err := cmd.Run()
	if isKilled(cmd.ProcessState) {
		t.Fatalf("the fourth engine was killed too: the crashing step was started again\n%s", out)
	}
	if err == nil {
		t.Fatalf("resume exited 0 with a failed run:\n%s", out)
	}
	text := out.String()
	if !strings.Contains(text, "the engine stopped 3 times while this step ran") {
		t.Errorf("resume's output does not say why the step failed:\n%s", text)
	}
	if !strings.Contains(text, " succeeded") {
		t.Errorf("the other run did not succeed:\n%s", text)
	}

	cmd, out = cli("runs", "--json")
	if err := cmd.Run(); err != nil {
		t.Fatalf("runs: %v\n%s", err, out)
	}
	var runs []struct {
		Workflow string `json:"workflow"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal(out.Bytes(), &runs); err != nil {
		t.Fatalf("runs --json: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, r := range runs {
		got[r.Workflow] = r.Status
	}
	if got["crash"] != "failed" || got["other"] != "succeeded" {
		t.Fatalf("runs: %v, want crash failed and other succeeded", got)
	}
}
