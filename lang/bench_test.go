package lang_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/lang"
)

// Declaring and validating a workflow is what validate, graph, register
// and every run start do first; these benchmarks keep it cheap.
//
//	go test -run '^$' -bench . -benchmem ./lang
//
// Targets: BenchmarkDeclare10kSteps under 100 ms and 100 MB allocated per
// op (the ms/op and MB/op metrics).

// declareSteps is the size of the generated workflow.
const declareSteps = 10_000

// BenchmarkDeclare10kSteps evaluates and validates (Load + Check) one
// generated workflow of 10,000 steps: chains and fan-ins through after=,
// implicit dependencies through references in inputs (nested in lists and
// dicts), string ids with conditions, shell steps with env, and Starlark
// bodies.
func BenchmarkDeclare10kSteps(b *testing.B) {
	src := genSteps(declareSteps)
	files := map[string][]byte{"main.star": []byte(src)}
	benchCheckValid(b, files, "main.star", declareSteps)
	benchLoadCheck(b, files, "main.star", declareSteps)
}

// BenchmarkDeclare10kStepsLoop declares the same 10,000 steps as
// BenchmarkDeclare10kSteps from a short script that loops, so that the
// difference between the two is the cost of parsing and compiling a 10,000
// line file.
func BenchmarkDeclare10kStepsLoop(b *testing.B) {
	files := map[string][]byte{"main.star": []byte(genStepsLoop(declareSteps))}
	benchCheckValid(b, files, "main.star", declareSteps)
	benchLoadCheck(b, files, "main.star", declareSteps)
}

// BenchmarkWorkspace100 loads a root workflow in a workspace of 100
// workflow files that name each other through sub_workflow, three levels
// deep (root, 9 children, 90 grandchildren, some shared), and checks it:
// every file is evaluated to index the names, every child resolved, inputs
// checked against params, cycles and depth searched. Each iteration uses a
// fresh workspace, so nothing is cached between them.
func BenchmarkWorkspace100(b *testing.B) {
	files := genWorkspace()
	if len(files) != 100+1 {
		b.Fatalf("generated %d workflow files, want 100", len(files)-1)
	}
	benchCheckValid(b, files, "root.star", -1)
	benchLoadCheck(b, files, "root.star", -1)
}

// benchLoadCheck measures Load + Check of root in a fresh in-memory
// workspace per iteration, reporting ms/op and MB/op (and steps/s when
// steps is known) besides ns/op, B/op and allocs/op.
func benchLoadCheck(b *testing.B, files map[string][]byte, root string, steps int) {
	ctx := context.Background()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	n := 0
	for b.Loop() {
		ws := lang.NewWorkspaceFiles(files, lang.Options{})
		prog, err := ws.Load(ctx, root)
		if err != nil {
			b.Fatal(err)
		}
		if errs := ws.Check(ctx, prog); len(errs) > 0 {
			b.Fatal(errs)
		}
		n++
	}
	runtime.ReadMemStats(&after)
	perOp := b.Elapsed().Seconds() / float64(n)
	b.ReportMetric(perOp*1e3, "ms/op")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(n)/1e6, "MB/op")
	if steps > 0 {
		b.ReportMetric(float64(steps)/perOp, "steps/s")
	}
}

// benchCheckValid makes sure the generated input is what it claims: a
// valid workflow (of the given number of steps, unless -1).
func benchCheckValid(b *testing.B, files map[string][]byte, root string, steps int) {
	b.Helper()
	ctx := context.Background()
	ws := lang.NewWorkspaceFiles(files, lang.Options{})
	prog, err := ws.Load(ctx, root)
	if err != nil {
		b.Fatalf("the generated workflow does not load: %v", err)
	}
	if errs := ws.Check(ctx, prog); len(errs) > 0 {
		b.Fatalf("the generated workflow is not valid:\n%v", errs)
	}
	if steps >= 0 && len(prog.Workflow.Steps) != steps {
		b.Fatalf("the generated workflow has %d steps, want %d", len(prog.Workflow.Steps), steps)
	}
}

// genSteps writes a script declaring n steps, one statement each, in
// groups of ten: a chain root, a short chain, a shell step reading the
// chain's output, nested references, env, a string id with a condition, a
// fan-in over the group, and a long edge back to an earlier group.
func genSteps(n int) string {
	var b strings.Builder
	b.WriteString(`workflow(name = "big", params = {"env": "staging", "n": 3}, secrets = ["TOKEN"])

def body(ctx):
    return {"v": ctx.inputs}

s = {}
`)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%d", i)
		prev := fmt.Sprintf("s%d", i-1)
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "s[%q] = task(%q, body, retries = 1)\n", id, id)
		case 1, 2:
			fmt.Fprintf(&b, "s[%q] = task(%q, \"handler\", after = [s[%q]])\n", id, id, prev)
		case 3:
			fmt.Fprintf(&b, "s[%q] = shell(%q, \"echo $INPUT_X\", inputs = {\"x\": s[%q].output[\"v\"]})\n", id, id, prev)
		case 4:
			fmt.Fprintf(&b, "s[%q] = task(%q, body, inputs = {\"l\": [s[%q].output, {\"k\": s[%q].output[\"a\"][0]}], \"env\": param(\"env\")})\n",
				id, id, prev, fmt.Sprintf("s%d", i-2))
		case 5:
			fmt.Fprintf(&b, "s[%q] = shell(%q, \"make\", env = {\"TOKEN\": secret(\"TOKEN\"), \"N\": param(\"n\")}, after = [s[%q].done], timeout = \"5m\")\n", id, id, prev)
		case 6:
			fmt.Fprintf(&b, "s[%q] = task(%q, \"handler\", after = [%q])\n", id, id, fmt.Sprintf("s%d.failed", i-1))
		case 7:
			fmt.Fprintf(&b, "s[%q] = task(%q, \"handler\", after = [s[%q], s[%q].done], optional = True)\n", id, id, prev, fmt.Sprintf("s%d", i-3))
		case 8:
			// a fan-in over the whole group
			var deps []string
			for j := i - 8; j < i; j++ {
				deps = append(deps, fmt.Sprintf("s[%q]", fmt.Sprintf("s%d", j)))
			}
			fmt.Fprintf(&b, "s[%q] = task(%q, \"handler\", after = [%s])\n", id, id, strings.Join(deps, ", "))
		case 9:
			// a long edge back to an earlier group, when there is one
			back := i - 1
			if i >= 50 {
				back = i - 50
			}
			fmt.Fprintf(&b, "s[%q] = task(%q, body, inputs = {\"far\": s[%q].output, \"near\": s[%q].output[\"v\"]})\n",
				id, id, fmt.Sprintf("s%d", back), prev)
		}
	}
	b.WriteString("output(last = s[\"s" + fmt.Sprint(n-1) + "\"].output)\n")
	return b.String()
}

// genStepsLoop writes a script that declares the steps genSteps writes
// out one by one (the same ids, kinds, dependencies and references) with a
// loop.
func genStepsLoop(n int) string {
	return fmt.Sprintf(`workflow(name = "big", params = {"env": "staging", "n": 3}, secrets = ["TOKEN"])

def body(ctx):
    return {"v": ctx.inputs}

s = {}
for i in range(%d):
    id, prev = "s%%d" %% i, "s%%d" %% (i - 1)
    k = i %% 10
    if k == 0:
        s[id] = task(id, body, retries = 1)
    elif k == 1 or k == 2:
        s[id] = task(id, "handler", after = [s[prev]])
    elif k == 3:
        s[id] = shell(id, "echo $INPUT_X", inputs = {"x": s[prev].output["v"]})
    elif k == 4:
        s[id] = task(id, body, inputs = {"l": [s[prev].output, {"k": s["s%%d" %% (i - 2)].output["a"][0]}], "env": param("env")})
    elif k == 5:
        s[id] = shell(id, "make", env = {"TOKEN": secret("TOKEN"), "N": param("n")}, after = [s[prev].done], timeout = "5m")
    elif k == 6:
        s[id] = task(id, "handler", after = ["s%%d.failed" %% (i - 1)])
    elif k == 7:
        s[id] = task(id, "handler", after = [s[prev], s["s%%d" %% (i - 3)].done], optional = True)
    elif k == 8:
        s[id] = task(id, "handler", after = [s["s%%d" %% j] for j in range(i - 8, i)])
    else:
        far = "s%%d" %% (i - 50 if i >= 50 else i - 1)
        s[id] = task(id, body, inputs = {"far": s[far].output, "near": s[prev].output["v"]})
output(last = s["s%%d" %% (%d - 1)].output)
`, n, n)
}

// genWorkspace writes 100 workflow files and the library they load:
// root.star runs the 9 children (flows/child-C.star, each naming itself
// with workflow(name=...)), and child C runs the 10 grandchildren
// lib/leaves/leaf-C-K.star (named by their file names) plus one of child
// C+1's, so leaves are shared and the graph is a DAG, not a tree. Depth:
// root 1, children 2, leaves 3.
func genWorkspace() map[string][]byte {
	files := map[string][]byte{}
	const children, leaves = 9, 10
	var root strings.Builder
	root.WriteString(`workflow(name = "root", params = {"env": "staging"})
prev = task("prepare", "handler")
`)
	for c := 0; c < children; c++ {
		fmt.Fprintf(&root, "prev = sub_workflow(\"child-%d\", id = \"c%d\", inputs = {\"env\": param(\"env\"), \"seed\": prev.output}, after = [prev])\n", c, c)
	}
	root.WriteString("task(\"report\", \"handler\", after = [prev.done])\n")
	files["root.star"] = []byte(root.String())

	for c := 0; c < children; c++ {
		var w strings.Builder
		fmt.Fprintf(&w, `load("../.lib/common.star", "prep")
workflow(name = "child-%d", params = {"env": "dev", "seed": None})
p = prep("setup")
`, c)
		for k := 0; k < leaves; k++ {
			fmt.Fprintf(&w, "sub_workflow(\"leaf-%d-%d\", id = \"l%d\", inputs = {\"x\": p.output[\"k\"], \"env\": param(\"env\")}, after = [p])\n", c, k, k)
		}
		fmt.Fprintf(&w, "sub_workflow(\"leaf-%d-0\", id = \"shared\", detach = True)\n", (c+1)%children)
		files[fmt.Sprintf("flows/child-%d.star", c)] = []byte(w.String())
		for k := 0; k < leaves; k++ {
			var l strings.Builder
			l.WriteString(`load("../../.lib/common.star", "prep")
workflow(params = {"x": 0, "env": "dev"})
a = prep("a")
b = shell("b", "echo $INPUT_X", inputs = {"x": param("x")}, after = [a])
task("c", "handler", inputs = {"b": b.output["stdout"]}, after = [b.done])
`)
			files[fmt.Sprintf("lib/leaves/leaf-%d-%d.star", c, k)] = []byte(l.String())
		}
	}
	// a helper library in a dot-directory, which is not a candidate
	// workflow file
	files[".lib/common.star"] = []byte(`def prep(id):
    return task(id, lambda ctx: {"k": 1}, retries = 1)
`)
	return files
}
