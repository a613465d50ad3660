package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/store"
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// engineFlags are the flags of commands that run workflows.
func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "secrets-file", Usage: "read secrets from `FILE` (NAME=value lines); others come from the environment"},
		&cli.StringFlag{Name: "durability", Usage: "durable (sync every commit) or fast (no sync: a machine crash may lose the last transitions)", Value: "durable"},
		&cli.IntFlag{Name: "workers", Usage: "step attempts that may execute at once", Value: 32},
	}
}

type engineConfig struct {
	secrets map[string]string
	// hold: this command keeps the database while it works (run, resume,
	// serve), so it answers other commands over the socket meanwhile.
	hold bool
	// existing: the command only reads or changes what is stored, so a
	// database that does not exist is an error, not one to create (a
	// mistyped --db must not leave a database behind).
	existing bool
}

// forwardError says that another process holds the database: the whole
// command is sent to it.
type forwardError struct {
	dir    string
	locked *store.LockedError
}

func (e *forwardError) Error() string { return e.locked.Error() }

// openEngine gives the command an engine: the holding process's own when
// the command was forwarded to it, else one on the database --db names.
// release gives it back.
// dbDir is the database directory: --db, else $FLOWSCRIPT_DB, else
// ./.flowscript (an empty value counts as unset).
func dbDir(c *cli.Context) string {
	if d := c.String("db"); d != "" {
		return d
	}
	return ".flowscript"
}

// dbMissing reports that the database directory does not exist (and no
// engine is shared with this command).
func dbMissing(c *cli.Context) bool {
	env := envOf(c)
	if env.shared != nil || storeURL(c) != "" {
		return false
	}
	_, err := os.Stat(env.path(dbDir(c)))
	return errors.Is(err, os.ErrNotExist)
}

func openEngine(c *cli.Context, cfg engineConfig) (*flowscript.Engine, func(), error) {
	env := envOf(c)
	if env.shared != nil {
		return env.shared, func() {}, nil
	}
	logger, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return nil, nil, err
	}
	secrets := cfg.secrets
	env.hub = newHub()
	opts := flowscript.Options{
		Logger:   logger,
		Secrets:  secrets,
		Observer: env.hub.publish,
		Workers:  c.Int("workers"), // 0 where the command has no such flag: the default
	}
	if c.IsSet("workers") && opts.Workers < 1 {
		return nil, nil, usageErrorf("flowscript: --workers %d: at least one worker is needed to run a step", opts.Workers)
	}
	if c.IsSet("max-steps") {
		opts.MaxSteps = c.Uint64("max-steps")
	}
	switch d := c.String("durability"); d {
	case "", "durable":
	case "fast":
		opts.Durability = flowscript.Fast
		fmt.Fprintln(c.App.ErrWriter, "flowscript: --durability fast: commits are not synced to disk; a machine crash may lose the last transitions")
	default:
		return nil, nil, usageErrorf("flowscript: --durability %q is not durable or fast", d)
	}
	if storeURL(c) != "" {
		return openNATS(c, cfg, opts)
	}
	dir := env.path(dbDir(c))
	if cfg.existing && dbMissing(c) {
		{
			return nil, nil, usageErrorf("flowscript: no database at %s (nothing has run with this --db or $FLOWSCRIPT_DB yet)", dbDir(c))
		}
	}
	eng, err := flowscript.Open(dir, opts)
	if err != nil {
		var locked *store.LockedError
		if errors.As(err, &locked) {
			return nil, nil, &forwardError{dir: dir, locked: locked}
		}
		return nil, nil, storeError(err)
	}
	release := func() { eng.Close() }
	if cfg.hold {
		srv, err := listen(dir, eng, env.hub, logger)
		if err != nil {
			eng.Close()
			return nil, nil, &exitError{code: exitUsage, msg: "flowscript: " + err.Error()}
		}
		release = func() {
			srv.close()
			eng.Close()
		}
	}
	return eng, release, nil
}

// storeError gives store problems their exit code and a clear message.
func storeError(err error) error {
	var locked *store.LockedError
	var corrupt *store.CorruptError
	switch {
	case errors.As(err, &locked):
		return usageErrorf("flowscript: %v", locked)
	case errors.As(err, &corrupt):
		return usageErrorf("flowscript: %v", corrupt)
	}
	return &exitError{code: exitUsage, msg: "flowscript: " + err.Error()}
}

// engineError maps an engine error to an exit: problems with what was
// asked exit 2, script errors are printed one per line.
func engineError(w io.Writer, err error) error {
	var list dag.ErrorList
	if errors.As(err, &list) {
		return printErrors(w, list)
	}
	if errors.Is(err, runtime.ErrInput) {
		return usageErrorf("flowscript: %v", err)
	}
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitFailed, msg: "flowscript: " + err.Error()}
}

// progress prints one line per step transition on stderr. Until follow
// names the run to show, events are held back; then only that run's tree
// is shown. all shows every run (resume, serve).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	all     bool
	root    string
	pending []observed
}

type observed struct {
	run flowscript.RunRecord
	ev  flowscript.HistoryEvent
}

func (p *progress) observe(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.all || (p.root != "" && run.RootRunID == p.root):
		p.print(run, ev)
	case p.root == "":
		p.pending = append(p.pending, observed{*run, ev})
	}
}

// follow shows the run tree rooted at id, with what happened before.
func (p *progress) follow(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.root = id
	for _, o := range p.pending {
		if o.run.RootRunID == id {
			p.print(&o.run, o.ev)
		}
	}
	p.pending = nil
}

func (p *progress) print(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
	var line string
	switch ev.Type {
	case "run_started":
		line = fmt.Sprintf("run %s: %s started", run.ID, run.Workflow)
	case "step_started":
		if ev.Attempt > 1 {
			line = fmt.Sprintf("  %s started (attempt %d)", ev.Step, ev.Attempt)
		} else {
			line = fmt.Sprintf("  %s started", ev.Step)
		}
	case "step_ended":
		line = fmt.Sprintf("  %s %s", ev.Step, ev.Status)
		if ev.Error != "" {
			line += ": " + firstLine(ev.Error)
		}
	case "retry_scheduled":
		line = fmt.Sprintf("  %s will be retried", ev.Step)
	case "run_resumed":
		line = fmt.Sprintf("run %s: %s resumed", run.ID, run.Workflow)
	case "cancel_requested":
		line = fmt.Sprintf("run %s: cancel requested", run.ID)
	case "run_ended":
		line = fmt.Sprintf("run %s: %s %s", run.ID, run.Workflow, ev.Status)
		if ev.Error != "" {
			line += ": " + firstLine(ev.Error)
		}
	default:
		return
	}
	// a child's lines are indented by its depth in the tree
	fmt.Fprintf(p.w, "%s %s%s\n", ev.Time.Local().Format("15:04:05"), strings.Repeat("  ", max(run.Depth-1, 0)), line)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// session is a command that holds the database while it works (run,
// resume, serve, rerun): its engine, its progress display on stderr, and a
// context that ends on Ctrl-C (or when a forwarded command's client goes
// away).
type session struct {
	eng      *flowscript.Engine
	env      *appEnv
	progress *progress
	secrets  map[string]string
	ctx      context.Context
	release  func()
	close    func()
}

// holdDatabase opens a session; all shows the progress of every run, else
// only of the tree that progress.follow names.
func holdDatabase(c *cli.Context, all, existing bool) (*session, error) {
	env := envOf(c)
	secrets, err := readSecretsFile(env.path(c.String("secrets-file")))
	if err != nil {
		return nil, err
	}
	eng, release, err := openEngine(c, engineConfig{secrets: secrets, hold: true, existing: existing})
	if err != nil {
		return nil, err
	}
	prog := &progress{w: c.App.ErrWriter, all: all}
	unsubscribe := env.hub.subscribe(prog.observe)
	ctx, stop := commandContext(c)
	s := &session{eng: eng, env: env, progress: prog, secrets: secrets, ctx: ctx, release: release}
	s.close = func() {
		stop()
		unsubscribe()
		release()
	}
	return s, nil
}

// interrupted ends a command whose wait was cut short by Ctrl-C: the
// runs stay unfinished (a forwarded command's runs go on in the holder).
func (s *session) interrupted(c *cli.Context, what string) error {
	if s.env.shared == nil {
		s.release()
		fmt.Fprintf(c.App.ErrWriter, "interrupted: %s unfinished; continue with: flowscript resume\n", what)
	}
	return silentExit(exitInterrupt)
}
