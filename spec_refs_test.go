package flowscript_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// references in inputs: s.output["k"]["j"], param(), nested in lists and
// dicts; each adds an implicit dependency; the step record keeps the
// resolved inputs.
func TestSpecNestedReferences(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
workflow(params = {"env": "dev", "n": 3, "tags": ["x", "y"]})

def produce(ctx):
    sleep("200ms")
    return {"k": {"j": "deep"}, "list": [10, 20, 30]}

a = task("a", produce)
b = task("b", lambda ctx: {"seen": ctx.inputs},
    inputs = {
        "deep": a.output["k"]["j"],
        "idx": a.output["list"][1],
        "neg": a.output["list"][-1],
        "l": [a.output["k"], param("env"), [param("n")]],
        "d": {"inner": {"p": param("tags"), "o": a.output["list"]}},
        "lit": "plain",
    })
`, "", flowscript.RunOptions{Params: map[string]any{"env": "prod"}})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	want := map[string]any{
		"deep": "deep", "idx": int64(20), "neg": int64(30),
		"l":   []any{map[string]any{"j": "deep"}, "prod", []any{int64(3)}},
		"d":   map[string]any{"inner": map[string]any{"p": []any{"x", "y"}, "o": []any{int64(10), int64(20), int64(30)}}},
		"lit": "plain",
	}
	b := stepByID(t, rec, "b")
	if got := b.Output.(map[string]any)["seen"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("ctx.inputs %#v\nwant %#v", got, want)
	}
	if !reflect.DeepEqual(b.Inputs, want) {
		t.Fatalf("record inputs %#v", b.Inputs)
	}
	a := stepByID(t, rec, "a")
	if b.StartedAt.Before(*a.EndedAt) {
		t.Fatalf("b started %v before a ended %v: the implicit dependency is missing", b.StartedAt, a.EndedAt)
	}
	// the record as JSON as well
	got, _ := eng.Get(context.Background(), rec.ID)
	if !reflect.DeepEqual(stepByID(t, got, "b").Inputs, want) {
		t.Fatalf("stored inputs %#v", stepByID(t, got, "b").Inputs)
	}
}

// secrets are masked as *** in inputs, outputs, errors, logs and history,
// including the run error and run output, and nested values.
func TestSpecSecretsMaskedEverywhere(t *testing.T) {
	const secret = "Zq9-very-secret-Value"
	dbDir := t.TempDir()
	eng := openEngine(t, dbDir, flowscript.Options{Secrets: map[string]string{"TOK": secret}})
	ws := t.TempDir()
	rec := specRun(t, eng, `
workflow(secrets = ["TOK"])

def leak(ctx):
    tok = ctx.secret("TOK")
    r = sh("echo out-$T; echo err-$T >&2", env = {"T": tok})
    print("print", tok)
    ctx.log("log", tok)
    return {"nested": {"l": [tok, "x" + tok + "y"]}, "sh": r.stdout}

a = task("leak", leak)
s = shell("sh", "echo $INPUT_T; echo $INPUT_D; echo $E >&2; exit 3", inputs = {"t": secret("TOK"), "d": {"k": [secret("TOK")]}}, env = {"E": secret("TOK")}, optional = True)
task("pass", lambda ctx: {"got": ctx.inputs["v"]}, inputs = {"v": a.output["nested"]})
task("boom", lambda ctx: fail("bad token " + ctx.secret("TOK")))
output(o = a.output["nested"])
`, ws, flowscript.RunOptions{})
	if rec.Status != "failed" {
		t.Fatalf("run %s", rec.Status)
	}
	check := func(what string, v any) {
		data, _ := json.Marshal(v)
		if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte("Zq9")) {
			t.Errorf("%s holds the secret: %s", what, data)
		}
	}
	check("run record", rec)
	got, err := eng.Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("stored run record", got)
	hist := auditHistory(t, eng, rec.ID)
	check("history", hist)
	logs, err := eng.Logs(context.Background(), rec.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	check("logs", logs)
	var all strings.Builder
	for _, l := range logs {
		all.WriteString(l.Text)
	}
	for _, want := range []string{"out-***", "err-***", "print ***", "log ***"} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, all.String())
		}
	}
	if !strings.Contains(deref(rec.Error), "bad token ***") {
		t.Errorf("run error %q", deref(rec.Error))
	}
	sh := stepByID(t, rec, "sh")
	if in := sh.Inputs.(map[string]any); in["t"] != "***" {
		t.Errorf("sh inputs %#v", sh.Inputs)
	}
	if out := sh.Output.(map[string]any); !strings.Contains(out["stdout"].(string), "***") || !strings.Contains(out["stderr"].(string), "***") {
		t.Errorf("sh output %#v", sh.Output)
	}
	eng.Close()
	assertNoSecretInDir(t, dbDir, secret)
}

// ctx members of §1: inputs, params, secret(), run_id, step_id, attempt
// (1-based), workflow, log(); json.encode/decode; time.now(); sleep().
func TestSpecCtxAndBodyBuiltins(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Secrets: map[string]string{"S": "sv"}})
	rec := specRun(t, eng, `
workflow(name = "ctxwf", params = {"p": 1}, secrets = ["S"])

def body(ctx):
    t0 = time.now()
    sleep("50ms")
    sleep(0.05)
    t1 = time.now()
    ctx.log("hello", 1, [2])
    enc = json.encode({"a": [1, 2]})
    dec = json.decode('{"x": [true, null, 1.5]}')
    return {
        "inputs": ctx.inputs, "params": ctx.params, "secret_len": len(ctx.secret("S")),
        "run_id": ctx.run_id, "step_id": ctx.step_id, "attempt": ctx.attempt,
        "workflow": ctx.workflow, "enc": enc, "dec": dec,
        "elapsed_ok": (t1 - t0) >= time.parse_duration("100ms"),
        "year": t1.year,
    }

task("b", body, inputs = {"i": "v"})
`, "", flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s %s", rec.Status, deref(rec.Error))
	}
	out := stepByID(t, rec, "b").Output.(map[string]any)
	want := map[string]any{
		"inputs": map[string]any{"i": "v"}, "params": map[string]any{"p": int64(1)}, "secret_len": int64(2),
		"run_id": rec.ID, "step_id": "b", "attempt": int64(1), "workflow": "ctxwf",
		"enc": `{"a":[1,2]}`, "dec": map[string]any{"x": []any{true, nil, 1.5}},
		"elapsed_ok": true, "year": int64(time.Now().Year()),
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("output %#v\nwant %#v", out, want)
	}
	logs, _ := eng.Logs(context.Background(), rec.ID, "b")
	if len(logs) == 0 || !strings.Contains(logs[0].Text, "hello 1 [2]") {
		t.Fatalf("logs %+v", logs)
	}
}

// sh(): struct(stdout, stderr, exit_code); check=True fails on non-zero,
// check=False returns the code; dir relative to the workspace; env.
func TestSpecShInBody(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ws := t.TempDir()
	os.Mkdir(filepath.Join(ws, "sub"), 0o755)
	rec := specRun(t, eng, `
def body(ctx):
    r = sh("printf 'o\n'; printf 'e\n' >&2; exit 5", check = False)
    d = sh("pwd", dir = "sub")
    e = sh("printf %s \"$FOO\"", env = {"FOO": "bar baz"})
    return {"out": r.stdout, "err": r.stderr, "code": r.exit_code, "pwd": d.stdout, "env": e.stdout}

task("b", body)
task("c", lambda ctx: sh("exit 3"), optional = True)
`, ws, flowscript.RunOptions{})
	out := stepByID(t, rec, "b").Output.(map[string]any)
	real, _ := filepath.EvalSymlinks(filepath.Join(ws, "sub"))
	want := map[string]any{"out": "o\n", "err": "e\n", "code": int64(5), "pwd": real + "\n", "env": "bar baz"}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("output %#v\nwant %#v", out, want)
	}
	c := stepByID(t, rec, "c")
	if c.Status != "failed" || !strings.Contains(deref(c.Error), "3") {
		t.Fatalf("c %s %q", c.Status, deref(c.Error))
	}
}

// shell steps: INPUT_<NAME> (strings raw, others JSON), dir relative to
// the workspace, env, output {stdout, stderr, exit_code} untrimmed on
// failure and success.
func TestSpecShellStepEnvAndOutput(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	ws := t.TempDir()
	os.MkdirAll(filepath.Join(ws, "a", "b"), 0o755)
	rec := specRun(t, eng, `
s = shell("s", """printf '[%s]\n' "$INPUT_STR" "$INPUT_NUM" "$INPUT_LIST" "$INPUT_DICT" "$INPUT_BOOL" "$INPUT_NONE" "$INPUT_FLOAT" "$MY_ENV" "$(pwd)"; printf '  err  \n\n' >&2""",
    inputs = {"str": "a b\n", "num": 42, "list": [1, "x"], "dict": {"k": 1}, "bool": True, "none": None, "float": 1.5},
    env = {"MY_ENV": "e v"}, dir = "a/b")
f = shell("f", "printf '  out  \n\n'; printf '  bad  \n\n' >&2; exit 9", optional = True)
`, ws, flowscript.RunOptions{})
	real, _ := filepath.EvalSymlinks(filepath.Join(ws, "a", "b"))
	s := stepByID(t, rec, "s").Output.(map[string]any)
	wantOut := "[a b\n]\n[42]\n[[1,\"x\"]]\n[{\"k\":1}]\n[true]\n[null]\n[1.5]\n[e v]\n[" + real + "]\n"
	if s["stdout"] != wantOut || s["stderr"] != "  err  \n\n" || s["exit_code"] != int64(0) {
		t.Fatalf("s output %#v\nwant stdout %q", s, wantOut)
	}
	f := stepByID(t, rec, "f")
	fo := f.Output.(map[string]any)
	if fo["stdout"] != "  out  \n\n" || fo["stderr"] != "  bad  \n\n" || fo["exit_code"] != int64(9) || f.Status != "failed" {
		t.Fatalf("f %s output %#v", f.Status, fo)
	}
}

// shell output is capped at 1 MiB per stream, the rest stays in the logs.
func TestSpecShellOutputCap(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
shell("big", "head -c 1500000 /dev/zero | tr '\\0' 'a'; exit 1", optional = True)
`, "", flowscript.RunOptions{})
	out := stepByID(t, rec, "big").Output.(map[string]any)
	n := len(out["stdout"].(string))
	if n > 1<<20 || n < 1<<19 {
		t.Fatalf("stdout kept %d bytes, want at most 1 MiB", n)
	}
	logs, _ := eng.Logs(context.Background(), rec.ID, "big")
	total := 0
	for _, l := range logs {
		total += strings.Count(l.Text, "a")
	}
	if total < 1500000 {
		t.Fatalf("logs hold %d of 1500000 bytes", total)
	}
}

// definition-time use of run-time builtins is an error saying so, with a
// position.
func TestSpecRunTimeBuiltinsAtDefinition(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	for _, src := range []string{"sh(\"echo\")\n", "sleep(\"1s\")\n", "x = time.now()\n", "http.get(\"http://x\")\n"} {
		_, err := eng.LoadString(context.Background(), "main.star", "task(\"a\", lambda ctx: None)\n"+src)
		if err == nil || !strings.Contains(err.Error(), "only available inside a step body") || !strings.Contains(err.Error(), "main.star:2:") {
			t.Errorf("%q: %v", src, err)
		}
	}
	_ = time.Now
}
