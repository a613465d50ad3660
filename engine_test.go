package flowscript_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime"
)

func openEngine(t *testing.T, dir string, opts flowscript.Options) *flowscript.Engine {
	t.Helper()
	eng, err := flowscript.Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

// writeWorkspace writes files into a new workspace directory.
func writeWorkspace(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runFile(t *testing.T, eng *flowscript.Engine, file string, opts flowscript.RunOptions) *flowscript.RunRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prog, err := eng.LoadFile(ctx, file, flowscript.LoadOptions{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	rec, err := eng.Run(ctx, prog, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rec
}

func stepByID(t *testing.T, rec *flowscript.RunRecord, id string) flowscript.StepRecord {
	t.Helper()
	for _, s := range rec.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("run has no step %q", id)
	return flowscript.StepRecord{}
}

func TestRunPassesOutputsAndParams(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{"main.star": `
workflow(name = "demo", params = {"who": "world", "n": 2})

def greet(ctx):
    return {"text": "hello " + ctx.params["who"], "n": ctx.params["n"] * 2}

g = task("greet", greet)
s = shell("shout", "printf '%s/%s' \"$INPUT_TEXT\" \"$INPUT_N\"", inputs = {"text": g.output["text"], "n": g.output["n"]})
output(said = s.output["stdout"], n = g.output["n"])
`})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{Params: map[string]any{"who": "moon"}})
	if rec.Status != "succeeded" {
		t.Fatalf("status %s, error %v", rec.Status, rec.Error)
	}
	want := map[string]any{"said": "hello moon/4", "n": int64(4)}
	if !reflect.DeepEqual(rec.Output, want) {
		t.Fatalf("output %#v, want %#v", rec.Output, want)
	}
	if rec.Depth != 1 || rec.RootRunID != rec.ID || rec.Version != 1 || rec.Workflow != "demo" {
		t.Fatalf("record fields: %+v", rec)
	}
	if rec.Params["who"] != "moon" || rec.Params["n"] != int64(2) {
		t.Fatalf("params %v", rec.Params)
	}
	shout := stepByID(t, rec, "shout")
	if shout.Attempt != 1 || shout.Kind != "shell" || shout.StartedAt == nil || shout.EndedAt == nil {
		t.Fatalf("shout step %+v", shout)
	}
	if !reflect.DeepEqual(shout.Inputs, map[string]any{"text": "hello moon", "n": int64(4)}) {
		t.Fatalf("shout inputs %#v", shout.Inputs)
	}
	// the same content registered again reuses version 1
	rec2 := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	if rec2.Version != 1 || rec2.ID <= rec.ID {
		t.Fatalf("second run: version %d id %s (first %s)", rec2.Version, rec2.ID, rec.ID)
	}
}

func TestFailedShellStepKeepsOutputAndFailsRun(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{"main.star": `
a = shell("a", "echo out; echo bad thing >&2; exit 3")
shell("b", "echo never", after = [a])
h = shell("handled", "exit 1")
shell("cleanup", "echo cleaning", after = [h.failed])
`})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	if rec.Status != "failed" || rec.Error == nil || *rec.Error != "a: command exited with status 3: bad thing" {
		t.Fatalf("run %s %v", rec.Status, deref(rec.Error))
	}
	a := stepByID(t, rec, "a")
	if out, _ := a.Output.(map[string]any); out["stdout"] != "out\n" || out["stderr"] != "bad thing\n" || out["exit_code"] != int64(3) {
		t.Fatalf("a's output %#v", a.Output)
	}
	if b := stepByID(t, rec, "b"); b.Status != "skipped" || b.Attempt != 0 {
		t.Fatalf("b %+v", b)
	}
	if c := stepByID(t, rec, "cleanup"); c.Status != "succeeded" {
		t.Fatalf("cleanup %+v", c)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestRetriesAndTimeouts(t *testing.T) {
	dir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{"main.star": `
shell("flaky", "echo x >> tries; test $(wc -l < tries) -ge 3", retries = 3, retry_delay = "10ms")
shell("slow", "sleep 5", timeout = "200ms", optional = True)
shell("gives-up", "exit 7", retries = 1, retry_delay = "1ms", optional = True)
`})
	eng := openEngine(t, dir, flowscript.Options{})
	start := time.Now()
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	if time.Since(start) > 4*time.Second {
		t.Fatalf("the timeout did not stop the sleeping step")
	}
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	if f := stepByID(t, rec, "flaky"); f.Status != "succeeded" || f.Attempt != 3 {
		t.Fatalf("flaky %+v", f)
	}
	if s := stepByID(t, rec, "slow"); s.Status != "failed" || !strings.Contains(deref(s.Error), "timed out after 200ms") {
		t.Fatalf("slow %+v %s", s, deref(s.Error))
	}
	if g := stepByID(t, rec, "gives-up"); g.Status != "failed" || g.Attempt != 2 {
		t.Fatalf("gives-up %+v", g)
	}
}

func TestHistoryIsContiguous(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{"main.star": `
a = task("a", lambda ctx: {"v": 1})
task("b", lambda ctx: None, after = [a])
`})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	hist, err := eng.History(context.Background(), rec.ID[:10])
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i, h := range hist {
		if h.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, h.Seq)
		}
		types = append(types, h.Type+":"+h.Step)
	}
	want := []string{"run_started:", "step_started:a", "step_ended:a", "step_started:b", "step_ended:b", "run_ended:"}
	if !reflect.DeepEqual(types, want) {
		t.Fatalf("history %v", types)
	}
}

func TestSecretsNeverReachTheStore(t *testing.T) {
	const secret = "s3cr3t-Value-42"
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{"main.star": `
workflow(secrets = ["API_TOKEN"])

def use(ctx):
    tok = ctx.secret("API_TOKEN")
    ctx.log("token is", tok)
    print("printed", tok)
    return {"echo": tok, "len": len(tok)}

u = task("use", use)
shell("env", "echo token=$TOKEN; echo input=$INPUT_T", env = {"TOKEN": secret("API_TOKEN")}, inputs = {"t": secret("API_TOKEN")})
task("fails", lambda ctx: fail("bad " + ctx.secret("API_TOKEN")), optional = True)
`})
	eng := openEngine(t, dbDir, flowscript.Options{Secrets: map[string]string{"API_TOKEN": secret}})
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	use := stepByID(t, rec, "use")
	if out := use.Output.(map[string]any); out["echo"] != "***" || out["len"] != int64(len(secret)) {
		t.Fatalf("use output %#v", use.Output)
	}
	if in := stepByID(t, rec, "env").Inputs.(map[string]any); in["t"] != "***" {
		t.Fatalf("env inputs %#v", in)
	}
	logs, err := eng.Logs(context.Background(), rec.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, l := range logs {
		all.WriteString(l.Text)
	}
	if !strings.Contains(all.String(), "token is ***") || !strings.Contains(all.String(), "token=***") || !strings.Contains(all.String(), "input=***") {
		t.Fatalf("logs do not show the masked secret:\n%s", all.String())
	}
	if f := stepByID(t, rec, "fails"); deref(f.Error) == "" || strings.Contains(deref(f.Error), secret) {
		t.Fatalf("fails error %q", deref(f.Error))
	}
	eng.Close()
	// no byte of the database holds the secret
	assertNoSecretInDir(t, dbDir, secret)
}

func TestStartRefusesBadInput(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{"main.star": `
workflow(params = {"env": "dev"}, secrets = ["NOT_SET_ANYWHERE_X"])
task("a", "no.such.handler")
`, "ok.star": `
workflow(params = {"env": "dev"})
task("a", lambda ctx: None)
`})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "main.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Start(ctx, prog, flowscript.RunOptions{}); !flowscript.IsInputError(err) || !strings.Contains(err.Error(), `task handler "no.such.handler"`) {
		t.Fatalf("unknown handler: %v", err)
	}
	eng.RegisterHandler("no.such.handler", func(context.Context, *flowscript.TaskContext) (map[string]any, error) { return nil, nil })
	if _, err := eng.Start(ctx, prog, flowscript.RunOptions{}); !flowscript.IsInputError(err) || !strings.Contains(err.Error(), "secret NOT_SET_ANYWHERE_X is not set") {
		t.Fatalf("missing secret: %v", err)
	}
	ok, err := eng.LoadFile(ctx, filepath.Join(ws, "ok.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Start(ctx, ok, flowscript.RunOptions{Params: map[string]any{"evn": "x"}}); !flowscript.IsInputError(err) || !strings.Contains(err.Error(), `did you mean "env"`) {
		t.Fatalf("undeclared param: %v", err)
	}
	runs, err := eng.List(ctx, flowscript.ListFilter{})
	if err != nil || len(runs) != 0 {
		t.Fatalf("refused starts created runs: %v %v", runs, err)
	}
	if _, err := eng.Get(ctx, "nosuchrun"); !errors.Is(err, runtime.ErrUnknownRun) {
		t.Fatalf("unknown run: %v", err)
	}
}

func TestGoHandlers(t *testing.T) {
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	var mu sync.Mutex
	var seen []string
	eng.RegisterHandler("payments.charge", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		mu.Lock()
		seen = append(seen, tc.StepID)
		mu.Unlock()
		amount := tc.Inputs["amount"].(int64)
		return map[string]any{"charged": amount * 100}, nil
	})
	eng.RegisterHandler("boom", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		panic("handler bug")
	})
	ctx := context.Background()
	prog, err := eng.LoadString(ctx, "pay.star", `
c = task("charge", "payments.charge", inputs = {"amount": 5})
task("after", lambda ctx: {"got": ctx.inputs["c"]}, inputs = {"c": c.output["charged"]})
task("boom", "boom", optional = True)
`)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "succeeded" || !reflect.DeepEqual(stepByID(t, rec, "after").Output, map[string]any{"got": int64(500)}) {
		t.Fatalf("run %s, after = %#v", rec.Status, stepByID(t, rec, "after").Output)
	}
	if b := stepByID(t, rec, "boom"); !strings.Contains(deref(b.Error), "panicked: handler bug") {
		t.Fatalf("boom %+v", b)
	}
}

func TestScriptErrorsComeBackPositioned(t *testing.T) {
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	_, err := eng.LoadString(context.Background(), "bad.star", "task(\"a\", lambda ctx: None, after = [\"nope\"])\n")
	var list dag.ErrorList
	if !errors.As(err, &list) || !strings.HasPrefix(list[0].Error(), "bad.star:1:") {
		t.Fatalf("error %v", err)
	}
}

func TestResumeContinuesAfterClose(t *testing.T) {
	dbDir := t.TempDir()
	ws := writeWorkspace(t, map[string]string{"main.star": `
a = shell("a", "echo a >> ledger")
b = shell("b", "echo b >> ledger; if [ ! -f resumed ]; then sleep 30; fi", after = [a])
shell("c", "echo c >> ledger", after = [b])
`})
	ledger := filepath.Join(ws, "ledger")
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "main.star"), flowscript.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(ledger)
		if strings.Contains(string(data), "b") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("step b never started; ledger %q", data)
		}
		time.Sleep(10 * time.Millisecond)
	}
	eng.Close() // interrupts b: the run stays unfinished

	os.WriteFile(filepath.Join(ws, "resumed"), nil, 0o644)
	eng2 := openEngine(t, dbDir, flowscript.Options{})
	rec, err := eng2.Get(ctx, id)
	if err != nil || rec.Status != "running" {
		t.Fatalf("after close: %v %v", rec, err)
	}
	ids, err := eng2.Resume(ctx)
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("resume: %v %v", ids, err)
	}
	rec, err = eng2.Wait(ctx, id)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("after resume: %+v %v", rec, err)
	}
	data, _ := os.ReadFile(ledger)
	if string(data) != "a\nb\nb\nc\n" {
		t.Fatalf("ledger %q: a and c must run once, b twice", data)
	}
	if b := stepByID(t, rec, "b"); b.Attempt != 2 {
		t.Fatalf("b's attempt %d, want 2", b.Attempt)
	}
	if ids, _ := eng2.Unfinished(ctx); len(ids) != 0 {
		t.Fatalf("unfinished after the end: %v", ids)
	}
}

func writeFile(path, src string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(src), 0o644)
}

// assertNoSecretInDir fails the test for every file under dir that holds
// secret anywhere in its bytes.
func assertNoSecretInDir(t *testing.T, dir, secret string) {
	t.Helper()
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s contains the secret", p)
		}
		return nil
	})
}
