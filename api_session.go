package flowscript

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"text/tabwriter"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/lib/math"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// SessionFile is the name a Session's declarations go by in positions
// and as the workflow's default name.
const SessionFile = "repl.star"

// SessionOptions tunes a Session.
type SessionOptions struct {
	// Workspace is the directory child workflows and shell steps resolve
	// in (default: the current directory).
	Workspace string
	// Out receives what the session prints: values, graphs, run progress.
	Out io.Writer
	// Engine opens the engine that run() and the inspecting helpers use,
	// at their first call; nil means the session cannot run workflows.
	// The session closes it in Close.
	Engine func() (*Engine, error)
}

// Session declares a workflow interactively, one chunk of source at a
// time, and runs it: what `flowscript repl` is built on. Each chunk runs
// at once (so its values can be looked at); the chunks that ran without
// error make up the session's script, SessionFile, which graph(),
// validate() and run() load as a whole, exactly as a file would be.
//
// Besides the definition builtins, a session has these helpers:
//
//	graph(format = "text", expand = False)   the DAG declared so far (text, dot, mermaid, json)
//	validate()               every check of `flowscript validate`
//	run(params = {})         run it on the database, showing progress; returns the run
//	                         (interrupting it cancels the run)
//	runs()                   list the runs in the database
//	show(id)                 one run with its steps
//	history(id), logs(id, step = None), tree(id), cancel(id)
//	source()                 the session's script so far, with line numbers
//	reset()                  forget every declaration
//	help()                   this list
type Session struct {
	opts    SessionOptions
	globals starlark.StringDict
	src     strings.Builder // the chunks that ran, in order
	lines   int             // lines in src

	resetPending bool // reset() was called by the chunk running
	modules      map[string]*loaded

	mu   sync.Mutex
	eng  *Engine
	fail error
}

// NewSession starts an empty session.
func NewSession(opts SessionOptions) *Session {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Workspace == "" {
		opts.Workspace, _ = os.Getwd()
	}
	s := &Session{opts: opts}
	s.reset()
	return s
}

func (s *Session) reset() {
	s.src.Reset()
	s.lines = 0
	s.modules = map[string]*loaded{}
	g := s.predeclared()
	for name, fn := range s.helpers() {
		g[name] = starlark.NewBuiltin(name, fn)
	}
	s.globals = g
}

// predeclared is what scripts see, as in a .star file.
func (s *Session) predeclared() starlark.StringDict {
	// the universe's collection builtins bounded, and what the guard
	// rewrites `*`, `+=` and the collection methods into (lang.GuardFile)
	g := builtins.SafeUniverse()
	g["json"], g["math"], g["struct"] = starjson.Module, math.Module, starlark.NewBuiltin("struct", starlarkstruct.Make)
	for k, v := range builtins.RunTimeBuiltins() {
		g[k] = v
	}
	for k, v := range builtins.Definition() {
		g[k] = v
	}
	return g
}

// Close closes the engine the session opened.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != nil {
		return s.eng.Close()
	}
	return nil
}

// FileOptions is the Starlark dialect of flowscript scripts, for parsing
// chunks (syntax.FileOptions.ParseCompoundStmt).
func FileOptions() *syntax.FileOptions { return lang.FileOptions }

// Source is the session's script so far.
func (s *Session) Source() string { return s.src.String() }

// Exec runs one chunk of source (a statement, a compound statement, or
// an expression, as a REPL reads them). It returns the value of a lone
// expression (None otherwise). A chunk that fails changes nothing that
// graph(), validate() or run() see.
func (s *Session) Exec(ctx context.Context, chunk string) (v starlark.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("internal error: %v (the session goes on)", r)
		}
	}()
	if !strings.HasSuffix(chunk, "\n") {
		chunk += "\n"
	}
	// parsed where it will sit in the session's script, so that positions
	// now and in validate() agree
	padded := strings.Repeat("\n", s.lines) + chunk
	// loads bind globally, as in go.starlark.net's REPL: what a chunk
	// loads, the next ones see
	opts := *FileOptions()
	opts.LoadBindsGlobally = true
	f, err := opts.Parse(SessionFile, padded, 0)
	if err != nil {
		return nil, errors.New(starlarkErrorText(err))
	}
	lang.GuardFile(f)
	thread := &starlark.Thread{Name: "repl", Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(s.opts.Out, msg) }, Load: s.loadModule}
	// a fresh builder per chunk makes the definition builtins work here;
	// what the session declares is what its whole script declares
	builtins.SetBuilder(thread, builtins.NewBuilder(SessionFile))
	thread.SetLocal("context", ctx)
	stop := context.AfterFunc(ctx, func() { thread.Cancel("interrupted") })
	defer stop()
	v = starlark.None
	if expr := soleExpr(f); expr != nil {
		v, err = starlark.EvalExprOptions(f.Options, thread, expr, s.globals)
	} else {
		err = starlark.ExecREPLChunk(f, thread, s.globals)
	}
	if s.resetPending {
		s.resetPending = false
		s.reset()
		return starlark.None, nil
	}
	if err != nil {
		var se *ScriptErrors
		if errors.As(err, &se) {
			return nil, se // from graph(), validate() or run(): positioned already
		}
		return nil, errors.New(starlarkErrorText(err))
	}
	if usesHelpers(f) {
		return v, nil
	}
	if expr := soleExpr(f); expr != nil {
		if _, call := expr.(*syntax.CallExpr); !call {
			return v, nil // looking at a value declares nothing
		}
	}
	// the chunk joins the script only if the script still evaluates
	next := s.src.String() + chunk
	ws, err := lang.OpenWorkspaceAs(s.opts.Workspace, "", lang.Options{})
	if err != nil {
		return nil, &inputError{err.Error()}
	}
	if prog, err := ws.LoadSource(ctx, SessionFile, []byte(next)); err != nil {
		return nil, apiError(err)
	} else if errs := laterThan(prog, s.lines); len(errs) > 0 {
		return nil, scriptErrorsOf(errs)
	}
	s.src.WriteString(chunk)
	s.lines += strings.Count(chunk, "\n")
	return v, nil
}

// loadModule is load() in the session: a path relative to the loading
// file (the session's script sits at the workspace's top), which must
// stay inside the workspace. Each file is evaluated once per session.
func (s *Session) loadModule(thread *starlark.Thread, module string) (starlark.StringDict, error) {
	from := "."
	if thread.CallStackDepth() > 0 {
		if f := thread.CallFrame(0).Pos.Filename(); f != SessionFile {
			from = path.Dir(f)
		}
	}
	rel := path.Join(from, module)
	if path.IsAbs(module) || !fs.ValidPath(rel) {
		return nil, fmt.Errorf("load(%q): the path must stay inside the workspace %s", module, s.opts.Workspace)
	}
	if m, ok := s.modules[rel]; ok {
		if m == nil {
			return nil, fmt.Errorf("load(%q): a load cycle", module)
		}
		return m.globals, m.err
	}
	src, err := fs.ReadFile(os.DirFS(s.opts.Workspace), rel)
	if err != nil {
		return nil, fmt.Errorf("load(%q): %v", module, unwrapPathError(err))
	}
	s.modules[rel] = nil
	th := &starlark.Thread{Name: "load " + rel, Print: thread.Print, Load: s.loadModule}
	builtins.SetBuilder(th, builtins.BuilderOf(thread))
	globals, err := lang.ExecFile(th, rel, src, s.predeclared())
	s.modules[rel] = &loaded{globals, err}
	return globals, err
}

type loaded struct {
	globals starlark.StringDict
	err     error
}

func soleExpr(f *syntax.File) syntax.Expr {
	if len(f.Stmts) == 1 {
		if stmt, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			return stmt.X
		}
	}
	return nil
}

var helperNames = []string{"cancel", "graph", "help", "history", "logs", "reset", "run", "runs", "show", "source", "tree", "validate"}

// usesHelpers reports whether the chunk names a session helper: such a
// chunk is a command to the session, not part of the workflow.
func usesHelpers(f *syntax.File) bool {
	found := false
	syntax.Walk(f, func(n syntax.Node) bool {
		if id, ok := n.(*syntax.Ident); ok {
			for _, h := range helperNames {
				found = found || id.Name == h
			}
		}
		return !found
	})
	return found
}

// engine opens the session's engine on first use.
func (s *Session) engine() (*Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != nil || s.fail != nil {
		return s.eng, s.fail
	}
	if s.opts.Engine == nil {
		s.fail = errors.New("this session has no database to run workflows in")
		return nil, s.fail
	}
	s.eng, s.fail = s.opts.Engine()
	return s.eng, s.fail
}

// load loads the session's script as a whole.
func (s *Session) load(ctx context.Context, withEngine bool) (*Program, error) {
	if strings.TrimSpace(s.src.String()) == "" {
		return nil, errors.New("nothing is declared yet: declare steps with task(), shell() or sub_workflow()")
	}
	lo := lang.Options{}
	if withEngine {
		eng, err := s.engine()
		if err != nil {
			return nil, err
		}
		lo = eng.rt.LangOptions()
	}
	ws, err := lang.OpenWorkspaceAs(s.opts.Workspace, "", lo)
	if err != nil {
		return nil, &inputError{err.Error()}
	}
	return checked(ctx, ws, func() (*lang.Program, error) { return ws.LoadSource(ctx, SessionFile, []byte(s.src.String())) })
}

type helperFn = func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)

func (s *Session) helpers() map[string]helperFn {
	out := s.opts.Out
	ctxOf := func(th *starlark.Thread) context.Context {
		if ctx, ok := th.Local("context").(context.Context); ok {
			return ctx
		}
		return context.Background()
	}
	runID := func(b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (string, error) {
		var id string
		err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &id)
		return id, err
	}
	withEngine := func(fn func(ctx context.Context, eng *Engine, id string) error) helperFn {
		return func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			id, err := runID(b, args, kwargs)
			if err != nil {
				return nil, err
			}
			eng, err := s.engine()
			if err != nil {
				return nil, fmt.Errorf("%s: %v", b.Name(), err)
			}
			if err := fn(ctxOf(th), eng, id); err != nil {
				return nil, fmt.Errorf("%s: %v", b.Name(), err)
			}
			return starlark.None, nil
		}
	}
	return map[string]helperFn{
		"help": func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			io.WriteString(out, sessionHelp)
			return starlark.None, nil
		},
		"source": func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			for i, line := range strings.SplitAfter(s.src.String(), "\n") {
				if line != "" {
					fmt.Fprintf(out, "%4d  %s", i+1, line)
				}
			}
			return starlark.None, nil
		},
		"reset": func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			s.resetPending = true
			return starlark.None, nil
		},
		"graph": func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			format := "text"
			expand := false
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "format?", &format, "expand?", &expand); err != nil {
				return nil, err
			}
			prog, err := s.load(ctxOf(th), false)
			if err != nil {
				return nil, err
			}
			return starlark.None, prog.WriteGraph(out, format, GraphOptions{Expand: expand})
		},
		"validate": func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
				return nil, err
			}
			prog, err := s.load(ctxOf(th), false)
			if err != nil {
				return nil, err
			}
			steps := "steps"
			if len(prog.Steps()) == 1 {
				steps = "step"
			}
			fmt.Fprintf(out, "ok (workflow %q, %d %s)\n", prog.Name(), len(prog.Steps()), steps)
			return starlark.None, nil
		},
		"run": func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var params *starlark.Dict
			if err := starlark.UnpackArgs(b.Name(), args, kwargs, "params?", &params); err != nil {
				return nil, err
			}
			prm, err := dictOf("params", params)
			if err != nil {
				return nil, err
			}
			ctx := ctxOf(th)
			prog, err := s.load(ctx, true)
			if err != nil {
				return nil, err
			}
			eng, _ := s.engine()
			f := &follower{w: out}
			stop := eng.Observe(f.observe)
			defer stop()
			id, err := eng.Start(ctx, prog, RunOptions{Params: prm, Workspace: s.opts.Workspace})
			if err != nil {
				return nil, fmt.Errorf("run: %v", err)
			}
			f.follow(id)
			rec, err := eng.WaitTree(ctx, id)
			if ctx.Err() != nil {
				// Ctrl-C: what runs is stopped, not left behind
				if _, err := eng.Cancel(context.Background(), id); err != nil && !errors.Is(err, ErrAlreadyEnded) {
					return nil, fmt.Errorf("run: interrupted, and cannot cancel run %s: %v", id, err)
				}
				rec, err = eng.Wait(context.Background(), id)
			}
			stop()
			if err != nil {
				return nil, fmt.Errorf("run: %v", err)
			}
			fmt.Fprintf(out, "%s %s\n", rec.ID, rec.Status)
			return newRunResult(&goldenNode{rec: rec}, "")
		},
		"runs": func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
				return nil, err
			}
			eng, err := s.engine()
			if err != nil {
				return nil, fmt.Errorf("runs: %v", err)
			}
			runs, err := eng.List(ctxOf(th), ListFilter{})
			if err != nil {
				return nil, err
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tWORKFLOW\tVERSION\tSTATUS")
			for _, r := range runs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.ID, r.Workflow, r.Version, r.Status)
			}
			return starlark.None, tw.Flush()
		},
		"show": withEngine(func(ctx context.Context, eng *Engine, id string) error {
			rec, err := eng.Get(ctx, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "run %s: %s version %d %s\n", rec.ID, rec.Workflow, rec.Version, rec.Status)
			if rec.Error != nil {
				fmt.Fprintf(out, "  error: %s\n", *rec.Error)
			}
			for _, st := range rec.Steps {
				fmt.Fprintf(out, "  %s: %s (attempt %d)\n", st.ID, st.Status, st.Attempt)
			}
			return nil
		}),
		"history": withEngine(func(ctx context.Context, eng *Engine, id string) error {
			evs, err := eng.History(ctx, id)
			for _, ev := range evs {
				fmt.Fprintf(out, "%d %s %s %s\n", ev.Seq, ev.Type, ev.Step, ev.Status)
			}
			return err
		}),
		"logs": withEngine(func(ctx context.Context, eng *Engine, id string) error {
			logs, err := eng.Logs(ctx, id, "")
			for _, l := range logs {
				fmt.Fprintf(out, "--- %s (attempt %d)\n%s", l.Step, l.Attempt, l.Text)
				if !strings.HasSuffix(l.Text, "\n") && l.Text != "" {
					fmt.Fprintln(out)
				}
			}
			return err
		}),
		"tree": withEngine(func(ctx context.Context, eng *Engine, id string) error {
			n, err := eng.Tree(ctx, id)
			if err != nil {
				return err
			}
			return n.Walk(func(n *TreeNode, depth int) error {
				_, err := fmt.Fprintf(out, "%s%s %s %s\n", strings.Repeat("  ", depth), n.Run.ID, n.Run.Workflow, n.Run.Status)
				return err
			})
		}),
		"cancel": withEngine(func(ctx context.Context, eng *Engine, id string) error {
			rec, err := eng.Cancel(ctx, id)
			if errors.Is(err, ErrAlreadyEnded) {
				fmt.Fprintln(out, "the run already ended")
				return nil
			}
			if err == nil {
				fmt.Fprintf(out, "%s cancel requested\n", rec.ID)
			}
			return err
		}),
	}
}

// follower prints the progress of one run tree: events are held back
// until the tree's root id is known, so none of its first are missed.
type follower struct {
	mu      sync.Mutex
	w       io.Writer
	root    string
	pending []Event
}

func (f *follower) observe(run *RunRecord, ev HistoryEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := Event{Run: *run, HistoryEvent: ev}
	switch {
	case f.root == "":
		f.pending = append(f.pending, e)
	case run.RootRunID == f.root:
		printProgress(f.w, e)
	}
}

func (f *follower) follow(root string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.root = root
	for _, e := range f.pending {
		if e.Run.RootRunID == root {
			printProgress(f.w, e)
		}
	}
	f.pending = nil
}

// printProgress prints one line per step transition.
func printProgress(w io.Writer, ev Event) {
	indent := strings.Repeat("  ", max(ev.Run.Depth-1, 0))
	switch ev.Type {
	case "run_started":
		fmt.Fprintf(w, "%srun %s: %s started\n", indent, ev.Run.ID, ev.Run.Workflow)
	case "step_started":
		fmt.Fprintf(w, "%s  %s started\n", indent, ev.Step)
	case "step_ended":
		line := fmt.Sprintf("%s  %s %s", indent, ev.Step, ev.Status)
		if ev.Error != "" {
			line += ": " + strings.SplitN(ev.Error, "\n", 2)[0]
		}
		fmt.Fprintln(w, line)
	case "run_ended":
		fmt.Fprintf(w, "%srun %s: %s %s\n", indent, ev.Run.ID, ev.Run.Workflow, ev.Status)
	}
}

const sessionHelp = `Declare steps with workflow(), task(), shell(), sub_workflow(), param(),
secret() and output(), as in a .star file. Then:
  graph(format = "text", expand = False)
                           the DAG declared so far (text, dot, mermaid, json)
  validate()               check it as flowscript validate does
  run(params = {})         run it on the database; returns the run
  runs()                   list the runs in the database
  show(id), tree(id), history(id), logs(id), cancel(id)
  source()                 the script declared so far, with line numbers
  reset()                  forget every declaration
A blank line ends a multi-line statement; Ctrl-C cancels the current input
(or stops what is running); Ctrl-D exits.
`

// laterThan keeps the script errors positioned after line n: those of
// the newest chunk (the script's older errors, such as a reference to a
// step still to be declared, wait for validate()).
func laterThan(prog *lang.Program, n int) (out dag.ErrorList) {
	for _, e := range prog.Errors {
		if e.Pos.Line > n && !strings.Contains(e.Msg, "unknown step") && !strings.Contains(e.Msg, "declares no steps") {
			out = append(out, e)
		}
	}
	return out
}
