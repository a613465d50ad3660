package flowscript_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

// §1: without output(), the output is {step_id: output} of every step that
// nothing depends on; the workflow name defaults to the file name.
func TestSpecDefaultOutput(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
a = task("a", lambda ctx: {"v": 1})
b = task("b", lambda ctx: {"w": ctx.inputs["x"]}, inputs = {"x": a.output["v"]})
c = task("c", lambda ctx: {"c": 1})
task("h", lambda ctx: None, after = [c.failed])
`, "", flowscript.RunOptions{})
	if rec.Workflow != "main" {
		t.Errorf("workflow name %q", rec.Workflow)
	}
	want := map[string]any{"b": map[string]any{"w": int64(1)}, "h": nil}
	if !reflect.DeepEqual(rec.Output, want) {
		t.Fatalf("output %#v, want %#v", rec.Output, want)
	}
}

// §1: definition builtins work in functions called from the top level and
// in loaded files; their steps join the workflow; workflow() in a loaded
// file is an error at its position.
func TestSpecDeclareFromFunctionsAndLoads(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"main.star": `
load("lib/steps.star", "make")
def local(n):
    return [task("l%d" % i, lambda ctx: {"i": 1}) for i in range(n)]
ls = local(2)
make("x", ls[1])
`,
		"lib/steps.star": `
def make(prefix, up):
    return shell(prefix + "-sh", "echo hi", after = [up])
`,
		"bad.star": `
load("lib/wf.star", "w")
task("a", lambda ctx: None)
`,
		"lib/wf.star": "workflow(name = \"nope\")\nw = 1\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	rec := runFile(t, eng, filepath.Join(ws, "main.star"), flowscript.RunOptions{})
	var ids []string
	for _, s := range rec.Steps {
		ids = append(ids, s.ID+":"+string(s.Status))
	}
	if strings.Join(ids, ",") != "l0:succeeded,l1:succeeded,x-sh:succeeded" {
		t.Fatalf("steps %v", ids)
	}
	_, err := eng.LoadFile(context.Background(), filepath.Join(ws, "bad.star"), flowscript.LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "wf.star:1:9") {
		t.Fatalf("workflow() in a loaded file: %v", err)
	}
}

// §1: declaring is bounded by an execution-step limit; past it, validation
// fails with a clear, positioned error.
func TestSpecDeclareStepLimit(t *testing.T) {
	eng := specEngine(t, flowscript.Options{MaxSteps: 100000})
	_, err := eng.LoadString(context.Background(), "main.star", "task(\"a\", lambda ctx: None)\nn = 0\nwhile True:\n    n += 1\n")
	if err == nil || !strings.Contains(err.Error(), "main.star:") || !strings.Contains(strings.ToLower(err.Error()), "step") {
		t.Fatalf("err %v", err)
	}
	t.Logf("%v", err)
	if !flowscript.IsInputError(err) {
		t.Errorf("not an input error: %T", err)
	}
	// a script under the limit is fine
	if _, err := eng.LoadString(context.Background(), "ok.star", "task(\"a\", lambda ctx: None)\nfor i in range(1000):\n    pass\n"); err != nil {
		t.Fatal(err)
	}
}
