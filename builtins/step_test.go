package builtins_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/internal/testio"
	"github.com/flowscript/flowscript/lang"
)

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// loadProgram evaluates src as main.star with lang, as the engine does.
func loadProgram(t *testing.T, src string, predeclared starlark.StringDict) *lang.Program {
	t.Helper()
	ws := lang.NewWorkspaceFiles(map[string][]byte{"main.star": []byte(src)}, lang.Options{Predeclared: predeclared})
	prog, err := ws.Load(context.Background(), "main.star")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(prog.Errors) > 0 {
		t.Fatalf("load: %v", prog.Errors)
	}
	return prog
}

// newStep is a step context for tests, logging into log.
func newStep(t *testing.T, id string, log *testio.SyncBuffer) *builtins.StepContext {
	sc := &builtins.StepContext{
		Context:  context.Background(),
		RunID:    "run-1",
		StepID:   id,
		Workflow: "main",
		Attempt:  1,
		Dir:      t.TempDir(),
	}
	if log != nil {
		sc.Log = log
	}
	return sc
}

// callStep runs the body of step id of prog.
func callStep(t *testing.T, prog *lang.Program, sc *builtins.StepContext, maxSteps uint64) (map[string]any, error) {
	t.Helper()
	body := prog.Bodies[sc.StepID]
	if body == nil {
		t.Fatalf("no body for step %q (have %v)", sc.StepID, prog.Bodies)
	}
	return builtins.CallBody(sc, body, maxSteps)
}

// runOne loads src, whose task "t" is the body under test, and runs it.
func runOne(t *testing.T, src string, sc *builtins.StepContext) (map[string]any, error) {
	t.Helper()
	return callStep(t, loadProgram(t, src, nil), sc, 0)
}

func TestCtxAttributes(t *testing.T) {
	src := `
workflow(params = {"env": "staging"}, secrets = ["TOKEN"])

def body(ctx):
    return {
        "run_id": ctx.run_id, "step_id": ctx.step_id, "workflow": ctx.workflow,
        "attempt": ctx.attempt, "artifact": ctx.inputs["artifact"], "n": ctx.inputs["n"],
        "env": ctx.params["env"], "token": ctx.secret("TOKEN"), "ctx": str(ctx),
        "has": sorted(dir(ctx)),
    }

task("t", body, inputs = {"artifact": "bin/app", "n": 3})
`
	var log testio.SyncBuffer
	sc := newStep(t, "t", &log)
	sc.Attempt = 2
	sc.Inputs = map[string]any{"artifact": "bin/app", "n": int64(3)}
	sc.Params = map[string]any{"env": "prod"}
	sc.Secret = func(name string) (string, error) {
		if name == "TOKEN" {
			return "s3cr3t", nil
		}
		return "", fmt.Errorf("secret %q is not declared", name)
	}
	out, err := runOne(t, src, sc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"run_id": "run-1", "step_id": "t", "workflow": "main", "attempt": int64(2),
		"artifact": "bin/app", "n": int64(3), "env": "prod", "token": "s3cr3t",
		"ctx": "<ctx of step t>",
		"has": []any{"attempt", "inputs", "log", "params", "run_id", "secret", "step_id", "workflow"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("output\n got %#v\nwant %#v", out, want)
	}
}

func TestCtxSecretUndeclared(t *testing.T) {
	src := `
def body(ctx):
    return {"x": ctx.secret("NOPE")}
task("t", body)
`
	sc := newStep(t, "t", nil)
	sc.Secret = func(name string) (string, error) {
		return "", fmt.Errorf("secret %q is not declared by the workflow", name)
	}
	_, err := runOne(t, src, sc)
	want := `main.star:3:28: ctx.secret: secret "NOPE" is not declared by the workflow`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	sc.Secret = nil
	if _, err := runOne(t, src, sc); err == nil || !strings.Contains(err.Error(), `secret "NOPE" is not declared`) {
		t.Fatalf("without secrets: err = %v", err)
	}
}

func TestFailMessage(t *testing.T) {
	src := `
def helper(x):
    fail("cannot deploy", x)

def body(ctx):
    helper("v2")

task("t", body)
`
	_, err := runOne(t, src, newStep(t, "t", nil))
	var be *builtins.BodyError
	if !errors.As(err, &be) {
		t.Fatalf("err = %#v, want a *BodyError", err)
	}
	// the call chain first, innermost last (SPEC §7 Command line)
	if err.Error() != "main.star:6:11: in body\nmain.star:3:9: cannot deploy v2" {
		t.Fatalf("err = %q", err)
	}
	if !strings.Contains(be.Backtrace, "helper") || !strings.Contains(be.Backtrace, "body") {
		t.Errorf("backtrace lacks the frames:\n%s", be.Backtrace)
	}
}

func TestStarlarkErrorHasPosition(t *testing.T) {
	src := `
def body(ctx):
    n = len(ctx.inputs)
    return {"x": 1 // n}
task("t", body)
`
	_, err := runOne(t, src, newStep(t, "t", nil))
	if err == nil || err.Error() != "main.star:4:20: floored division by zero" {
		t.Fatalf("err = %v", err)
	}
}

func TestPrintAndLogReachTheLog(t *testing.T) {
	src := `
def body(ctx):
    print("printed", 1)
    ctx.log("logged", 2, [3, "four"], None)
    ctx.log()
task("t", body)
`
	var log testio.SyncBuffer
	out, err := runOne(t, src, newStep(t, "t", &log))
	if err != nil || out != nil {
		t.Fatalf("out = %v, err = %v", out, err)
	}
	if want := "printed 1\nlogged 2 [3, \"four\"] None\n\n"; log.String() != want {
		t.Fatalf("log = %q, want %q", log.String(), want)
	}
}

func TestLogThroughMasker(t *testing.T) {
	src := `
def body(ctx):
    tok = ctx.secret("TOKEN")
    ctx.log("token is", tok)
    sh("printf 'from sh: %s\n' \"$T\"", env = {"T": tok})
    print(tok[:3], tok[3:])
task("t", body)
`
	var log testio.SyncBuffer
	masker := builtins.NewMasker(&log, []string{"hunter2"})
	sc := newStep(t, "t", nil)
	sc.Log = masker
	sc.Secret = func(string) (string, error) { return "hunter2", nil }
	if _, err := runOne(t, src, sc); err != nil {
		t.Fatal(err)
	}
	masker.Close()
	// sh() output is marked as a shell step's is: out| for stdout
	if want := "token is ***\nout| from sh: ***\nhun ter2\n"; log.String() != want {
		t.Fatalf("log = %q, want %q", log.String(), want)
	}
}

func TestBodyResult(t *testing.T) {
	tests := []struct {
		ret     string
		want    map[string]any
		wantErr string
	}{
		{`{"a": 1, "b": [True, None, 2.5], "c": {"d": "e"}}`, map[string]any{"a": int64(1), "b": []any{true, nil, 2.5}, "c": map[string]any{"d": "e"}}, ""},
		{`None`, nil, ""},
		{`{}`, map[string]any{}, ""},
		{`[1, 2]`, nil, "main.star:2:1: task body must return a dict or None, got list"},
		{`"done"`, nil, "main.star:2:1: task body must return a dict or None, got string"},
		{`{"x": struct(a = 1)}`, nil, `main.star:2:1: task output["x"]: a value of type struct cannot be stored`},
		{`{1: 2}`, nil, "main.star:2:1: task output: dict keys must be strings, got int 1"},
		{`{"big": "x" * (2 << 20)}`, nil, "main.star:2:1: task output is more than the limit of 1 MiB of JSON"},
		{`{"many": ["\u0001" * 1000] * 200}`, nil, "main.star:2:1: task output is 1.1 MiB of JSON, more than the limit of 1 MiB"},
		{`{"nan": float("nan")}`, nil, `main.star:2:1: task output["nan"]: nan cannot be stored (values are kept as JSON, which has no NaN or infinity)`},
	}
	for _, tt := range tests {
		src := "\ndef body(ctx):\n    return " + tt.ret + "\ntask(\"t\", body)\n"
		out, err := runOne(t, src, newStep(t, "t", nil))
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("return %s: err = %v, want %q...", tt.ret, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(out, tt.want) {
			t.Errorf("return %s: out = %#v, err = %v; want %#v", tt.ret, out, err, tt.want)
		}
	}
}

func TestLambdaBody(t *testing.T) {
	prog := loadProgram(t, `task("list", lambda ctx: {"files": ["a.csv", "b.csv"]})`, nil)
	out, err := callStep(t, prog, newStep(t, "list", nil), 0)
	if err != nil || !reflect.DeepEqual(out, map[string]any{"files": []any{"a.csv", "b.csv"}}) {
		t.Fatalf("out = %v, err = %v", out, err)
	}
}

func TestEndlessBodyStoppedByStepLimit(t *testing.T) {
	src := `
def body(ctx):
    n = 0
    while True:
        n += 1
task("t", body)
`
	_, err := callStep(t, loadProgram(t, src, nil), newStep(t, "t", nil), 10_000)
	if !errors.Is(err, builtins.ErrTooManySteps) {
		t.Fatalf("err = %v, want ErrTooManySteps", err)
	}
	if !strings.HasPrefix(err.Error(), "main.star:") || !strings.Contains(err.Error(), "more than 10000 Starlark execution steps") {
		t.Fatalf("err = %v", err)
	}
}

func TestPanicBecomesError(t *testing.T) {
	boom := starlark.NewBuiltin("boom", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
		panic("handler bug")
	})
	src := `
def body(ctx):
    boom()
task("t", body)
`
	prog := loadProgram(t, src, starlark.StringDict{"boom": boom})
	_, err := callStep(t, prog, newStep(t, "t", nil), 0)
	if err == nil || err.Error() != "internal error while running the step body: handler bug" {
		t.Fatalf("err = %v", err)
	}
}

func TestShInBody(t *testing.T) {
	src := `
def body(ctx):
    r = sh("echo hello; echo warn >&2")
    sub = sh("pwd", dir = "sub").stdout.strip()
    v = sh("echo \"$NAME-$N\"", env = {"NAME": "flow", "N": 3}).stdout.strip()
    soft = sh("echo nope >&2; exit 4", check = False)
    return {"out": r.stdout, "err": r.stderr, "code": r.exit_code, "sub": sub, "v": v,
            "soft": [soft.exit_code, soft.stderr]}
task("t", body)
`
	var log testio.SyncBuffer
	sc := newStep(t, "t", &log)
	if err := os.Mkdir(filepath.Join(sc.Dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runOne(t, src, sc)
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(filepath.Join(sc.Dir, "sub"))
	want := map[string]any{
		"out": "hello\n", "err": "warn\n", "code": int64(0), "sub": real, "v": "flow-3",
		"soft": []any{int64(4), "nope\n"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("out\n got %#v\nwant %#v", out, want)
	}
	for _, s := range []string{"hello\n", "warn\n", "nope\n"} {
		if !strings.Contains(log.String(), s) {
			t.Errorf("log %q lacks %q", log.String(), s)
		}
	}
}

func TestShErrors(t *testing.T) {
	tests := []struct{ call, want string }{
		{`sh("echo first >&2; echo 'it broke' >&2; exit 3")`, "main.star:3:11: sh: command exited with status 3: it broke"},
		{`sh("exit 1")`, "main.star:3:11: sh: command exited with status 1"},
		{`sh("true", dir = "../outside")`, `main.star:3:11: sh: dir "../outside" must be a path inside the workspace, relative to it`},
		{`sh("true", dir = "/etc")`, `main.star:3:11: sh: dir "/etc" must be a path inside the workspace`},
		{`sh("true", env = {"BAD-NAME": "x"})`, `main.star:3:11: sh: env name "BAD-NAME" is not a valid environment variable name`},
		{`sh("sleep 100", timeout = "200ms")`, "main.star:3:11: sh: command timed out after 200ms"},
		{`sh("true", timeout = "soon")`, `main.star:3:11: sh: timeout "soon" is not a duration`},
		{`sh("")`, "main.star:3:11: sh: the command is empty"},
	}
	for _, tt := range tests {
		src := "\ndef body(ctx):\n    r = " + tt.call + "\ntask(\"t\", body)\n"
		start := time.Now()
		_, err := runOne(t, src, newStep(t, "t", nil))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q...", tt.call, err, tt.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %s", tt.call, d)
		}
	}
}

func TestShOutputCap(t *testing.T) {
	src := `
def body(ctx):
    r = sh("head -c 5000 /dev/zero | tr '\\0' x")
    return {"n": len(r.stdout)}
task("t", body)
`
	var log testio.SyncBuffer
	sc := newStep(t, "t", &log)
	sc.MaxOutputBytes = 100
	out, err := runOne(t, src, sc)
	if err != nil {
		t.Fatal(err)
	}
	if out["n"] != int64(100) {
		t.Fatalf("captured %v bytes, want 100", out["n"])
	}
	if n := strings.Count(log.String(), "x"); n != 5000 {
		t.Fatalf("log holds %d bytes, want all 5000", n)
	}
}

func TestStepTimeoutStopsSh(t *testing.T) {
	src := `
def body(ctx):
    sh("echo $$ > pids; sleep 100 & echo $! >> pids; sleep 100")
task("t", body)
`
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	sc := newStep(t, "t", nil)
	sc.Context = ctx
	start := time.Now()
	_, err := runOne(t, src, sc)
	if err == nil || err.Error() != "main.star:3:7: step timed out" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %s", d)
	}
	data, err := os.ReadFile(filepath.Join(sc.Dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(data))
	if len(pids) != 2 {
		t.Fatalf("pids file holds %q", data)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p)
		if processAlive(pid) {
			t.Errorf("process %d outlived the step", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// processAlive reports whether pid runs; a zombie nobody reaps (orphans
// under a container's init) is dead.
func processAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func TestSleep(t *testing.T) {
	src := `
def body(ctx):
    sleep(0.01)
    sleep("10ms")
    sleep(time.millisecond)
    ctx.log("long sleep")
    sleep("1h")
task("t", body)
`
	ctx, cancel := context.WithCancel(context.Background())
	sc := newStep(t, "t", nil)
	sc.Context = ctx
	// cancel once the body reaches the long sleep
	sc.Log = writerFunc(func(p []byte) (int, error) {
		time.AfterFunc(50*time.Millisecond, cancel)
		return len(p), nil
	})
	start := time.Now()
	_, err := runOne(t, src, sc)
	if err == nil || err.Error() != "main.star:7:10: step cancelled" || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("sleep was not interrupted: %s", d)
	}

	bad := "\ndef body(ctx):\n    sleep(\"-1s\")\ntask(\"t\", body)\n"
	if _, err := runOne(t, bad, newStep(t, "t", nil)); err == nil || !strings.Contains(err.Error(), "sleep: duration -1s is negative") {
		t.Fatalf("negative sleep: err = %v", err)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sc := newStep(t, "t", nil)
	sc.Context = ctx
	_, err := runOne(t, "\ndef body(ctx):\n    fail(\"ran\")\ntask(\"t\", body)\n", sc)
	if err == nil || err.Error() != "step cancelled" {
		t.Fatalf("err = %v", err)
	}
}

func TestCancelStopsAStarlarkLoop(t *testing.T) {
	src := `
def body(ctx):
    while True:
        pass
task("t", body)
`
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	sc := newStep(t, "t", nil)
	sc.Context = ctx
	_, err := runOne(t, src, sc)
	if err == nil || !strings.HasSuffix(err.Error(), "step timed out") {
		t.Fatalf("err = %v", err)
	}
}

func TestTimeNow(t *testing.T) {
	src := `
def body(ctx):
    t = time.now()
    d = time.parse_duration("90s")
    return {"unix": t.unix, "year": t.year, "later": (t + d).unix, "str": str(t)}
task("t", body)
`
	fixed := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	sc := newStep(t, "t", nil)
	sc.Now = func() time.Time { return fixed }
	out, err := runOne(t, src, sc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"unix": fixed.Unix(), "year": int64(2024), "later": fixed.Unix() + 90, "str": "2024-05-06 07:08:09 +0000 UTC"}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("out = %#v, want %#v", out, want)
	}
}

func TestRunTimeBuiltinsRefuseWithoutStep(t *testing.T) {
	// at definition time, through lang
	ws := lang.NewWorkspaceFiles(map[string][]byte{"main.star": []byte("x = time.now()\n")}, lang.Options{})
	_, err := ws.Load(context.Background(), "main.star")
	if err == nil || !strings.Contains(err.Error(), "time.now() is only available inside a step body") {
		t.Fatalf("err = %v", err)
	}
	// pure members of time work while declaring
	prog := loadProgram(t, "d = time.parse_duration(\"5m\")\ntask(\"t\", lambda ctx: None)\n", nil)
	if prog == nil {
		t.Fatal("no program")
	}
	// on a thread without a step context
	rt := builtins.RunTimeBuiltins()
	thread := &starlark.Thread{}
	for _, fn := range []starlark.Value{rt["sh"], rt["sleep"]} {
		_, err := starlark.Call(thread, fn, starlark.Tuple{starlark.String("x")}, nil)
		if err == nil || !strings.Contains(err.Error(), "is only available inside a step body") {
			t.Errorf("%s: err = %v", fn, err)
		}
	}
}

// TestConcurrentBodies runs bodies of one program on many threads at once:
// each sees its own step context through the same builtins.
func TestConcurrentBodies(t *testing.T) {
	src := `
def body(ctx):
    r = sh("echo $STEP", env = {"STEP": ctx.step_id})
    return {"id": ctx.step_id, "sh": r.stdout.strip(), "now": time.now().unix}
task("t", body)
`
	prog := loadProgram(t, src, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("s%d", i)
			sc := newStep(t, id, nil)
			sc.Now = func() time.Time { return time.Unix(int64(i), 0) }
			out, err := builtins.CallBody(sc, prog.Bodies["t"], 0)
			if err != nil {
				errs <- err
				return
			}
			if want := (map[string]any{"id": id, "sh": id, "now": int64(i)}); !reflect.DeepEqual(out, want) {
				errs <- fmt.Errorf("got %v, want %v", out, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// fail() without a message still says what happened.
func TestFailWithoutMessage(t *testing.T) {
	_, err := runOne(t, "\ndef body(ctx):\n    fail()\ntask(\"t\", body)\n", newStep(t, "t", nil))
	if err == nil || !strings.HasSuffix(err.Error(), ":3:9: fail() was called without a message") {
		t.Fatalf("err = %v", err)
	}
}
