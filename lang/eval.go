package lang

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
)

// DefaultMaxMemory bounds how much the heap may grow while one workflow is
// declared. Starlark's step limit bounds time, not memory: a few steps can
// build a huge string or list.
const DefaultMaxMemory = 512 << 20

// DefaultMaxSteps bounds the Starlark execution steps of declaring one
// workflow (its file and everything it loads).
const DefaultMaxSteps = 10_000_000

// FileOptions is the dialect of flowscript scripts: top-level for, if and
// while, set, and global reassignment; recursion stays off.
var FileOptions = &syntax.FileOptions{
	Set:             true,
	While:           true,
	TopLevelControl: true,
	GlobalReassign:  true,
}

// Options tunes evaluation. The zero value is the default.
type Options struct {
	// MaxSteps bounds the execution steps of declaring one workflow;
	// 0 means DefaultMaxSteps.
	MaxSteps uint64
	// Predeclared adds host modules to what scripts see.
	Predeclared starlark.StringDict
	// Registry, when set, finds child workflows that no workspace file
	// declares.
	Registry Registry
	// MaxMemory bounds the heap growth of declaring one workflow, in
	// bytes; 0 means DefaultMaxMemory.
	MaxMemory uint64
}

func (o Options) withDefaults() Options {
	if o.MaxSteps == 0 {
		o.MaxSteps = DefaultMaxSteps
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	return o
}

// Program is an evaluated script: the workflow it declares, its step
// bodies, and the source it came from.
type Program struct {
	Workflow *dag.Workflow
	// Bodies maps task step ids to their Starlark body functions.
	Bodies map[string]starlark.Callable
	// Root is the workspace-relative path of the root file.
	Root string
	// Files is the source snapshot: the root file and every file it loads,
	// by workspace-relative path.
	Files map[string][]byte
	// Hash is the content hash of Files: equal content, equal hash.
	Hash string
	// Errors holds what is wrong with the workflow itself (not yet with its
	// children); a Program with errors must not run.
	Errors dag.ErrorList
	// Workspace is where the program was loaded from.
	Workspace *Workspace
	// Declared reports whether the script called workflow().
	Declared bool
	// Modules holds the globals of the root file and of every file it
	// loads, by the file's name as positions show it: a planner's steps
	// find their body functions here again after a restart.
	Modules map[string]starlark.StringDict
}

// Load evaluates the workspace file rel (a slash path relative to the
// workspace). Script problems come back in Program.Errors; the error result
// is for problems that left no program at all (a file that cannot be read,
// a script that does not evaluate), as a dag.ErrorList where positions are
// known.
func (ws *Workspace) Load(ctx context.Context, rel string) (*Program, error) {
	ws.mu.Lock()
	if r, ok := ws.programs[rel]; ok {
		ws.mu.Unlock()
		return r.prog, r.err
	}
	ws.mu.Unlock()
	prog, err := ws.evaluate(ctx, rel, nil)
	ws.mu.Lock()
	ws.programs[rel] = &fileResult{prog: prog, err: err}
	ws.mu.Unlock()
	return prog, err
}

// LoadSource evaluates source that is not a workspace file (a script=
// child, a string handed to the API) under the name given; its loads and
// children resolve in the workspace.
func (ws *Workspace) LoadSource(ctx context.Context, name string, src []byte) (*Program, error) {
	return ws.evaluate(ctx, name, src)
}

type evaluation struct {
	ws      *Workspace
	ctx     context.Context
	files   map[string][]byte
	cache   map[string]*loadResult
	stack   []string // files being evaluated, outermost first
	errs    dag.ErrorList
	builder *builtins.Builder
}

type loadResult struct {
	globals starlark.StringDict
	err     error
	done    bool
}

// errLoadFailed marks a load whose own errors were already recorded.
var errLoadFailed = errors.New("load failed")

func (ws *Workspace) evaluate(ctx context.Context, rel string, src []byte) (*Program, error) {
	if src == nil {
		data, err := ws.readFile(rel)
		if err != nil {
			return nil, err
		}
		src = data
	}
	ev := &evaluation{
		ws:      ws,
		ctx:     ctx,
		files:   map[string][]byte{rel: src},
		cache:   map[string]*loadResult{},
		builder: builtins.NewBuilder(ws.Display(rel)),
	}
	thread := &starlark.Thread{Name: "declare " + ws.Display(rel), Load: ev.load}
	thread.SetMaxExecutionSteps(ws.opts.MaxSteps)
	builtins.SetBuilder(thread, ev.builder)
	stop := context.AfterFunc(ctx, func() { thread.Cancel("deadline") })
	defer stop()
	mem := builtins.WatchMemory(thread, ws.opts.MaxMemory)
	defer mem.Stop()

	ev.stack = []string{rel}
	ev.cache[rel] = &loadResult{}
	globals, err := ExecFile(thread, ws.Display(rel), src, ev.predeclared())
	if err != nil {
		ev.record(err, thread)
	}
	modules := map[string]starlark.StringDict{ws.Display(rel): globals}
	for f, r := range ev.cache {
		if r.globals != nil {
			modules[ws.Display(f)] = r.globals
		}
	}
	w := ev.builder.Workflow
	if w.Name == "" {
		w.Name = strings.TrimSuffix(path.Base(rel), ".star")
	}
	prog := &Program{
		Workflow:  w,
		Bodies:    ev.builder.Bodies,
		Root:      rel,
		Files:     ev.files,
		Hash:      hashFiles(rel, ev.files),
		Workspace: ws,
		Declared:  ev.builder.WorkflowDeclared(),
		Modules:   modules,
	}
	if len(ev.errs) > 0 {
		// the script did not run to its end: what it declared is partial
		errs := append(ev.errs, ev.builder.Errors...)
		errs.Sort()
		return nil, errs
	}
	errs := append(ev.builder.Errors, dag.Validate(w)...)
	errs.Sort()
	prog.Errors = errs
	w.Freeze()
	return prog, nil
}

func (ev *evaluation) predeclared() starlark.StringDict {
	d := builtins.SafeUniverse()
	d["json"] = json.Module
	d["math"] = math.Module
	d["struct"] = starlark.NewBuiltin("struct", starlarkstruct.Make)
	for k, v := range builtins.RunTimeBuiltins() {
		d[k] = v
	}
	for k, v := range builtins.Definition() {
		d[k] = v
	}
	for k, v := range ev.ws.opts.Predeclared {
		d[k] = v
	}
	return d
}

// load implements load() for scripts: relative to the loading file, inside
// the workspace, each file evaluated once per program, cycles refused.
func (ev *evaluation) load(thread *starlark.Thread, module string) (starlark.StringDict, error) {
	from := ev.stack[len(ev.stack)-1]
	target, err := ev.ws.resolveLoad(from, module)
	if err != nil {
		return nil, err
	}
	if r, ok := ev.cache[target]; ok {
		if !r.done {
			chain := []string{}
			for i, f := range ev.stack {
				if f == target {
					chain = append(chain, ev.stack[i:]...)
					break
				}
			}
			for i := range chain {
				chain[i] = ev.ws.Display(chain[i])
			}
			chain = append(chain, ev.ws.Display(target))
			return nil, fmt.Errorf("load cycle: %s", strings.Join(chain, " -> "))
		}
		return r.globals, r.err
	}
	src, err := ev.ws.readFile(target)
	if err != nil {
		return nil, err
	}
	ev.files[target] = src
	r := &loadResult{}
	ev.cache[target] = r
	ev.stack = append(ev.stack, target)
	globals, err := ExecFile(thread, ev.ws.Display(target), src, ev.predeclared())
	ev.stack = ev.stack[:len(ev.stack)-1]
	r.done = true
	if err != nil {
		if !errors.Is(err, errLoadFailed) && !ev.record(err, thread) {
			r.err = err
			return nil, err
		}
		r.err = errLoadFailed
		return nil, errLoadFailed
	}
	r.globals = globals
	return globals, nil
}

// record turns an evaluation error into positioned errors. It reports
// false for an error it leaves to the caller.
func (ev *evaluation) record(err error, thread *starlark.Thread) bool {
	if errors.Is(err, errLoadFailed) {
		return true
	}
	ev.errs = append(ev.errs, ev.toErrors(err)...)
	return true
}

func (ev *evaluation) toErrors(err error) dag.ErrorList {
	var (
		synErr  syntax.Error
		evalErr *starlark.EvalError
		list    dag.ErrorList
	)
	switch {
	case errors.As(err, &list):
		return list
	case errors.As(err, &synErr):
		return dag.ErrorList{{Pos: position(synErr.Pos), Msg: synErr.Msg}}
	case errors.As(err, &evalErr):
		return dag.ErrorList{{Pos: framePos(evalErr.CallStack), Msg: ev.evalMessage(evalErr), Chain: builtins.CallChain(evalErr.CallStack)}}
	}
	if rl, ok := asResolveErrors(err); ok {
		return rl
	}
	return dag.ErrorList{{Pos: dag.Pos{File: ev.ws.Display(ev.stack[0]), Line: 1, Col: 1}, Msg: err.Error()}}
}

func (ev *evaluation) evalMessage(e *starlark.EvalError) string {
	msg := e.Msg
	if strings.Contains(msg, "Starlark computation cancelled: too many steps") {
		return fmt.Sprintf("declaring the workflow took more than %d execution steps (an endless loop?); raise the limit with --max-steps", ev.ws.opts.MaxSteps)
	}
	if strings.Contains(msg, "Starlark computation cancelled: memory") {
		return fmt.Sprintf("declaring the workflow used more than %d MiB of memory and was stopped (a value that keeps growing?)", ev.ws.opts.MaxMemory>>20)
	}
	if strings.Contains(msg, "Starlark computation cancelled: deadline") {
		if ev.ctx.Err() != nil && errors.Is(ev.ctx.Err(), context.DeadlineExceeded) {
			return "declaring the workflow took too long and was stopped"
		}
		return "declaring the workflow was interrupted"
	}
	if strings.Contains(msg, "called recursively") {
		return msg + " (recursion is not allowed in flowscript scripts)"
	}
	return referenceHint(msg)
}

// framePos is the innermost script position of a call stack.
func framePos(stack starlark.CallStack) dag.Pos {
	for i := len(stack) - 1; i >= 0; i-- {
		p := stack[i].Pos
		if p.Filename() != "<builtin>" && p.Line > 0 {
			return position(p)
		}
	}
	return dag.Pos{}
}

func position(p syntax.Position) dag.Pos {
	return dag.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}

// hashFiles is the content hash of a source snapshot. Each file is named
// relative to the root file's directory, not to the workspace, so the same
// files give the same hash whichever directory is the workspace.
func hashFiles(root string, files map[string][]byte) string {
	dir := path.Dir(root)
	names := make(map[string]string, len(files))
	order := make([]string, 0, len(files))
	for n := range files {
		rel, err := filepath.Rel(dir, n)
		if err != nil {
			rel = n
		}
		rel = filepath.ToSlash(rel)
		names[rel] = n
		order = append(order, rel)
	}
	sort.Strings(order)
	h := sha256.New()
	var n [8]byte
	for _, rel := range order {
		data := files[names[rel]]
		binary.BigEndian.PutUint64(n[:], uint64(len(rel)))
		h.Write(n[:])
		h.Write([]byte(rel))
		binary.BigEndian.PutUint64(n[:], uint64(len(data)))
		h.Write(n[:])
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
