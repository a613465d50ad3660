package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// build compiles a package of this module into dir.
func build(t *testing.T, dir, pkg, name string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	bin := filepath.Join(dir, name)
	if out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// TestEmbedProgram builds this example and runs it: the workflow calls the
// Go handler and the host module, an order out of stock fails with exit 1.
func TestEmbedProgram(t *testing.T) {
	bin := build(t, t.TempDir(), ".", "embed")
	out, err := exec.Command(bin, "-item", "lamp", "-qty", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("embed: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`^order [0-9a-z]{26} succeeded: 2 x lamp reserved \(0 left\), total 5000 cents\n$`).Match(out) {
		t.Errorf("output %q", out)
	}
	cmd := exec.Command(bin, "-item", "lamp", "-qty", "3")
	out, err = cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(string(out), "failed: reserve: out of stock: lamp") {
		t.Errorf("out of stock: exit %d, %v, output %q", cmd.ProcessState.ExitCode(), err, out)
	}
}

// TestEmbedServesTheCLI runs the example on a database with -serve -hold
// and points the real flowscript command at that database: show, runs,
// tree and history are answered by the embedding program, which holds it.
func TestEmbedServesTheCLI(t *testing.T) {
	dir := t.TempDir()
	bin := build(t, dir, ".", "embed")
	cli := build(t, dir, "github.com/flowscript/flowscript/cmd/flowscript", "flowscript")
	db := filepath.Join(dir, "db")
	host := exec.Command(bin, "-db", db, "-serve", "-hold")
	stdin, _ := host.StdinPipe()
	stdout, _ := host.StdoutPipe()
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("the host printed nothing")
	}
	m := regexp.MustCompile(`^order ([0-9a-z]{26}) succeeded`).FindStringSubmatch(lines.Text())
	if m == nil {
		t.Fatalf("host said %q", lines.Text())
	}
	id := m[1]
	if !lines.Scan() || !strings.HasPrefix(lines.Text(), "holding ") {
		t.Fatalf("host said %q", lines.Text())
	}

	flowscript := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"--db", db}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("flowscript %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(flowscript("show", id, "--json")), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["status"] != "succeeded" || rec["workflow"] != "order" || rec["hash"] != nil || rec["workspace"] != nil {
		t.Errorf("show --json: %v", rec)
	}
	if out := flowscript("runs"); !regexp.MustCompile(id + ` +order +1 +succeeded`).MatchString(out) {
		t.Errorf("runs:\n%s", out)
	}
	if out := flowscript("tree", id); !strings.Contains(out, id+"  order v1  succeeded") {
		t.Errorf("tree:\n%s", out)
	}
	if out := flowscript("logs", id, "--step", "reserve"); !strings.Contains(out, "reserved 1 x book") {
		t.Errorf("logs:\n%s", out)
	}
	if out := flowscript("cancel", id); !strings.Contains(out, "already ended") {
		t.Errorf("cancel:\n%s", out)
	}
	// a command the host does not serve is refused with exit 2, naming what it serves
	cmd := exec.Command(cli, "--db", db, "resume")
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "show, runs, tree, history, logs, watch, cancel") {
		t.Errorf("resume: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := host.Wait(); err != nil {
		t.Errorf("host: %v", err)
	}
}
