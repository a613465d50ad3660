package flowscript

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"
	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// Durability says when a transition is acknowledged.
type Durability int

const (
	// Durable acknowledges a transition only after it is synced to disk
	// (the default).
	Durable Durability = iota
	// Fast does not wait for the sync: a machine crash can lose the last
	// transitions (a process crash cannot).
	Fast
)

func (d Durability) store() badgerstore.Durability {
	if d == Fast {
		return badgerstore.Fast
	}
	return badgerstore.Durable
}

// Options tunes an engine. The zero value is the default.
type Options struct {
	// Logger receives the engine's own log lines (not the steps' logs);
	// nil discards them. Pass the host's hclog.Logger, or a Named one.
	Logger     hclog.Logger
	Durability Durability
	// Workers bounds the step attempts that execute at once (default 32).
	Workers int
	// MaxSteps bounds the Starlark steps of declaring a workflow
	// (default 10 million).
	MaxSteps uint64
	// MaxChildren bounds the child runs one run may spawn in all
	// (default 10,000).
	MaxChildren int
	// SecretSource gives secret values; nil means the environment
	// (EnvSecrets). A run's RunOptions.Secrets come first.
	SecretSource SecretSource
	// Secrets are fixed values looked up before SecretSource (or the
	// environment when SecretSource is nil).
	Secrets map[string]string
	// Observer, when set, is told of every history event after it is
	// committed, from many goroutines; it must not block. Subscribe is
	// the channel-shaped way to follow one run tree.
	Observer func(run *RunRecord, ev HistoryEvent)
	// Stubs replace task steps and child workflows with fixed outcomes,
	// for tests (what `flowscript test` uses). Leave nil in production.
	Stubs *Stubs
}

// Engine runs workflows durably on a database. It is safe for concurrent
// use. Every method that names a run accepts its id or a unique prefix.
type Engine struct {
	rt  *runtime.Engine
	st  store.Store
	hub *hub
	srv *Server // the server Serve started, if any
	dir string  // the database directory; "" in memory
}

// Open opens (creating it if needed) the database in dir and starts an
// engine on it. Only one process at a time may hold a database (another
// gets a *LockedError); Serve lets the flowscript command of other
// processes reach this one. A damaged directory, or one that is not a
// flowscript database, gives a *CorruptError and is left as it is.
func Open(dir string, opts Options) (*Engine, error) {
	st, err := badgerstore.Open(dir, badgerstore.Options{Durability: opts.Durability.store(), Logger: opts.Logger})
	if err != nil {
		return nil, openError(err)
	}
	e, err := newEngine(st, opts)
	if e != nil {
		e.dir = dir
	}
	return e, err
}

// OpenInMemory starts an engine on a database that lives in memory only.
func OpenInMemory(opts Options) (*Engine, error) {
	st, err := badgerstore.OpenInMemory(badgerstore.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	return newEngine(st, opts)
}

// New starts an engine on any store.Store (badgerstore, or a second
// backend that passes store/storetest). The engine owns st from then on:
// Close closes it. opts.Durability has no meaning here; the store was
// opened with its own.
func New(st store.Store, opts Options) (*Engine, error) {
	if st == nil {
		return nil, errors.New("flowscript.New: no store given")
	}
	return newEngine(st, opts)
}

// newEngine starts an engine on a store it then owns (Close closes it).
func newEngine(st store.Store, opts Options) (*Engine, error) {
	source := opts.SecretSource
	if source == nil {
		source = EnvSecrets
	}
	if len(opts.Secrets) > 0 {
		source = Secrets(SecretMap(opts.Secrets), source)
	}
	e := &Engine{st: st, hub: newHub()}
	user := opts.Observer
	var stubChild func(string, []string) (string, bool)
	if opts.Stubs != nil {
		stubChild = opts.Stubs.dynamicChild
	}
	e.rt = runtime.New(st, runtime.Options{
		StubChild: stubChild,
		Logger:    opts.Logger, Workers: opts.Workers, MaxSteps: opts.MaxSteps,
		MaxChildren: opts.MaxChildren, LookupSecret: source.LookupSecret,
		Observer: func(run *runtime.RunRecord, ev runtime.HistoryEvent) {
			if user == nil && e.hub.idle() {
				return // nobody listens: no record to convert
			}
			r, h := runOf(run), eventOf(ev)
			if user != nil {
				user(r, h)
			}
			e.hub.publish(r, h)
		},
	})
	if opts.Stubs != nil {
		if err := opts.Stubs.install(e); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// Close stops the engine and closes its database; the server Serve
// started is shut down first (the commands it answers end). Runs still
// going stay unfinished; Resume continues them later.
func (e *Engine) Close() error {
	if e.srv != nil {
		e.srv.Shutdown()
	}
	err := e.rt.Close()
	return errors.Join(err, e.st.Close())
}

// Handler is a task body written in Go by the host program. A script
// names it with a string body: task("charge", "payments.charge").
// The map it returns is the step's output (stored as JSON); an error
// fails the attempt (retries apply).
type Handler func(ctx context.Context, t *TaskContext) (map[string]any, error)

// TaskContext is what a Handler receives. Log lines written to Log are
// the step's logs (`flowscript logs`), secrets masked.
type TaskContext struct {
	RunID    string
	StepID   string
	Workflow string
	// Attempt counts from 1.
	Attempt int
	// Inputs are the step's resolved inputs, Params the run's params.
	Inputs map[string]any
	Params map[string]any
	Log    io.Writer
	// Secret resolves a secret the workflow declares.
	Secret func(name string) (string, error)
}

// RegisterHandler makes a Go task handler available under a name. Register
// handlers before starting or resuming the runs that use them: a run whose
// handler is missing fails to start.
func (e *Engine) RegisterHandler(name string, h Handler) {
	e.rt.RegisterHandler(name, func(ctx context.Context, t *runtime.TaskContext) (map[string]any, error) {
		return h(ctx, &TaskContext{
			RunID: t.RunID, StepID: t.StepID, Workflow: t.Workflow, Attempt: t.Attempt,
			Inputs: t.Inputs, Params: t.Params, Log: t.Log, Secret: t.Secret,
		})
	})
}

// RegisterModule adds a Starlark value that scripts of this engine see
// under name, at definition time and in step bodies (for example a
// starlarkstruct.Module of host functions).
func (e *Engine) RegisterModule(name string, v starlark.Value) {
	e.rt.RegisterModule(name, v)
}

// Load evaluates and validates a workflow with this engine's modules and
// limits; child workflows are found in the workspace and among the
// definitions registered in the database.
func (e *Engine) Load(ctx context.Context, src Source, opts LoadOptions) (*Program, error) {
	lo := e.rt.LangOptions()
	if opts.MaxSteps > 0 {
		lo.MaxSteps = opts.MaxSteps
	}
	return load(ctx, src, opts, lo)
}

// Register stores the program's workflow as a definition and returns its
// version: content equal to a stored version reuses it, new content gets
// the highest version + 1 (or the version the script declares).
func (e *Engine) Register(ctx context.Context, prog *Program) (int, error) {
	v, err := e.rt.Register(ctx, prog.p)
	return v, apiError(err)
}

// RegisterTree registers the programs' workflows and every workspace
// workflow they reach through sub_workflow steps (`flowscript register`),
// all in one transaction: when one is refused, nothing is registered.
func (e *Engine) RegisterTree(ctx context.Context, progs ...*Program) ([]Registered, error) {
	ps := make([]*lang.Program, len(progs))
	for i, p := range progs {
		ps[i] = p.p
	}
	regs, err := e.rt.RegisterTree(ctx, ps...)
	out := make([]Registered, len(regs))
	for i, r := range regs {
		out[i] = Registered(r)
	}
	return out, apiError(err)
}

// Definitions lists every registered workflow version, by name and version.
func (e *Engine) Definitions(ctx context.Context) ([]Definition, error) {
	defs, err := e.rt.Definitions(ctx)
	out := make([]Definition, len(defs))
	for i, d := range defs {
		out[i] = Definition{Name: d.Name, Version: d.Version, Params: d.Params, Secrets: d.Secrets, RegisteredAt: d.RegisteredAt}
	}
	return out, err
}

// IdempotencyStrategy says what a start does when its idempotency key is
// already bound to a run of the same workflow.
type IdempotencyStrategy string

// Idempotency strategies.
const (
	// ReturnExisting reuses the bound run, whatever its status (the
	// default when only a key is given).
	ReturnExisting IdempotencyStrategy = dag.ReturnExisting
	// FailExisting refuses to start, naming the bound run (ErrInput).
	FailExisting IdempotencyStrategy = dag.FailExisting
	// FailOnRunning refuses only while the bound run is unfinished, and
	// otherwise starts a new run that takes the key.
	FailOnRunning IdempotencyStrategy = dag.FailOnRunning
)

// IdempotencyStrategies lists the strategies, the default first.
func IdempotencyStrategies() []IdempotencyStrategy {
	out := make([]IdempotencyStrategy, len(dag.IdempotencyStrategies))
	for i, s := range dag.IdempotencyStrategies {
		out[i] = IdempotencyStrategy(s)
	}
	return out
}

// Valid reports whether s is one of IdempotencyStrategies ("" is not:
// it means the default, ReturnExisting).
func (s IdempotencyStrategy) Valid() bool { return dag.IsIdempotencyStrategy(string(s)) }

// Meaning says in a few words what a start does by s when its key is
// already bound to a run; "" when s is not a strategy.
func (s IdempotencyStrategy) Meaning() string { return dag.StrategyMeaning(string(s)) }

// The priority range of RunOptions.Priority: higher runs first.
const (
	MinPriority = dag.MinPriority
	MaxPriority = dag.MaxPriority
)

// RunOptions are the choices of one run. The zero value runs with the
// workflow's param defaults at priority 0.
type RunOptions struct {
	// Params override the workflow's param defaults; each must be declared.
	Params map[string]any
	// Priority from MinPriority to MaxPriority, higher runs first;
	// children inherit it.
	Priority int
	// Workspace is the directory shell steps and sh() run in; default the
	// program's workspace directory, else the current directory.
	Workspace string
	// Secrets, when set, give this run's secrets before the engine's.
	Secrets SecretSource
	// IdempotencyKey binds the run to a key: another start of the same
	// workflow with the key follows IdempotencyStrategy.
	IdempotencyKey      string
	IdempotencyStrategy IdempotencyStrategy
}

// Start creates a run of the program and starts it, without waiting; it
// returns the run's id once the run is stored.
func (e *Engine) Start(ctx context.Context, prog *Program, opts RunOptions) (string, error) {
	dir := opts.Workspace
	if dir == "" {
		if root := prog.p.Workspace.Dir(); root != "" {
			dir = root
		} else if wd, err := os.Getwd(); err == nil {
			dir = wd
		}
	}
	params, err := normalised(opts.Params)
	if err != nil {
		return "", err
	}
	id, err := e.rt.Start(ctx, prog.p, runtime.StartOptions{
		Params: params, Priority: opts.Priority, Workspace: dir,
		LookupSecret: lookupOf(opts.Secrets), IdempotencyKey: opts.IdempotencyKey,
		IdempotencyStrategy: string(opts.IdempotencyStrategy),
	})
	return id, apiError(err)
}

// Run starts a run and waits for it to end. A run that ends failed or
// cancelled is not an error: look at the record's Status.
func (e *Engine) Run(ctx context.Context, prog *Program, opts RunOptions) (*RunRecord, error) {
	id, err := e.Start(ctx, prog, opts)
	if err != nil {
		return nil, err
	}
	return e.Wait(ctx, id)
}

// Wait blocks until the run ends (or ctx does) and returns its record,
// steps included. A run that is unfinished but not active in this engine
// cannot end by waiting: Resume it first.
func (e *Engine) Wait(ctx context.Context, id string) (*RunRecord, error) {
	rec, err := e.rt.Wait(ctx, id)
	return runOf(rec), err
}

// WaitTree waits for the run and then for every run of its tree that this
// engine is running, detached children included (what `flowscript run`
// does before it exits).
func (e *Engine) WaitTree(ctx context.Context, id string) (*RunRecord, error) {
	rec, err := e.rt.WaitTree(ctx, id)
	return runOf(rec), err
}

// Cancel cancels a run and every non-detached run below it: running
// bodies and shell processes are stopped, pending steps end cancelled.
// A run that had already ended gives ErrAlreadyEnded.
func (e *Engine) Cancel(ctx context.Context, id string) (*RunRecord, error) {
	rec, err := e.rt.Cancel(ctx, id)
	return runOf(rec), err
}

// RerunOptions tunes Rerun.
type RerunOptions struct {
	// From lists steps to reset, each with everything downstream of it
	// (the from argument of Rerun joins them).
	From []string
	// Failed resets every step that ended failed, cancelled or skipped,
	// with everything downstream; a blocking sub_workflow step whose own
	// child failed waits again for that child, which is rerun with Failed
	// in place, down the tree.
	Failed bool
	// DryRun only plans: nothing changes.
	DryRun bool
	// Latest resolves the run's own workflow anew (its workspace file
	// when it still exists, else the latest registered version) and the
	// children of reset sub_workflow steps, instead of the stored snapshot
	// and the versions they ran.
	Latest bool
}

// Rerun resets the step from (and opts.From, or with opts.Failed the
// steps that did not succeed) of a finished run and everything downstream
// of them and runs the run to its end again, in place, keeping the
// outputs upstream; a rerun child makes its parents continue with its new
// outcome, up to the root. Wait for the plan's Root to see the outcome.
func (e *Engine) Rerun(ctx context.Context, id, from string, opts RerunOptions) (*RerunPlan, error) {
	plan, err := e.rt.Rerun(ctx, id, from, runtime.RerunOptions{DryRun: opts.DryRun, Latest: opts.Latest, From: opts.From, Failed: opts.Failed})
	return planOf(plan), apiError(err)
}

// Resume continues every unfinished run this engine is not already
// running (after a crash or a Close): finished steps are kept, running
// ones start again as a new attempt, no child is started twice. It returns
// the ids it continued; Wait on them.
//
// Runs that use Go task handlers this engine does not have are left
// untouched, and named in a *HandlersMissingError (an ErrInput); the ids
// of the others come back with it.
func (e *Engine) Resume(ctx context.Context) ([]string, error) {
	ids, err := e.rt.Resume(ctx)
	var left *runtime.HandlersMissingError
	if errors.As(err, &left) {
		err = handlersMissingOf(left)
	}
	return ids, err
}

// Unfinished lists the ids of runs that have not ended.
func (e *Engine) Unfinished(ctx context.Context) ([]string, error) {
	return e.rt.Unfinished(ctx)
}

// ResolveID turns a run id or a unique prefix of one into the id.
func (e *Engine) ResolveID(ctx context.Context, idOrPrefix string) (string, error) {
	return e.rt.ResolveID(ctx, idOrPrefix)
}

// Get returns a run with its steps.
func (e *Engine) Get(ctx context.Context, id string) (*RunRecord, error) {
	rec, err := e.rt.Get(ctx, id)
	return runOf(rec), err
}

// List returns run records, without their steps, oldest first.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]RunRecord, error) {
	recs, err := e.rt.List(ctx, runtime.ListFilter{Status: coreStatus(f.Status), Workflow: f.Workflow})
	return runsOf(recs), err
}

// History returns a run's events in order.
func (e *Engine) History(ctx context.Context, id string) ([]HistoryEvent, error) {
	evs, err := e.rt.History(ctx, id)
	out := make([]HistoryEvent, len(evs))
	for i, h := range evs {
		out[i] = eventOf(h)
	}
	return out, err
}

// Logs returns the logs of a run's step attempts in step order; a
// non-empty step narrows them to that step.
func (e *Engine) Logs(ctx context.Context, id, step string) ([]LogEntry, error) {
	logs, err := e.rt.Logs(ctx, id, step)
	out := make([]LogEntry, len(logs))
	for i, l := range logs {
		out[i] = LogEntry(l)
	}
	return out, err
}

// Tree returns the run and every descendant run, children in creation
// order.
func (e *Engine) Tree(ctx context.Context, id string) (*TreeNode, error) {
	n, err := e.rt.Tree(ctx, id)
	return treeOf(n), err
}

func coreStatus(s RunStatus) core.RunStatus { return core.RunStatus(s) }

// Stats counts the engine's writes since it started.
type Stats struct {
	// Transactions is the number of store transactions committed (each
	// synced, in durable mode); Commits the groups of writes they carried.
	Transactions, Commits uint64
}

// Stats returns the engine's write counts.
func (e *Engine) Stats() Stats { return Stats(e.rt.Stats()) }

// normalised gives params the form they have once stored (JSON: whole
// numbers int64, other numbers float64), so that a step sees the same
// values whether its run started here or was resumed.
func normalised(params map[string]any) (map[string]any, error) {
	if params == nil {
		return nil, nil
	}
	data, err := json.Marshal(params)
	if err != nil {
		return nil, &inputError{"params cannot be stored as JSON: " + err.Error()}
	}
	v, err := DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}
