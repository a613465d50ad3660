package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFullDiskCLI runs the CLI on a database in a 5 MiB tmpfs (root only)
// with a workflow whose steps write more than fits. The commit that would
// fill the disk fails: `run` exits 2 with "no space left on device" and
// no stack (the process used to die of SIGBUS in Badger's memory-mapped
// value log), `runs` still answers, and once the file system is larger
// `resume` finishes the run with every step's output.
func TestFullDiskCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	fs := filepath.Join(dir, "fs")
	if err := os.Mkdir(fs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", fs).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", fs).Run() })
	// 20 steps of 600 KB outputs each: 12 MB, more than the file system
	script := "workflow(name = \"big\")\ndef b(ctx):\n    return {\"x\": \"y\" * 600000}\n" +
		"prev = None\nfor i in range(20):\n    prev = task(\"s\" + str(i), b, after = [prev] if prev else [])\n"
	if err := os.WriteFile(filepath.Join(dir, "big.star"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(fs, "db")
	cli := func(args ...string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"--db", db}, args...)...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("flowscript %s did not end within 2 minutes\n%s", strings.Join(args, " "), tail(out.String()))
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("flowscript %s died of %v\n%s", strings.Join(args, " "), ws.Signal(), tail(out.String()))
		}
		if strings.Contains(out.String(), "goroutine ") {
			t.Fatalf("flowscript %s printed a Go stack\n%s", strings.Join(args, " "), tail(out.String()))
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}
	code, out := cli("run", "big.star")
	if code != 2 || !strings.Contains(out, "no space left on device") {
		t.Fatalf("run on a full disk: exit %d, want 2 with no space left on device\n%s", code, tail(out))
	}
	if code, out := cli("runs"); code != 0 && !(code == 2 && strings.Contains(out, "no space left on device")) {
		t.Fatalf("runs on a full disk: exit %d\n%s", code, tail(out))
	}
	if out, err := exec.Command("mount", "-o", "remount,size=64m", fs).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if code, out := cli("resume"); code != 0 {
		t.Fatalf("resume once there is space: exit %d\n%s", code, tail(out))
	}
	code, out = cli("runs", "--json")
	var runs []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &runs); err != nil || len(runs) != 1 || runs[0].Status != "succeeded" {
		t.Fatalf("runs after resume: exit %d, %v: %s", code, err, tail(out))
	}
	code, out = cli("show", runs[0].ID, "--json")
	var rec struct {
		Steps []struct {
			Status string         `json:"status"`
			Output map[string]any `json:"output"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || len(rec.Steps) != 20 {
		t.Fatalf("show: exit %d, %v", code, err)
	}
	for i, s := range rec.Steps {
		if x, _ := s.Output["x"].(string); s.Status != "succeeded" || len(x) != 600000 {
			t.Errorf("step s%d: %s with an output of %d bytes", i, s.Status, len(x))
		}
	}
	if code, out := cli("check"); code != 0 {
		t.Errorf("check: exit %d\n%s", code, tail(out))
	}
}
