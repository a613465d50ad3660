// Package flowscript is the Go API of flowscript: durable workflows written
// as Starlark scripts.
//
// Open an engine on a directory (or in memory), register Go task handlers
// and extra Starlark modules, load a workflow from a file, an fs.FS or a
// string, start it, wait for it, and inspect runs, their history and logs.
// Every command of the flowscript CLI is a thin layer over this package.
//
//	eng, err := flowscript.Open(".flowscript", flowscript.Options{})
//	...
//	defer eng.Close()
//	prog, err := eng.LoadFile(ctx, "pipeline.star", flowscript.LoadOptions{})
//	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Params: map[string]any{"env": "prod"}})
//	rec, err := eng.Wait(ctx, id)
package flowscript

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// Re-exported types of the run records and handlers.
type (
	RunRecord    = runtime.RunRecord
	StepRecord   = runtime.StepRecord
	HistoryEvent = runtime.HistoryEvent
	LogEntry     = runtime.LogEntry
	ListFilter   = runtime.ListFilter
	Handler      = runtime.Handler
	TaskContext  = runtime.TaskContext
	Program      = lang.Program
	// HandlersMissingError is what Resume returns when it left runs
	// untouched that use Go task handlers the engine does not have.
	HandlersMissingError = runtime.HandlersMissingError
)

// Durability says when a transition is acknowledged.
type Durability = badgerstore.Durability

const (
	// Durable acknowledges a transition only after it is synced to disk.
	Durable = badgerstore.Durable
	// Fast does not wait for the sync: a machine crash can lose the last
	// transitions (a process crash cannot).
	Fast = badgerstore.Fast
)

// Options tunes an engine. The zero value is the default.
type Options struct {
	Logger     hclog.Logger
	Durability Durability
	// Workers bounds the step attempts that execute at once (default 32).
	Workers int
	// MaxSteps bounds the Starlark steps of declaring a workflow.
	MaxSteps uint64
	// Secrets gives secret values; names not in it are looked up in the
	// environment.
	Secrets map[string]string
	// Observer is told of every committed history event.
	Observer func(run *RunRecord, ev HistoryEvent)
}

// Engine runs workflows durably.
type Engine struct {
	*runtime.Engine
	st store.Store
}

// Open opens (creating it if needed) the database in dir and starts an
// engine on it. Only one process at a time may hold a database.
func Open(dir string, opts Options) (*Engine, error) {
	st, err := badgerstore.Open(dir, badgerstore.Options{Durability: opts.Durability, Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	return newEngine(st, opts), nil
}

// OpenInMemory starts an engine on a database that lives in memory only.
func OpenInMemory(opts Options) (*Engine, error) {
	st, err := badgerstore.OpenInMemory(badgerstore.Options{Logger: opts.Logger})
	if err != nil {
		return nil, err
	}
	return newEngine(st, opts), nil
}

func newEngine(st store.Store, opts Options) *Engine {
	secrets := opts.Secrets
	lookup := func(name string) (string, bool) {
		if v, ok := secrets[name]; ok {
			return v, true
		}
		// an empty variable is as good as none: there is nothing to mask
		v, ok := os.LookupEnv(name)
		return v, ok && v != ""
	}
	rt := runtime.New(st, runtime.Options{
		Logger: opts.Logger, Workers: opts.Workers, MaxSteps: opts.MaxSteps,
		LookupSecret: lookup, Observer: opts.Observer,
	})
	return &Engine{Engine: rt, st: st}
}

// Close stops the engine and closes its database. Runs still going stay
// unfinished; Resume continues them later.
func (e *Engine) Close() error {
	err := e.Engine.Close()
	return errors.Join(err, e.st.Close())
}

// LoadOptions tunes loading a workflow.
type LoadOptions struct {
	// Workspace is the directory load() and child names resolve in;
	// default: the root file's directory.
	Workspace string
	// BaseDir, when set, is the directory relative paths are taken from
	// instead of the current one; positions still show them as given.
	BaseDir string
}

// LoadFile evaluates a workflow file and runs every check of validation.
// Script problems come back as a dag.ErrorList.
func (e *Engine) LoadFile(ctx context.Context, file string, opts LoadOptions) (*Program, error) {
	dir := opts.Workspace
	if dir == "" {
		dir = filepath.Dir(file)
	}
	display := dir
	if opts.BaseDir != "" {
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(opts.BaseDir, dir)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(opts.BaseDir, file)
		}
	}
	rel, err := lang.Rel(dir, file)
	if err != nil {
		return nil, &runtime.InputError{Msg: err.Error()}
	}
	ws, err := lang.OpenWorkspaceAs(dir, display, e.LangOptions())
	if err != nil {
		return nil, &runtime.InputError{Msg: err.Error()}
	}
	return loadChecked(ctx, ws, rel)
}

// LoadFS evaluates the workflow at path in a file system (such as an
// embed.FS), which is its workspace.
func (e *Engine) LoadFS(ctx context.Context, fsys fs.FS, path string) (*Program, error) {
	return loadChecked(ctx, lang.NewWorkspaceFS(fsys, "", e.LangOptions()), path)
}

// LoadString evaluates a workflow from source; name is its file name
// (for positions and the default workflow name).
func (e *Engine) LoadString(ctx context.Context, name, src string) (*Program, error) {
	ws := lang.NewWorkspaceFiles(map[string][]byte{name: []byte(src)}, e.LangOptions())
	return loadChecked(ctx, ws, name)
}

func loadChecked(ctx context.Context, ws *lang.Workspace, rel string) (*Program, error) {
	prog, err := ws.Load(ctx, rel)
	var list dag.ErrorList
	if err != nil && !errors.As(err, &list) && ctx.Err() == nil {
		// the file or workspace cannot be read: a problem with the input
		return nil, &runtime.InputError{Msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	if errs := ws.Check(ctx, prog); len(errs) > 0 {
		return nil, errs
	}
	return prog, nil
}

// RunOptions are the per-run choices: params, priority, workspace,
// secret lookup, idempotency key and strategy. A Workspace left empty is
// the program's workspace directory, else the current directory.
type RunOptions = runtime.StartOptions

// Start creates a run of the program and starts it, without waiting.
func (e *Engine) Start(ctx context.Context, prog *Program, opts RunOptions) (string, error) {
	dir := opts.Workspace
	if dir == "" {
		if root := prog.Workspace.Dir(); root != "" {
			dir = root
		} else if wd, err := os.Getwd(); err == nil {
			dir = wd
		}
	}
	opts.Workspace = dir
	return e.Engine.Start(ctx, prog, opts)
}

// Run starts a run and waits for it to end.
func (e *Engine) Run(ctx context.Context, prog *Program, opts RunOptions) (*RunRecord, error) {
	id, err := e.Start(ctx, prog, opts)
	if err != nil {
		return nil, err
	}
	return e.Wait(ctx, id)
}

// IsInputError reports whether err is a problem with what was asked (bad
// params, missing secrets, unknown run, script errors) rather than a
// failure of the engine.
func IsInputError(err error) bool {
	var list dag.ErrorList
	return errors.Is(err, runtime.ErrInput) || errors.As(err, &list)
}
