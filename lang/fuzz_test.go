package lang_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// fuzzLibMarker splits a fuzz input into two workspace files: what comes
// before the marker line is main.star, what follows is lib.star. main.star
// may load("lib.star", ...) and either may name the other as a child
// (sub_workflow("lib"), sub_workflow("main")), so loads, load cycles,
// children and workflow cycles are all within the fuzzer's reach.
const fuzzLibMarker = "\n#--- lib.star ---\n"

// fuzzMaxSteps keeps one input cheap: Starlark's step limit bounds time
// (not memory), and a fuzz input runs hundreds of times a second.
const fuzzMaxSteps = 200_000

// fuzzDeadline stops an input that the step limit does not (time spent in
// builtins, for example).
const fuzzDeadline = 2 * time.Second

// fuzzSlowLimit is how long one input may take when FLOWSCRIPT_FUZZ_SLOW=1,
// and fuzzAllocLimit how many bytes it may allocate when
// FLOWSCRIPT_FUZZ_ALLOC=1. Set them while fuzzing; in seed runs on a busy
// machine the timing would be flaky. The step limit bounds neither memory
// nor the time one step takes: "x" * 900000000 is a single step, which is
// why the allocation check has its own switch (it finds that within
// seconds, and a fuzzing session stops at its first failure).
const (
	fuzzSlowLimit  = time.Second
	fuzzAllocLimit = 256 << 20
)

// FuzzLoad feeds arbitrary scripts through what `flowscript validate` and
// `flowscript graph` do: Load, Check, and the renderers when the workflow
// is valid. It must never panic or hang, and every error must carry a
// position or be a clean one-line message.
//
//	go test ./lang -run FuzzLoad    # the seeds below and testdata/fuzz/FuzzLoad
//	FLOWSCRIPT_FUZZ_SLOW=1 go test ./lang -run '^$' -fuzz FuzzLoad -fuzztime 10m
//	FLOWSCRIPT_FUZZ_ALLOC=1 go test ./lang -run '^$' -fuzz FuzzLoad -fuzztime 10m
//	FLOWSCRIPT_FUZZ_LOG=/tmp/slow.txt go test ./lang -run '^$' -fuzz FuzzLoad -fuzztime 10m
func FuzzLoad(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	checkSlow := os.Getenv("FLOWSCRIPT_FUZZ_SLOW") == "1"
	checkAlloc := os.Getenv("FLOWSCRIPT_FUZZ_ALLOC") == "1"
	// FLOWSCRIPT_FUZZ_LOG=FILE records slow and heavy inputs in FILE
	// instead of failing on them, so that a session runs its full time
	// while a known blow-up is not fixed yet
	logFile := os.Getenv("FLOWSCRIPT_FUZZ_LOG")
	measure := checkSlow || checkAlloc || logFile != ""
	f.Fuzz(func(t *testing.T, input []byte) {
		if !measure {
			fuzzOne(t, input)
			return
		}
		allocs0 := fuzzAllocated()
		start := time.Now()
		fuzzOne(t, input)
		d, n := time.Since(start), fuzzAllocated()-allocs0
		if d <= fuzzSlowLimit && n <= fuzzAllocLimit {
			return
		}
		msg := fmt.Sprintf("one input took %v and allocated %d MB (limits %v, %d MB): %q", d, n>>20, fuzzSlowLimit, fuzzAllocLimit>>20, input)
		if logFile != "" {
			fuzzLog(t, logFile, msg)
		}
		if (checkSlow && d > fuzzSlowLimit) || (checkAlloc && n > fuzzAllocLimit) {
			t.Error(msg)
		}
	})
}

func fuzzLog(t *testing.T, file, msg string) {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintln(f, msg); err != nil {
		t.Fatal(err)
	}
}

// fuzzAllocated is the bytes this process has allocated so far. A fuzz
// worker runs one input at a time, so the difference around an input is
// that input's.
func fuzzAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func fuzzOne(t *testing.T, input []byte) {
	files := map[string][]byte{"main.star": input}
	if main, lib, ok := bytes.Cut(input, []byte(fuzzLibMarker)); ok {
		files = map[string][]byte{"main.star": main, "lib.star": lib}
	}
	ctx, cancel := context.WithTimeout(context.Background(), fuzzDeadline)
	defer cancel()
	ws := lang.NewWorkspaceFiles(files, lang.Options{MaxSteps: fuzzMaxSteps})

	prog, err := ws.Load(ctx, "main.star")
	if err != nil {
		var list dag.ErrorList
		if errors.As(err, &list) {
			if len(list) == 0 {
				t.Fatalf("Load returned an empty error list")
			}
			fuzzCheckErrors(t, "Load", list)
			return
		}
		fuzzCheckMessage(t, "Load", err.Error())
		return
	}
	if prog == nil || prog.Workflow == nil {
		t.Fatalf("Load returned neither a program nor an error")
	}

	errs := ws.Check(ctx, prog)
	fuzzCheckErrors(t, "Check", errs)
	if len(errs) > 0 {
		return
	}

	// A workflow that validates renders in every format, children nested
	// as graph --expand does; a renderer that fails here disagrees with
	// the validator.
	w := prog.Workflow
	expand := dag.RenderOptions{Expand: func(s *dag.Step, depth int) *dag.Workflow {
		if depth > w.EffectiveMaxDepth() {
			return nil
		}
		child, err := ws.Resolve(ctx, s.Child.Name, s.Child.Version)
		if err != nil {
			return nil
		}
		return child.Workflow
	}}
	for _, opts := range []dag.RenderOptions{{}, expand} {
		for _, format := range dag.Formats {
			var out bytes.Buffer
			if err := dag.RenderFormat(&out, w, format, opts); err != nil {
				t.Fatalf("render %s (expand=%v) of a workflow that validates: %v", format, opts.Expand != nil, err)
			}
			if format == "json" && !json.Valid(out.Bytes()) {
				t.Fatalf("render json (expand=%v) is not valid JSON:\n%s", opts.Expand != nil, out.Bytes())
			}
		}
	}
	if _, err := dag.TopoOrder(w); err != nil {
		t.Fatalf("TopoOrder of a workflow that validates: %v", err)
	}
}

// fuzzCheckErrors wants every script error to name file:line:col.
func fuzzCheckErrors(t *testing.T, what string, errs dag.ErrorList) {
	t.Helper()
	for _, e := range errs {
		if e == nil {
			t.Fatalf("%s: nil entry in the error list", what)
		}
		if e.Pos.File == "" || e.Pos.Line < 1 || e.Pos.Col < 1 {
			t.Errorf("%s: error without a position: %q (pos %+v)", what, e.Msg, e.Pos)
		}
		fuzzCheckMessage(t, what, e.Msg)
	}
}

// fuzzCheckMessage wants a message a user can read: not empty, and no
// sign of a Go panic or stack trace.
func fuzzCheckMessage(t *testing.T, what, msg string) {
	t.Helper()
	if strings.TrimSpace(msg) == "" {
		t.Errorf("%s: empty error message", what)
		return
	}
	for _, bad := range []string{"runtime error:", "goroutine ", "panic:", "nil pointer", "[recovered]"} {
		if strings.Contains(msg, bad) {
			t.Errorf("%s: error message looks like a Go failure (%q): %s", what, bad, msg)
		}
	}
}

// fuzzSeeds are representative scripts, valid and not: the examples, the
// SPEC's shapes, and the errors of SPEC §3. They run as ordinary tests.
var fuzzSeeds = []string{
	// examples/hello.star
	`def greet(ctx):
    return {"greeting": "hello, " + ctx.params["who"]}

workflow(name = "hello", params = {"who": "world"})

g = task("greet", greet)
shell("shout", "echo \"$INPUT_TEXT\" | tr a-z A-Z", inputs = {"text": g.output["greeting"]})
`,
	// examples/deploy-pipeline.star with its helper library
	`load("lib.star", "lint_steps")

workflow(
    name = "deploy-pipeline",
    params = {"env": "staging", "replicas": 2},
    secrets = ["DEPLOY_TOKEN"],
    timeout = "1h",
)

def build(ctx):
    r = sh("echo built")
    return {"artifact": "bin/app", "sha": r.stdout.strip()}

def rollback(ctx):
    ctx.log("rolling back", ctx.inputs)

def report(ctx):
    return {"deployed": ctx.inputs["url"] != None}

lint = lint_steps(["vet", "fmt"])
b = task("build", build, retries = 2, timeout = "5m", after = lint)
t = shell("test", "echo testing $INPUT_ARTIFACT", inputs = {"artifact": b.output["artifact"]})
task("rollback", rollback, after = [t.failed])
task("report", report, inputs = {"sha": b.output["sha"]}, after = [t.done])
output(sha = b.output["sha"])
` + fuzzLibMarker + `def lint_steps(names):
    return [shell("lint-" + n, "echo checking " + n) for n in names]
`,
	// examples/deploy-to-staging.star, a child with params and secrets
	`workflow(params = {"artifact": "", "env": "staging"}, secrets = ["DEPLOY_TOKEN"])

def deploy(ctx):
    return {"url": "https://%s.example.test/app" % ctx.params["env"]}

u = shell("upload", "echo uploading $INPUT_ARTIFACT", inputs = {"artifact": param("artifact")},
          env = {"TOKEN": secret("DEPLOY_TOKEN")})
task("release", deploy, after = [u])
`,
	// a parent and a child found by file name, with inputs and detach
	`workflow(name = "parent", params = {"env": "dev"}, max_depth = 2)
b = task("build", "build")
d = sub_workflow("lib", id = "deploy", inputs = {"artifact": b.output["artifact"], "env": param("env")})
sub_workflow("lib", id = "notify", after = [d.done], detach = True, priority = 5)
task("rollback", "rollback", after = [d.failed])
output(url = d.output["url"], run = d.child_run_id)
` + fuzzLibMarker + `workflow(params = {"artifact": "", "env": "staging"})
shell("upload", "echo $INPUT_ARTIFACT", inputs = {"artifact": param("artifact")})
`,
	// a script= child stays opaque; idempotency
	`workflow(params = {"src": "task('x', 'h')"})
a = task("a", "h")
sub_workflow("dyn", script = param("src"), idempotency_key = "k", idempotency_strategy = "fail", after = [a])
sub_workflow("dyn2", script = a.output["src"], idempotency_key = a.output["key"])
`,
	// top-level control flow: for, if, while, set, global reassignment
	`prev = None
n = 0
seen = set()
for i in range(20):
    if i % 3 == 0:
        prev = shell("s%d" % i, "echo %d" % i, after = [prev] if prev else [])
    else:
        prev = task("t%d" % i, "h", inputs = {"i": i, "up": prev.output}, after = [prev] if prev else [])
    seen.add(i)
while n < 5:
    n += 1
task("fan-in", "h", after = ["s0", "t1", "t2.done", "s3.failed"])
`,
	// lambdas, nested references, json and struct at definition time
	`cfg = json.decode('{"names": ["a", "b"], "retries": 1}')
s = struct(k = "v")
first = None
for name in cfg["names"]:
    first = task(name, lambda ctx: {"x": 1}, retries = cfg["retries"], retry_delay = "500ms", optional = True)
task("deep", "h", inputs = {"l": [first.output["a"][0], {"k": [first.output]}], "s": s.k, "m": math.floor(2.5)})
`,
	// SPEC §3: a step cycle, reported once
	`a = task("a", "h", after = ["c"])
b = task("b", "h", after = [a])
c = task("c", "h", after = [b])
`,
	// unknown after, duplicate ids, bad ids, bad durations, bad priority
	`task("x", "h", after = ["nope"])
task("x", "h")
task("bad id!", "h")
shell("s", "true", timeout = "soon", retry_delay = "-1s", retries = -1)
task("p", "h", priority = 100)
task("", "h")
`,
	// params and secrets: typos, undeclared, exposed
	`workflow(params = {"environment": "x"}, secrets = ["TOKEN", "TOKEN", "bad-name"])
task("t", "h", inputs = {"e": param("enviroment"), "s": secret("TOKN")})
sub_workflow("lib", inputs = {"tok": secret("TOKEN"), "artfact": 1})
output(leak = secret("TOKEN"))
` + fuzzLibMarker + `workflow(params = {"artifact": ""})
task("t", "h")
`,
	// a workflow cycle through the two files, and self-reference
	`workflow(name = "main")
sub_workflow("lib")
sub_workflow("main", id = "me")
` + fuzzLibMarker + `workflow(name = "lib")
sub_workflow("main")
`,
	// nesting too deep for max_depth
	`workflow(max_depth = 1)
sub_workflow("lib")
` + fuzzLibMarker + `sub_workflow("other")
`,
	// load: escapes, absolute paths, cycles, missing files
	`load("../outside.star", "f")
task("t", "h")
`,
	`load("/etc/passwd", "f")
task("t", "h")
`,
	`load("lib.star", "g")
task("t", "h")
` + fuzzLibMarker + `load("main.star", "x")
g = 1
`,
	`load("missing.star", "f")
load("lib.star", "nothere")
task("t", "h")
` + fuzzLibMarker + `workflow(name = "in-lib")
`,
	// run-time builtins at definition time, references misused
	`r = sh("ls")
task("t", "h")
`,
	`a = task("a", "h")
x = a.output + 1
y = a.output.field
task("b", "h", inputs = {"a": a}, after = [a.child_run_id])
`,
	// syntax and resolve errors, recursion, an endless loop
	`task("t", "h"
def f(:
`,
	`def f(n):
    return f(n - 1) if n else 0
f(3)
undefined_name()
task("t", "h")
`,
	`task("t", "h")
while True:
    pass
`,
	// workflow() misuse, output() twice, empty workflows
	`workflow(name = "a")
workflow(name = "b")
output(x = 1)
output(y = 2)
workflow("positional")
`,
	``,
	"# only a comment\n",
	"\xff\xfe\x00task(\"t\", \"h\")",
}
