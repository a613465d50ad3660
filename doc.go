// Package flowscript is the Go API of flowscript: durable workflows
// written as Starlark scripts. It is the only package of the module a
// program needs; the flowscript command is a layer over it.
//
// # Scripts
//
// A workflow is declared by a script: evaluating its top level builds a
// DAG of steps (task, shell, sub_workflow) and has no side effects. Load
// evaluates a script and runs every check of validation; it takes a
// Source — a File on disk, a path in an FS (such as an embed.FS), or a
// Script held in a string — and the same LoadOptions for all three:
//
//	prog, err := flowscript.Load(ctx, flowscript.File("pipeline.star"), flowscript.LoadOptions{})
//	prog, err := flowscript.Load(ctx, flowscript.FS(scripts, "pipeline.star"), flowscript.LoadOptions{})
//	prog, err := flowscript.Load(ctx, flowscript.Script("hello.star", src), flowscript.LoadOptions{})
//
// Load and Validate need no engine and no database. Script problems come
// back as *ScriptErrors, one ScriptError per problem with its
// file:line:col; errors.Is(err, ErrInput) holds for them and for every
// other problem with what the caller asked (bad params, a missing secret,
// an unknown run).
//
// # Engines
//
// An Engine runs workflows durably on a database: Open takes a directory
// (Badger; one process at a time), OpenInMemory keeps everything in
// memory. Every transition of a run is committed before it is acted on, so
// a run survives a crash of the process: Resume continues it.
//
//	eng, err := flowscript.Open(".flowscript", flowscript.Options{Logger: hostLogger})
//	defer eng.Close()
//	prog, err := eng.Load(ctx, flowscript.File("pipeline.star"), flowscript.LoadOptions{})
//	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{Params: map[string]any{"env": "prod"}})
//	fmt.Println(rec.Status) // succeeded, failed or cancelled
//
// An engine's Load also finds child workflows among the definitions
// registered in its database, and sees the modules registered with
// RegisterModule. Start returns as soon as the run is stored; Wait,
// WaitTree and Run wait for the end. Cancel, Rerun and Resume control
// runs; Get, List, History, Logs and Tree read them. Every method that
// names a run takes its id or a unique prefix of it.
//
// # The host's code
//
// A task whose body is a string names a Go Handler the host registers:
//
//	task("charge", "payments.charge", inputs = {"amount": total.output["cents"]})
//
//	eng.RegisterHandler("payments.charge", func(ctx context.Context, t *flowscript.TaskContext) (map[string]any, error) {
//		id, err := payments.Charge(ctx, t.Inputs["amount"])
//		return map[string]any{"charge_id": id}, err
//	})
//
// RegisterModule adds Starlark values (a starlarkstruct.Module of host
// functions) that scripts see by name. Secrets that scripts declare come
// from Options.SecretSource (a vault client implements SecretSource; the
// default reads the environment), or per run from RunOptions.Secrets;
// their values are masked as *** wherever they would leave the engine.
// The engine logs to Options.Logger, an hclog.Logger of the host's choice.
//
// # Watching runs
//
// Subscribe delivers the live events of a run tree on a channel — the
// same events as History, as they are committed. Observe calls a function
// for every event of every run. Serve binds the socket in the database
// directory, so that `flowscript show/runs/tree/history/logs/watch/cancel
// --db DIR` from another terminal are answered by the program that holds
// the database (Ctrl-C on a watch or logs --follow there names the run
// and this process).
// The flowscript command's own holders answer with the same Server
// (Listen), passing their commands as ServeOptions.Commands.
//
// # Databases
//
// Check verifies a database directory without changing it. OpenNATS opens
// a database kept in a NATS JetStream stream, shared by engines on many
// machines: one process owns it at a time (Acquire gives a Lease; the
// engine of NATSStore.Engine commits only while it holds), the others
// read it (ReadOnlyEngine) or wait to take it over.
//
// # Records
//
// RunRecord, StepRecord, HistoryEvent and LogEntry are what users see
// (`flowscript show --json`): statuses are RunStatus and StepStatus, times
// are UTC with nanoseconds, absent values are JSON null. The engine's own
// bookkeeping (content hashes, workspace paths, rerun epochs) is not part
// of them.
//
// # Tests and sessions
//
// RunTests runs the test_* functions of *_test.star files (`flowscript
// test`): a test runs a workflow on a fresh in-memory database with stubbed
// task steps and stubbed child workflows (Stubs), and compares the run
// tree with a golden file. Session declares a workflow one chunk at a
// time and runs it (`flowscript repl`).
package flowscript
