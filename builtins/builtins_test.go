package builtins_test

import (
	"math/big"
	"reflect"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
)

var pos = dag.Pos{File: "main.star", Line: 3, Col: 5}

// declare runs src as a root script with the definition builtins and
// returns the builder and the evaluation error.
func declare(t *testing.T, src string) (*builtins.Builder, error) {
	t.Helper()
	b := builtins.NewBuilder("main.star")
	thread := &starlark.Thread{Name: "test"}
	builtins.SetBuilder(thread, b)
	predeclared := builtins.Definition()
	for k, v := range builtins.RunTimeBuiltins() {
		predeclared[k] = v
	}
	opts := &syntax.FileOptions{TopLevelControl: true, GlobalReassign: true, While: true, Set: true}
	_, err := starlark.ExecFileOptions(opts, thread, "main.star", src, predeclared)
	return b, err
}

func mustDeclare(t *testing.T, src string) *builtins.Builder {
	t.Helper()
	b, err := declare(t, src)
	if err != nil {
		t.Fatalf("evaluation failed: %v", err)
	}
	return b
}

// eval evaluates a Starlark expression with the definition builtins and a
// step value b (a task) and d (a sub_workflow) in scope.
func eval(t *testing.T, expr string) starlark.Value {
	t.Helper()
	b := builtins.NewBuilder("main.star")
	thread := &starlark.Thread{Name: "test"}
	builtins.SetBuilder(thread, b)
	env := builtins.Definition()
	env["b"] = &builtins.StepValue{ID: "b", Kind: dag.KindTask}
	env["d"] = &builtins.StepValue{ID: "d", Kind: dag.KindSubWorkflow}
	v, err := starlark.EvalOptions(&syntax.FileOptions{}, thread, "expr", expr, env)
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

func TestToData(t *testing.T) {
	list := starlark.NewList([]starlark.Value{starlark.MakeInt(1), starlark.String("x")})
	dict := starlark.NewDict(2)
	_ = dict.SetKey(starlark.String("k"), starlark.Tuple{starlark.True, starlark.None})
	_ = dict.SetKey(starlark.String("f"), starlark.Float(1.5))
	tests := []struct {
		in   starlark.Value
		want any
	}{
		{starlark.None, nil},
		{starlark.True, true},
		{starlark.MakeInt(-7), int64(-7)},
		{starlark.Float(0.25), 0.25},
		{starlark.String("s"), "s"},
		{list, []any{int64(1), "x"}},
		{dict, map[string]any{"k": []any{true, nil}, "f": 1.5}},
	}
	for _, tt := range tests {
		got, err := builtins.ToData(tt.in, pos, false)
		if err != nil {
			t.Errorf("ToData(%s): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ToData(%s) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestToDataRefs(t *testing.T) {
	ref := eval(t, `b.output["k"][0]`)
	if _, err := builtins.ToData(ref, pos, false); err == nil || !strings.Contains(err.Error(), "run-time reference and cannot be used here") {
		t.Errorf("a reference where none may be: %v", err)
	}
	got, err := builtins.ToData(ref, pos, true)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := got.(*dag.Ref)
	if !ok || r.String() != `b.output["k"][0]` || r.Pos != pos {
		t.Errorf("ToData(ref) = %#v; want b.output[\"k\"][0] taking the given position", got)
	}
	// a reference that knows its own position keeps it
	own := &builtins.RefValue{Ref: &dag.Ref{Kind: dag.RefParam, Name: "p", Pos: dag.Pos{File: "lib.star", Line: 1, Col: 1}}}
	got, _ = builtins.ToData(own, pos, true)
	if got.(*dag.Ref).Pos.File != "lib.star" {
		t.Errorf("a reference lost its position: %v", got.(*dag.Ref).Pos)
	}
	// and converting does not change the Starlark value's reference
	if own.Ref.Pos.File != "lib.star" || ref.(*builtins.RefValue).Ref.Pos.File != "" {
		t.Error("ToData changed the reference it converted")
	}
}

func TestToDataErrors(t *testing.T) {
	tests := []struct {
		expr string
		want string
	}{
		{`{"a": {"b": [1, b]}}`, `["a"]["b"][1]: got the step "b" itself; to pass its result write b.output (or b.output["key"])`},
		{`[b.failed]`, `[0]: got the condition b.failed, which only after= takes; to pass the step's result write b.output`},
		{`{1: 2}`, `dict keys must be strings, got int 1`},
		{`[len]`, `[0]: a value of type builtin_function_or_method cannot be stored (use None, bools, numbers, strings, lists and dicts)`},
		{`1 << 70`, `integer 1180591620717411303424 is too large`},
	}
	for _, tt := range tests {
		_, err := builtins.ToData(eval(t, tt.expr), pos, true)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ToData(%s) error = %v\nwant %s", tt.expr, err, tt.want)
		}
	}
}

func TestFromData(t *testing.T) {
	in := map[string]any{
		"i": 3, "i64": int64(4), "f": 2.5,
		"s": "x", "n": nil, "b": true, "l": []any{"a", map[string]any{"k": []any{}}},
	}
	v, err := builtins.FromData(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"b": True, "f": 2.5, "i": 3, "i64": 4, "l": ["a", {"k": []}], "n": None, "s": "x"}`
	if v.String() != want {
		t.Errorf("FromData = %s\nwant      %s", v, want)
	}
	if bv, err := builtins.FromData(new(big.Int).Lsh(big.NewInt(1), 70)); err != nil || bv.String() != "1180591620717411303424" {
		t.Errorf("FromData(big) = %v, %v", bv, err)
	}
	// what has no references round-trips through ToData
	back, err := builtins.ToData(v, pos, false)
	if err != nil {
		t.Fatal(err)
	}
	if back.(map[string]any)["l"].([]any)[0] != "a" || back.(map[string]any)["i"] != int64(3) {
		t.Errorf("round trip = %#v", back)
	}
	r := &dag.Ref{Kind: dag.RefParam, Name: "p"}
	if rv, err := builtins.FromData(r); err != nil || rv.(*builtins.RefValue).Ref != r {
		t.Errorf("FromData(ref) = %v, %v", rv, err)
	}
	if _, err := builtins.FromData(struct{}{}); err == nil {
		t.Error("FromData(struct{}{}): want an error")
	}
}

func TestStepValueAttrs(t *testing.T) {
	for expr, want := range map[string]string{
		`b.id`:                     `"b"`,
		`b.output`:                 `<ref b.output>`,
		`b.output["k"][0]`:         `<ref b.output["k"][0]>`,
		`b.succeeded`:              `<b.succeeded>`,
		`b.failed`:                 `<b.failed>`,
		`b.done`:                   `<b.done>`,
		`d.child_run_id`:           `<ref d.child_run_id>`,
		`param("cfg")["zones"][1]`: `<ref param("cfg")["zones"][1]>`,
		`secret("TOKEN")`:          `<ref secret("TOKEN")>`,
		`sorted(dir(b))`:           `["child_run_id", "done", "failed", "id", "output", "succeeded"]`,
	} {
		if got := eval(t, expr).String(); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
}

func TestValueErrors(t *testing.T) {
	tests := map[string]string{
		`b.child_run_id`:      `step "b" is a task step: only sub_workflow steps have .child_run_id`,
		`b.output.url`:        `b.output is a reference resolved at run time: write ["url"] to reach a field, not .url`,
		`secret("T")["x"]`:    `secret("T") cannot be indexed`,
		`b.output[1.5]`:       `b.output: index must be a string or an int, not float`,
		`param("n") + 1`:      `param("n") is only known at run time and cannot be used with + while the workflow is declared`,
		`{b.output: 1}`:       `unhashable`,
		`b.nope`:              `step has no .nope field or method`,
		`"x" in b.output`:     "b.output is only known at run time: `in` cannot look inside it",
		`"x" not in b.output`: "b.output is only known at run time: `in` cannot look inside it",
		`param("n") == "dev"`: ``, // equality of references is identity: False, no error
	}
	for expr, want := range tests {
		b := builtins.NewBuilder("main.star")
		thread := &starlark.Thread{}
		builtins.SetBuilder(thread, b)
		env := builtins.Definition()
		env["b"] = &builtins.StepValue{ID: "b", Kind: dag.KindTask}
		_, err := starlark.EvalOptions(&syntax.FileOptions{}, thread, "expr", expr, env)
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", expr, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: error %v, want one containing %q", expr, err, want)
		}
	}
}

func TestDeclareSteps(t *testing.T) {
	b := mustDeclare(t, `
workflow(name = "w", params = {"env": "dev"}, secrets = ["TOKEN"], timeout = "1h", max_depth = 4)
def build(ctx, retries = 2):
    pass
x = task("build", build, retries = 1, retry_delay = "2s", timeout = "5m", optional = True, priority = 3)
s = shell("sh", "make", env = {"T": secret("TOKEN")}, dir = "sub", inputs = {"a": x.output["k"]}, after = "build.done")
c = sub_workflow("child", id = "c", version = 2, detach = True, after = [x.failed, s],
                 idempotency_key = param("env"), idempotency_strategy = "fail_on_running",
                 priority = param("env"), inputs = {"l": [x.output]})
output(r = c.child_run_id)
`)
	if len(b.Errors) > 0 {
		t.Fatalf("errors: %s", b.Errors)
	}
	w := b.Workflow
	if w.Name != "w" || w.MaxDepth != 4 || w.Timeout.String() != "1h0m0s" || w.Param("env") == nil || !w.HasSecret("TOKEN") {
		t.Errorf("workflow = %+v", w)
	}
	if len(w.Steps) != 3 {
		t.Fatalf("steps = %d", len(w.Steps))
	}
	task, sh, sub := w.Steps[0], w.Steps[1], w.Steps[2]
	if task.Body != "build" || task.Retries != 1 || task.RetryDelay.String() != "2s" || task.Timeout.String() != "5m0s" || !task.Optional || task.Priority != int64(3) {
		t.Errorf("task = %+v", task)
	}
	if b.Bodies["build"] == nil {
		t.Error("the task body was not kept")
	}
	if sh.Dir != "sub" || sh.RetryDelay.String() != "1s" || !reflect.DeepEqual(sh.After, []dag.Dep{{Step: "build", Cond: dag.Done, Pos: sh.Pos}}) {
		t.Errorf("shell = %+v", sh)
	}
	if got := fmtDeps(sub.Deps()); got != "build.failed sh" {
		t.Errorf("sub_workflow deps = %s", got)
	}
	ch := sub.Child
	if ch.Name != "child" || ch.Version != 2 || !ch.Detach || ch.IdempotencyStrategy != "fail_on_running" || !ch.Static() {
		t.Errorf("child = %+v", ch)
	}
	// a param reference is positioned where param() was called
	if r, ok := ch.IdempotencyKey.(*dag.Ref); !ok || r.Pos != (dag.Pos{File: "main.star", Line: 8, Col: 41}) {
		t.Errorf("idempotency key = %#v", ch.IdempotencyKey)
	}
	// an output reference, where the step that uses it was declared
	if r := sub.Inputs["l"].([]any)[0].(*dag.Ref); r.Pos != sub.Pos {
		t.Errorf("output reference at %v, want %v", r.Pos, sub.Pos)
	}
	if sub.Pos != (dag.Pos{File: "main.star", Line: 7, Col: 17}) {
		t.Errorf("sub_workflow position = %v", sub.Pos)
	}
	if got := dag.FormatValue(w.Output); got != `{"r": c.child_run_id}` {
		t.Errorf("output = %s", got)
	}
}

func fmtDeps(deps []dag.Dep) string {
	parts := make([]string, len(deps))
	for i, d := range deps {
		parts[i] = d.String()
	}
	return strings.Join(parts, " ")
}

func TestDuplicateTaskKeepsFirstBody(t *testing.T) {
	b := mustDeclare(t, `
def first(ctx):
    pass
def second(ctx):
    pass
task("x", first)
task("x", second)
`)
	if len(b.Errors) != 1 || !strings.Contains(b.Errors[0].Msg, `duplicate step id "x"`) {
		t.Errorf("errors = %v", b.Errors)
	}
	if fn, ok := b.Bodies["x"].(*starlark.Function); !ok || fn.Name() != "first" {
		t.Errorf("body of x = %v, want first", b.Bodies["x"])
	}
	if len(b.Workflow.Steps) != 1 {
		t.Errorf("steps = %d, want the first only", len(b.Workflow.Steps))
	}
}

func TestTaskBodyArity(t *testing.T) {
	tests := map[string]string{
		"def f(ctx):\n    pass":                      "",
		"def f(ctx, retries = 3):\n    pass":         "",
		"def f(ctx, *args, **kwargs):\n    pass":     "",
		"def f(*args):\n    pass":                    "",
		"def f(ctx, *, verbose = True):\n    pass":   "",
		"def f(ctx, extra):\n    pass":               "it requires 2",
		"def f():\n    pass":                         "it takes none",
		"def f(**kwargs):\n    pass":                 "it takes none",
		"def f(ctx, *, level):\n    pass":            "its keyword-only parameter level has no default",
		"def f(a, b = 1, *args, c, **kw):\n    pass": "its keyword-only parameter c has no default",
	}
	for def_, want := range tests {
		b := mustDeclare(t, def_+"\ntask(\"t\", f)\n")
		var got string
		if len(b.Errors) > 0 {
			got = b.Errors[0].Msg
		}
		if want == "" && got != "" || want != "" && !strings.HasSuffix(got, "("+want+")") {
			t.Errorf("%q: error %q, want %q", def_, got, want)
		}
	}
}

func TestDefinitionErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string // the first recorded error, or the evaluation error
	}{
		{`task("a", "h", retry_delay = "0s")`, `task: retry_delay must be more than zero, got "0s"`},
		{`task("a", "h", timeout = "1 hour")`, `task: timeout: "1 hour" is not a duration`},
		{`task("a", "h", after = ["x.finished"])`, `task: after: "x.finished": a condition is .succeeded, .failed or .done, not .finished`},
		{`task("a", "h", after = [1])`, `task: after: want steps, conditions such as s.failed, or step ids, got int`},
		{`task("a", "h", inputs = [1])`, `task: inputs must be a dict, got list`},
		{`task("a", "")`, `task: body is an empty handler name`},
		{`workflow(secrets = "TOKEN")`, `workflow: secrets: want a list of strings, got string`},
		{`workflow("x")`, `workflow: takes keyword arguments only`},
		{`output(1)`, `output: takes keyword arguments only`},
		{`output(x = {"k": [print]})`, `output: x["k"][0]: a value of type builtin_function_or_method cannot be stored`},
		{`sub_workflow("c", idempotency_key = secret("T"))`, `sub_workflow: idempotency_key cannot be a secret`},
		{`sub_workflow("c", priority = secret("T"))`, `sub_workflow: priority cannot be a secret`},
		{`sub_workflow("c", script = 1)`, `sub_workflow: script must be Starlark source`},
		{`sub_workflow("", id = "x")`, `sub_workflow: the workflow name is empty`},
		{`sub_workflow("c", version = -1)`, `sub_workflow: version must be 0 (the latest) or more, got -1`},
		{`shell("s", "true", env = {"A B": "1"})`, `shell: env name "A B" is not a valid environment variable name`},
		{`shell("s", "true", dir = "../x")`, `shell: dir "../x" must be a path inside the workspace`},
		{`sh("ls")`, `sh() is only available inside a step body`},
		{`http.post("u")`, `http.post() is only available inside a step body`},
	}
	for _, tt := range tests {
		b, err := declare(t, tt.src)
		got := ""
		switch {
		case err != nil:
			got = err.Error()
		case len(b.Errors) > 0:
			got = b.Errors[0].Msg
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.src, got, tt.want)
		}
	}
}

func TestWorkflowInLoadedFileDeclaresNothing(t *testing.T) {
	b := builtins.NewBuilder("main.star")
	thread := &starlark.Thread{Name: "test"}
	builtins.SetBuilder(thread, b)
	thread.Load = func(thread *starlark.Thread, module string) (starlark.StringDict, error) {
		return starlark.ExecFileOptions(&syntax.FileOptions{}, thread, module, "workflow(name = \"lib\")\nx = 1\n", builtins.Definition())
	}
	_, err := starlark.ExecFileOptions(&syntax.FileOptions{}, thread, "main.star",
		"load(\"lib.star\", \"x\")\nworkflow(name = \"root\")\ntask(\"a\", \"h\")\n", builtins.Definition())
	if err != nil {
		t.Fatal(err)
	}
	if got := messages(b.Errors); !reflect.DeepEqual(got, []string{"lib.star:1:9: workflow() may only be called in the root file main.star, not in a loaded file"}) {
		t.Errorf("errors = %q", got)
	}
	if b.Workflow.Name != "root" || !b.WorkflowDeclared() {
		t.Errorf("name = %q, declared = %v; want the root's workflow()", b.Workflow.Name, b.WorkflowDeclared())
	}
}

func TestNoBuilder(t *testing.T) {
	thread := &starlark.Thread{}
	_, err := starlark.Call(thread, builtins.Definition()["task"], starlark.Tuple{starlark.String("a"), starlark.String("h")}, nil)
	if err == nil || !strings.Contains(err.Error(), "workflows can only be declared while a script is evaluated") {
		t.Errorf("task without a builder: %v", err)
	}
}

func messages(errs dag.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}
