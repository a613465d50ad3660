package crashtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileCases are scripts that once took the engine down (a Go
// out-of-memory crash, a stack overflow, a hang) or could: each must be
// stopped with a message naming the limit, the process must end on its
// own (not by a signal), and its memory must stay bounded.
var hostileCases = []struct {
	name, script string
	exit         int    // the CLI's exit code
	want         string // in its output
	long         bool   // only in make reliability (FLOWSCRIPT_RELIABILITY_ROUNDS set)
}{
	{"list(range(1<<40)) in a body", body("x = list(range(1 << 40))"), 1, "more than the limit of 10000000", false},
	{"set(range(1<<40)) in a body", body("x = set(range(1 << 40))"), 1, "more than the limit of 10000000", false},
	{"dict(zip(...)) in a body", body("x = dict(zip(range(1 << 40), range(1 << 40)))"), 1, "more than the limit of 10000000", false},
	{"sorted(range(1<<40)) in a body", body("x = sorted(range(1 << 40))"), 1, "more than the limit of 10000000", false},
	{"x.extend(range(1<<40)) in a body", body("x = []\n    x.extend(range(1 << 40))"), 1, "extend: the range has 1099511627776 elements", false},
	{"x += range(1<<40) in a body", body("x = [1]\n    x += range(1 << 40)"), 1, "+=: the range has 1099511627776 elements", false},
	{"set().union(range(1<<40)) in a body", body("x = set().union(range(1 << 40))"), 1, "union: the range has", false},
	{"[0] * (1<<29) in a body", body("x = [0] * (1 << 29)"), 1, "more than the limit of 10000000 elements that one operation may build", false},
	{"a list of 8M repeated 100 times", body("x = list(range(1 << 23)) * 100"), 1, "more than the limit of 10000000 elements that one operation may build", false},
	{"[0] * (1<<29) at declaration", "workflow(name = \"w\")\nx = [0] * (1 << 29)\n", 2, "w.star:2:9: *: repeating a list", false},
	{"a string doubling in a loop", body("s = \"x\"\n    for i in range(100):\n        s = s + s"), 1, "the step memory limit", true},
	{"a list doubling in a loop", body("s = [1]\n    for i in range(100):\n        s = s + s"), 1, "the step memory limit", true},
	{"a 1,000,000-deep list returned", body("x = []\n    for i in range(1000000):\n        x = [x]\n    return {\"x\": x}"), 1, "nested more than 1000 deep", false},
	{"a 20,000-deep dict returned", body("x = {}\n    for i in range(20000):\n        x = {\"a\": x}\n    return {\"x\": x}"), 1, "nested more than 1000 deep", false},
	{"an endless loop in a body", body("while True:\n        pass"), 1, "Starlark execution steps", true},
	{"a 10 MB output", body("return {\"x\": \"y\" * 10000000}"), 1, "more than the limit of 1 MiB", false},
	{"10 MB of shell output", "workflow(name = \"w\")\nshell(\"a\", \"head -c 10000000 /dev/zero | tr '\\\\0' x; exit 1\")\n", 1, "failed", false},
	{"list(range(1<<40)) at declaration", "workflow(name = \"w\")\nx = list(range(1 << 40))\n", 2, "w.star:2:9: list: the range has", false},
	{"an endless loop at declaration", "workflow(name = \"w\")\nwhile True:\n    pass\n", 2, "more than 10000000 execution steps", false},
	{"load() of a file outside the workspace", "load(\"../outside.star\", \"x\")\nworkflow(name = \"w\")\n", 2, "outside", false},
	{"load() of an absolute path", "load(\"/etc/passwd\", \"x\")\nworkflow(name = \"w\")\n", 2, "w.star:1:", false},
	{"load() of itself", "load(\"w.star\", \"x\")\nworkflow(name = \"w\")\n", 2, "load cycle", false},
	{"a 10,000-way fan-out", "workflow(name = \"w\")\ndef b(ctx):\n    return None\nfor i in range(10000):\n    task(\"t\" + str(i), b)\n", 0, "succeeded", true},
}

func body(code string) string {
	return "workflow(name = \"w\")\ndef b(ctx):\n    " + code + "\ntask(\"a\", b)\n"
}

// maxHostileRSS bounds the peak memory of one hostile script's process.
const maxHostileRSS = 3 << 30

func TestHostileScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI on scripts that try to take it down")
	}
	long := os.Getenv("FLOWSCRIPT_RELIABILITY_ROUNDS") != ""
	for _, c := range hostileCases {
		t.Run(c.name, func(t *testing.T) {
			if c.long && !long {
				t.Skip("takes seconds: make reliability runs it")
			}
			dir := t.TempDir()
			ws := filepath.Join(dir, "ws")
			if err := os.MkdirAll(ws, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ws, "w.star"), []byte(c.script), 0o644); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(dir, "outside.star"), []byte("x = 1\n"), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sampleCtx, cancelSample := context.WithCancel(ctx)
			defer cancelSample()
			cmd := exec.CommandContext(ctx, binary, "--db", filepath.Join(dir, "db"), "run", "w.star", "--durability", "fast")
			cmd.Dir = ws
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			began := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// the child's own high-water mark (its rusage would include
			// this test process, whose memory it shared until exec)
			var rss int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					if n := vmHWM(cmd.Process.Pid); n > rss {
						rss = n
					}
					select {
					case <-sampleCtx.Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
					if cmd.ProcessState != nil {
						return
					}
				}
			}()
			err := cmd.Wait()
			took := time.Since(began)
			cancelSample()
			<-done
			if ctx.Err() != nil {
				t.Fatalf("not stopped within 2 minutes\n%s", tail(out.String()))
			}
			ps := cmd.ProcessState
			ws2, _ := ps.Sys().(syscall.WaitStatus)
			figure("hostile scripts", c.name, "exit %d, %s, peak RSS %s", ps.ExitCode(), took.Round(10*time.Millisecond), mib(rss))
			if ws2.Signaled() {
				t.Fatalf("the engine died of %v\n%s", ws2.Signal(), tail(out.String()))
			}
			if ps.ExitCode() != c.exit {
				t.Errorf("exit %d (%v), want %d\n%s", ps.ExitCode(), err, c.exit, tail(out.String()))
			}
			text := out.String()
			if !strings.Contains(text, c.want) {
				t.Errorf("the output does not say %q:\n%s", c.want, tail(text))
			}
			if strings.Contains(text, "goroutine ") {
				t.Errorf("a Go stack trace:\n%s", tail(text))
			}
			if rss > maxHostileRSS {
				t.Errorf("peak RSS %s, more than %s", mib(rss), mib(maxHostileRSS))
			}
		})
	}
}

// vmHWM is a process's peak resident memory in bytes, from /proc; 0 once
// it is gone.
func vmHWM(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	return 0
}

func mib(n int64) string { return fmt.Sprintf("%d MiB", n>>20) }

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}
