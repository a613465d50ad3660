package builtins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscript/flowscript/internal/procgroup"
	"github.com/flowscript/flowscript/internal/testio"
)

func TestRunShellOutputAndExitCode(t *testing.T) {
	var log testio.SyncBuffer
	res, err := RunShell(context.Background(), ShellRequest{
		Command: "echo out; echo err >&2; echo 'last words' >&2; exit 3",
		Stdout:  &log,
		Stderr:  &log,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "out\n" || res.Stderr != "err\nlast words\n" || res.ExitCode != 3 || res.Truncated {
		t.Fatalf("result = %+v", res)
	}
	if got := res.ExitError(); got == nil || got.Error() != "command exited with status 3: last words" {
		t.Fatalf("ExitError() = %v", got)
	}
	for _, s := range []string{"out\n", "err\n", "last words\n"} {
		if !strings.Contains(log.String(), s) {
			t.Errorf("log %q lacks %q", log.String(), s)
		}
	}
}

func TestRunShellEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	res, err := RunShell(context.Background(), ShellRequest{
		Command: `printf '%s|%s|' "$GREETING" "$(pwd)"; command -v ls >/dev/null && echo path-ok`,
		Env:     map[string]string{"GREETING": "hello world", "PATH_UNUSED": "x"},
		Dir:     dir,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if want := "hello world|" + real + "|path-ok\n"; res.Stdout != want {
		t.Fatalf("stdout = %q, want %q", res.Stdout, want)
	}

	_, err = RunShell(context.Background(), ShellRequest{Command: "true", Dir: filepath.Join(dir, "missing")}, 0)
	if err == nil || !strings.Contains(err.Error(), "cannot run command") {
		t.Fatalf("missing dir: err = %v", err)
	}
	_, err = RunShell(context.Background(), ShellRequest{Command: "true", Env: map[string]string{"A=B": "x"}}, 0)
	if err == nil {
		t.Fatal("a bad env name was accepted")
	}
}

func TestRunShellCapsCapturedOutput(t *testing.T) {
	var log testio.SyncBuffer
	res, err := RunShell(context.Background(), ShellRequest{
		Command: `head -c 300000 /dev/zero | tr '\0' x; head -c 5000 /dev/zero | tr '\0' e >&2; echo; echo the-end >&2`,
		Stdout:  &log,
	}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 1000 || len(res.Stderr) != 1000 || !res.Truncated {
		t.Fatalf("captured %d/%d bytes, truncated %v", len(res.Stdout), len(res.Stderr), res.Truncated)
	}
	if n := strings.Count(log.String(), "x"); n != 300000 {
		t.Fatalf("the log got %d bytes of stdout, want all 300000", n)
	}
	if !strings.HasSuffix(res.StderrTail, "the-end\n") || len(res.StderrTail) > stderrTailBytes {
		t.Fatalf("stderr tail ends %q (%d bytes)", res.StderrTail[max(0, len(res.StderrTail)-20):], len(res.StderrTail))
	}
}

// alive reports whether pid is a live process (a zombie that nobody reaps,
// as under a container's init, is dead).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	state, _, ok := procgroup.ParseStat(data)
	return ok && state != 'Z' && state != 'X'
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		if state, pg, ok := procgroup.ParseStat(data); ok && pg == pgid && state != 'Z' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// startGroup runs command (which must print its $$ first) in RunShell and
// returns, once the group has want live members, their pids and a channel
// with RunShell's outcome.
func startGroup(t *testing.T, ctx context.Context, command string, want int, grace time.Duration) ([]int, <-chan shellOutcome) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan shellOutcome, 1)
	go func() {
		res, err := RunShell(ctx, ShellRequest{Command: command, Stdout: pw, Grace: grace}, 0)
		pw.Close()
		done <- shellOutcome{res, err}
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the shell's pid: %v", err)
	}
	go io.Copy(io.Discard, pr)
	pgid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("bad pid line %q", line)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids := groupMembers(pgid)
		if len(pids) >= want {
			return pids, done
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %d has %d processes, want %d", pgid, len(pids), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type shellOutcome struct {
	res ShellResult
	err error
}

func checkGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d is still running", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func TestRunShellCancelKillsProcessGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// the shell, a background sleep and a foreground sleep
	pids, done := startGroup(t, ctx, "echo $$; sleep 100 & sleep 100", 3, 0)
	start := time.Now()
	cancel()
	out := <-done
	if out.err == nil || !strings.Contains(out.err.Error(), "cancelled") || !errors.Is(out.err, context.Canceled) {
		t.Fatalf("err = %v", out.err)
	}
	if out.res.ExitCode != 128+int(syscall.SIGTERM) {
		t.Errorf("exit code = %d, want %d", out.res.ExitCode, 128+int(syscall.SIGTERM))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %s", d)
	}
	checkGone(t, pids)
}

func TestRunShellTimeoutKillsWhatIgnoresSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// SIGTERM stays ignored in the children too: only SIGKILL stops them.
	pids, done := startGroup(t, ctx, "trap '' TERM; echo $$; sleep 100 & sleep 100", 3, 200*time.Millisecond)
	out := <-done
	if out.err == nil || !strings.Contains(out.err.Error(), "timed out") || !errors.Is(out.err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", out.err)
	}
	if out.res.ExitCode != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code = %d, want %d", out.res.ExitCode, 128+int(syscall.SIGKILL))
	}
	checkGone(t, pids)
}

func TestRunShellStopsWhatTheCommandLeftBehind(t *testing.T) {
	start := time.Now()
	res, err := RunShell(context.Background(), ShellRequest{Command: "sleep 100 & echo $!"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s: the background process held the command", d)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(res.Stdout))
	if err != nil {
		t.Fatalf("stdout %q", res.Stdout)
	}
	checkGone(t, []int{pid})
}

func TestRunShellContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := RunShell(ctx, ShellRequest{Command: "echo should-not-run"}, 0)
	if err == nil || res.Stdout != "" || res.ExitCode != -1 {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestContextErrorCause(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("run cancelled by alice"))
	err := contextError("step", ctx)
	if err.Error() != "step cancelled: run cancelled by alice" || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

// A secret that the output cap cuts through is masked whole before the
// cut: no start of it is kept. At the start of the stderr tail, the end of
// a secret that began before the tail is dropped.
func TestRunShellMasksSecretsAtTheCaps(t *testing.T) {
	const secret = "S3CR3T-VALUE-42"
	cmd := `printf 'aaaaa%s bbbb'; printf 'ccccc%s dddd' >&2`
	res, err := RunShell(context.Background(), ShellRequest{
		Command: fmt.Sprintf(cmd, secret, secret), Secrets: []string{secret},
	}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "aaaaa*** b" || res.Stderr != "ccccc*** d" || !res.Truncated {
		t.Fatalf("stdout %q, stderr %q, truncated %v; want the secret masked before the cut", res.Stdout, res.Stderr, res.Truncated)
	}

	// the tail keeps the last 4 KiB of stderr: with two secrets and then
	// y, a tail cut from the raw stream would begin inside the first
	// secret, and masking the second would make room for more of it
	after := stderrTailBytes + 2 - len(secret)
	res, err = RunShell(context.Background(), ShellRequest{
		Command: fmt.Sprintf(`printf 'x%s%s' >&2; head -c %d /dev/zero | tr '\0' y >&2; exit 3`, secret, secret, after),
		Secrets: []string{secret},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.StderrTail, secret[5:9]) || !strings.HasSuffix(res.Stderr, res.StderrTail) || len(res.StderrTail) != min(stderrTailBytes, len(res.Stderr)) {
		t.Fatalf("stderr tail (%d bytes) keeps part of a secret: %q...", len(res.StderrTail), res.StderrTail[:min(30, len(res.StderrTail))])
	}
	if !strings.HasSuffix(res.Stderr, "***"+strings.Repeat("y", after)) {
		t.Fatalf("stderr does not end with the masked secret and the y: ...%q", res.Stderr[max(0, len(res.Stderr)-30):])
	}
}
