package flowscript_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/hashicorp/go-hclog"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/flowscript/flowscript"
)

const helloStar = `
workflow(name = "hello", params = {"who": "world"})

def greet(ctx):
    return {"text": "hello, " + ctx.params["who"]}

g = task("greet", greet)
s = shell("shout", "echo $INPUT_TEXT | tr a-z A-Z", inputs = {"text": g.output["text"]})
output(loud = s.output["stdout"])
`

// An engine in memory runs a workflow held in a string, with the host's
// logger.
func Example() {
	ctx := context.Background()
	logger := hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: os.Stderr})
	eng, err := flowscript.OpenInMemory(flowscript.Options{Logger: logger})
	if err != nil {
		panic(err)
	}
	defer eng.Close()
	prog, err := eng.Load(ctx, flowscript.Script("hello.star", helloStar), flowscript.LoadOptions{})
	if err != nil {
		panic(err)
	}
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{Params: map[string]any{"who": "gopher"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Workflow, rec.Status)
	fmt.Printf("%q\n", rec.Output.(map[string]any)["loud"])
	for _, s := range rec.Steps {
		fmt.Println(s.ID, s.Kind, s.Status, s.Attempt)
	}
	// Output:
	// hello succeeded
	// "HELLO, GOPHER\n"
	// greet task succeeded 1
	// shout shell succeeded 1
}

// Load needs no engine: it evaluates and validates a script.
func ExampleLoad() {
	prog, err := flowscript.Load(context.Background(), flowscript.Script("hello.star", helloStar), flowscript.LoadOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(prog.Name(), prog.Steps(), prog.Params())
	prog.WriteGraph(os.Stdout, "mermaid", flowscript.GraphOptions{})
	// Output:
	// hello [greet shout] map[who:world]
	// flowchart LR
	//   s_greet["greet<br/>task"]
	//   s_shout["shout<br/>shell"]
	//   s_greet -.-> s_shout
}

// Validate reports every problem with its file:line:col.
func ExampleValidate() {
	src := `
a = task("a", lambda ctx: None)
task("b", lambda ctx: None, after = ["a", "c"])
task("a", lambda ctx: None)
`
	err := flowscript.Validate(context.Background(), flowscript.Script("bad.star", src), flowscript.LoadOptions{})
	fmt.Println(errors.Is(err, flowscript.ErrInput))
	var se *flowscript.ScriptErrors
	if errors.As(err, &se) {
		for _, e := range se.List {
			fmt.Println(e)
		}
	}
	// Output:
	// true
	// bad.star:3:5: after: unknown step "c" (did you mean "a"?)
	// bad.star:4:5: duplicate step id "a" (first declared at bad.star:2:9)
}

// A workspace in an fs.FS (here a MapFS; an embed.FS works the same):
// children are found by name among its files.
func ExampleFS() {
	fsys := fstest.MapFS{
		"main.star": {Data: []byte(`d = sub_workflow("deploy", inputs = {"env": "prod"})` + "\n" + `output(url = d.output["url"])` + "\n")},
		"deploy.star": {Data: []byte(`workflow(name = "deploy", params = {"env": ""})
def up(ctx):
    return {"url": "https://%s.example.test" % ctx.params["env"]}
u = task("up", up)
output(url = u.output["url"])
`)},
	}
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	prog, err := eng.Load(ctx, flowscript.FS(fsys, "main.star"), flowscript.LoadOptions{})
	if err != nil {
		panic(err)
	}
	rec, _ := eng.Run(ctx, prog, flowscript.RunOptions{})
	fmt.Println(rec.Status, rec.Output)
	tree, _ := eng.Tree(ctx, rec.ID)
	fmt.Println(tree.Run.Workflow, "->", tree.Children[0].Run.Workflow, tree.Children[0].Run.Depth)
	// Output:
	// succeeded map[url:https://prod.example.test]
	// main -> deploy 2
}

// A task whose body is a string runs a Go handler of the host.
func ExampleEngine_RegisterHandler() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	eng.RegisterHandler("payments.charge", func(ctx context.Context, t *flowscript.TaskContext) (map[string]any, error) {
		fmt.Fprintf(t.Log, "charging %v\n", t.Inputs["cents"])
		if t.Inputs["cents"].(int64) > 10000 {
			return nil, errors.New("card declined")
		}
		return map[string]any{"charge_id": "ch_1"}, nil
	})
	prog, _ := eng.Load(ctx, flowscript.Script("pay.star", `
workflow(params = {"cents": 500})
task("charge", "payments.charge", inputs = {"cents": param("cents")})
`), flowscript.LoadOptions{})
	rec, _ := eng.Run(ctx, prog, flowscript.RunOptions{})
	fmt.Println(rec.Status, rec.Steps[0].Output)
	rec, _ = eng.Run(ctx, prog, flowscript.RunOptions{Params: map[string]any{"cents": 50000}})
	fmt.Println(rec.Status, *rec.Error)
	logs, _ := eng.Logs(ctx, rec.ID, "charge")
	fmt.Print(logs[0].Text)
	// Output:
	// succeeded map[charge_id:ch_1]
	// failed charge: card declined
	// charging 50000
}

// Host modules are Starlark values scripts see by name, when they declare
// and in step bodies.
func ExampleEngine_RegisterModule() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	eng.RegisterModule("regions", &starlarkstruct.Module{Name: "regions", Members: starlark.StringDict{
		"all": starlark.NewList([]starlark.Value{starlark.String("eu"), starlark.String("us")}),
	}})
	prog, err := eng.Load(ctx, flowscript.Script("fan.star", `
for r in regions.all:
    shell("deploy-" + r, "echo deploying to " + r)
`), flowscript.LoadOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(prog.Steps())
	// Output:
	// [deploy-eu deploy-us]
}

// Subscribe gives a run tree's events, the same as History: first those
// already committed, then the live ones.
func ExampleEngine_Subscribe() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	prog, _ := eng.Load(ctx, flowscript.Script("two.star", `
a = task("a", lambda ctx: {"n": 1})
task("b", lambda ctx: {"n": ctx.inputs["n"] + 1}, inputs = {"n": a.output["n"]})
`), flowscript.LoadOptions{})
	id, _ := eng.Start(ctx, prog, flowscript.RunOptions{})
	sub, err := eng.Subscribe(ctx, id)
	if err != nil {
		panic(err)
	}
	for ev := range sub.Events() {
		fmt.Println(strings.Join(strings.Fields(fmt.Sprint(ev.Seq, " ", ev.Run.Workflow, " ", ev.Type, " ", ev.Step, " ", ev.Status)), " "))
	}
	// Output:
	// 1 two run_started
	// 2 two step_started a
	// 3 two step_ended a succeeded
	// 4 two step_started b
	// 5 two step_ended b succeeded
	// 6 two run_ended succeeded
}

// Secrets come from a SecretSource (a vault client, say); their values are
// masked wherever they would leave the engine.
func ExampleSecretSource() {
	ctx := context.Background()
	vault := flowscript.SecretMap{"API_TOKEN": "s3cr3t"}
	eng, _ := flowscript.OpenInMemory(flowscript.Options{SecretSource: vault})
	defer eng.Close()
	prog, _ := eng.Load(ctx, flowscript.Script("call.star", `
workflow(secrets = ["API_TOKEN"])
shell("call", "echo token is $TOKEN", env = {"TOKEN": secret("API_TOKEN")})
`), flowscript.LoadOptions{})
	rec, _ := eng.Run(ctx, prog, flowscript.RunOptions{})
	fmt.Print(rec.Steps[0].Output.(map[string]any)["stdout"])
	// Output:
	// token is ***
}

// An idempotency key binds a run: starting again with the key returns the
// same run, or is refused.
func ExampleIdempotencyStrategy() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	prog, _ := eng.Load(ctx, flowscript.Script("once.star", `task("t", lambda ctx: None)`), flowscript.LoadOptions{})
	first, _ := eng.Start(ctx, prog, flowscript.RunOptions{IdempotencyKey: "order-7"})
	again, _ := eng.Start(ctx, prog, flowscript.RunOptions{IdempotencyKey: "order-7", IdempotencyStrategy: flowscript.ReturnExisting})
	fmt.Println(first == again)
	_, err := eng.Start(ctx, prog, flowscript.RunOptions{IdempotencyKey: "order-7", IdempotencyStrategy: flowscript.FailExisting})
	fmt.Println(errors.Is(err, flowscript.ErrInput))
	// Output:
	// true
	// true
}

// Rerun resets a step of a finished run and what follows it, keeping the
// outputs upstream, and runs the run again in place.
func ExampleEngine_Rerun() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	prog, _ := eng.Load(ctx, flowscript.Script("flaky.star", `
def flaky(ctx):
    if ctx.attempt == 1:
        fail("the service was down")
    return {"ok": True}

task("fetch", lambda ctx: {"rows": 3})
task("upload", flaky, after = ["fetch"])
`), flowscript.LoadOptions{})
	rec, _ := eng.Run(ctx, prog, flowscript.RunOptions{})
	fmt.Println(rec.Status)
	plan, err := eng.Rerun(ctx, rec.ID, "upload", flowscript.RerunOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Println(plan.Runs[0].Steps)
	rec, _ = eng.Wait(ctx, plan.Root)
	fmt.Println(rec.Status, rec.Step("fetch").Attempt, rec.Step("upload").Attempt)
	// Output:
	// failed
	// [upload]
	// succeeded 1 2
}

// Cancel stops a run and its children; what was running is stopped.
func ExampleEngine_Cancel() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	prog, _ := eng.Load(ctx, flowscript.Script("slow.star", `shell("wait", "sleep 60")`), flowscript.LoadOptions{})
	id, _ := eng.Start(ctx, prog, flowscript.RunOptions{})
	if _, err := eng.Cancel(ctx, id); err != nil {
		panic(err)
	}
	rec, _ := eng.Wait(ctx, id)
	fmt.Println(rec.Status, rec.Steps[0].Status)
	_, err := eng.Cancel(ctx, id)
	fmt.Println(errors.Is(err, flowscript.ErrAlreadyEnded))
	// Output:
	// cancelled cancelled
	// true
}

// List, Get and History read what is stored.
func ExampleEngine_List() {
	ctx := context.Background()
	eng, _ := flowscript.OpenInMemory(flowscript.Options{})
	defer eng.Close()
	prog, _ := eng.Load(ctx, flowscript.Script("hello.star", helloStar), flowscript.LoadOptions{})
	eng.Run(ctx, prog, flowscript.RunOptions{})
	runs, _ := eng.List(ctx, flowscript.ListFilter{Status: flowscript.RunSucceeded})
	for _, r := range runs {
		fmt.Println(r.Workflow, r.Version, r.Status, r.Depth, r.Steps == nil)
	}
	_, err := eng.Get(ctx, "nosuchrun")
	fmt.Println(errors.Is(err, flowscript.ErrUnknownRun), errors.Is(err, flowscript.ErrInput))
	// Output:
	// hello 1 succeeded 1 true
	// true true
}

// Serve lets the flowscript command of other processes reach the runs of
// this program: `flowscript show --db DIR RUN` is answered here while the
// program holds DIR (examples/embed shows it end to end).
func ExampleEngine_Serve() {
	dir, _ := os.MkdirTemp("", "flowscript-serve")
	defer os.RemoveAll(dir)
	eng, err := flowscript.Open(filepath.Join(dir, "db"), flowscript.Options{})
	if err != nil {
		panic(err)
	}
	if err := eng.Serve(flowscript.ServeOptions{}); err != nil {
		panic(err)
	}
	_, err = os.Stat(filepath.Join(dir, "db", "flowscript.sock"))
	fmt.Println("socket bound:", err == nil)
	eng.Close()
	_, err = os.Stat(filepath.Join(dir, "db", "flowscript.sock"))
	fmt.Println("socket gone after Close:", os.IsNotExist(err))
	// Output:
	// socket bound: true
	// socket gone after Close: true
}

// RunTests runs workflow test scripts, with stubbed tasks and children,
// against golden files (`flowscript test`).
func ExampleRunTests() {
	dir, _ := os.MkdirTemp("", "flowscript-tests")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "pay.star"), []byte(`
c = task("charge", "payments.charge")
sub_workflow("receipt", inputs = {"charge": c.output["id"]})
`), 0o644)
	os.WriteFile(filepath.Join(dir, "pay_test.star"), []byte(`
def test_paid(t):
    r = t.run("pay.star", stub_tasks = {"charge": {"id": "ch_1"}},
              stub_workflows = {"receipt": {"sent": True}})
    t.eq(r.status, "succeeded")
    t.eq(r.steps["receipt"].output, {"sent": True})

def test_declined(t):
    r = t.run("pay.star", stub_tasks = {"charge": t.failure("declined")},
              stub_workflows = {"receipt": None})
    t.eq(r.status, "succeeded")
`), 0o644)
	var out strings.Builder
	rep, err := flowscript.RunTests(context.Background(), []string{filepath.Join(dir, "pay_test.star")}, flowscript.TestOptions{Out: &out})
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Passed, rep.Failed)
	for _, r := range rep.Results {
		fmt.Println(strings.TrimSpace(fmt.Sprintln(r.Name, r.Passed, strings.TrimPrefix(r.Message, dir+"/"))))
	}
	// Output:
	// 1 1
	// test_paid true
	// test_declined false pay_test.star:11:9: got "failed", want "succeeded"
}

// A Session declares a workflow one chunk at a time, as `flowscript repl`
// does.
func ExampleNewSession() {
	var out strings.Builder
	sess := flowscript.NewSession(flowscript.SessionOptions{Out: &out})
	defer sess.Close()
	ctx := context.Background()
	for _, chunk := range []string{
		`b = task("build", lambda ctx: {"bin": "app"})`,
		`shell("test", "echo ok", after = [b])`,
		`b.id`,
		`graph()`,
	} {
		v, err := sess.Exec(ctx, chunk)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(v)
	}
	_, err := sess.Exec(ctx, `task("build", lambda ctx: None)`)
	fmt.Println("error:", err)
	fmt.Print(out.String())
	// Output:
	// None
	// <step test>
	// "build"
	// None
	// error: repl.star:3:5: duplicate step id "build" (first declared at repl.star:1:9)
	// workflow repl
	//   steps:
	//     build: task lambda()
	//     test: shell "echo ok"
	//       after: build
}

// WriteGraph draws the DAG; Expand nests each child's inside its step.
func ExampleProgram_WriteGraph() {
	fsys := fstest.MapFS{
		"root.star":  {Data: []byte(`sub_workflow("child", id = "c")` + "\n")},
		"child.star": {Data: []byte(`shell("hi", "echo hi")` + "\n")},
	}
	prog, err := flowscript.Load(context.Background(), flowscript.FS(fsys, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		panic(err)
	}
	prog.WriteGraph(os.Stdout, "text", flowscript.GraphOptions{Expand: true})
	// Output:
	// workflow root
	//   steps:
	//     c: sub_workflow child
	//       workflow child
	//         steps:
	//           hi: shell "echo hi"
}

// A second Open of a held database says who holds it.
func ExampleLockedError() {
	dir, _ := os.MkdirTemp("", "flowscript-locked")
	defer os.RemoveAll(dir)
	eng, _ := flowscript.Open(dir, flowscript.Options{})
	defer eng.Close()
	_, err := flowscript.Open(dir, flowscript.Options{})
	var locked *flowscript.LockedError
	fmt.Println(errors.As(err, &locked), locked.PID == os.Getpid())
	// Output:
	// true true
}

// Listen starts the socket server with commands of the host's own; this
// plays the other side of the wire (what the flowscript command does
// when it finds the database held): one Invocation line out, Frame lines
// back, the exit code last.
func ExampleEngine_Listen() {
	dir, _ := os.MkdirTemp("", "flowscript-listen")
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "db")
	eng, err := flowscript.Open(db, flowscript.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close()
	srv, err := eng.Listen(flowscript.ServeOptions{
		Commands: func(ctx context.Context, call *flowscript.Call) int {
			fmt.Fprintf(call.Stdout, "asked for %s\n", strings.Join(call.Args[1:], " "))
			return 0
		},
	})
	if err != nil {
		panic(err)
	}
	defer srv.Close()

	conn, err := net.Dial("unix", flowscript.SocketPath(db))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	line, _ := json.Marshal(flowscript.Invocation{Args: []string{"flowscript", "runs", "--json"}})
	conn.Write(append(line, '\n'))
	frames := json.NewDecoder(conn)
	for {
		var fr flowscript.Frame
		if err := frames.Decode(&fr); err != nil {
			panic(err)
		}
		switch {
		case fr.Ack:
			fmt.Println("ack from this process:", fr.PID == os.Getpid())
		case fr.Out != "":
			fmt.Print(fr.Out)
		case fr.Exit != nil:
			fmt.Println("exit", *fr.Exit)
			return
		}
	}
	// Output:
	// ack from this process: true
	// asked for runs --json
	// exit 0
}

// Check verifies a database without changing it (`flowscript check`).
func ExampleCheck() {
	dir, _ := os.MkdirTemp("", "flowscript-check")
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "db")
	eng, err := flowscript.Open(db, flowscript.Options{})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	prog, _ := eng.Load(ctx, flowscript.Script("one.star", `task("a", lambda ctx: {"n": 1})`), flowscript.LoadOptions{})
	eng.Run(ctx, prog, flowscript.RunOptions{})
	eng.Close()

	rep, err := flowscript.Check(ctx, db)
	if err != nil {
		panic(err)
	}
	fmt.Println("whole:", rep.Whole(), "runs:", rep.Runs, "steps:", rep.Steps)
	// Output:
	// whole: true runs: 1 steps: 1
}

// A database on NATS JetStream: this process becomes its owner (waiting,
// as serve does, while another owner's heartbeat moves) and runs a
// workflow on it; `flowscript --store nats://...` does the same. (Not run
// as a test: it needs a NATS server; TestNATSStoreOwnership starts one.)
func ExampleOpenNATS() {
	ctx := context.Background()
	st, err := flowscript.OpenNATS("nats://127.0.0.1:4222/shop", flowscript.NATSOptions{})
	if err != nil {
		panic(err)
	}
	lease, err := st.Acquire(ctx, flowscript.AcquireOptions{Wait: true, Waiting: func(owner flowscript.Owner) {
		fmt.Println("waiting for", owner)
	}})
	if err != nil {
		panic(err)
	}
	lease.SetLost(func(err error) {
		fmt.Println("another process took the database:", err)
		os.Exit(3) // the runs stay unfinished for the new owner
	})
	eng, err := st.Engine(lease, flowscript.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close() // releases the lease
	prog, _ := eng.Load(ctx, flowscript.File("order.star"), flowscript.LoadOptions{})
	rec, _ := eng.Run(ctx, prog, flowscript.RunOptions{})
	fmt.Println(rec.Status)
}
