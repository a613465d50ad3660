package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/flowscript/flowscript/dag"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// Unfinished lists the ids of runs that have not ended.
func (e *Engine) Unfinished(ctx context.Context) ([]string, error) {
	var ids []string
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		ids, err = tx.Unfinished()
		return err
	})
	return ids, err
}

// Resume continues every unfinished run that this engine is not already
// running: finished steps are kept, steps that were running start again as
// a new attempt. It returns the ids it continued; Wait on them.
func (e *Engine) Resume(ctx context.Context) ([]string, error) {
	return e.resumeWhere(ctx, nil)
}

// resumeWhere is Resume of the unfinished runs that keep (when not nil)
// keeps, in creation order: parents before children.
func (e *Engine) resumeWhere(ctx context.Context, keep func(id string) (bool, error)) ([]string, error) {
	ids, err := e.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	var resumed []string
	left := &HandlersMissingError{}
	for _, id := range ids {
		e.mu.Lock()
		_, running := e.active[id]
		e.mu.Unlock()
		if running {
			continue
		}
		if keep != nil {
			if ok, err := keep(id); err != nil || !ok {
				if err != nil {
					return resumed, err
				}
				continue
			}
		}
		err := e.resumeRun(ctx, id)
		var missing *handlersMissing
		if errors.As(err, &missing) {
			left.Runs = append(left.Runs, LeftRun{ID: id, Workflow: missing.workflow, Handlers: missing.names})
			continue
		}
		if err != nil {
			return resumed, fmt.Errorf("run %s: %w", id, err)
		}
		resumed = append(resumed, id)
	}
	// the ends of runs that happened while their waiters were not running
	if err := e.pendingNotices(ctx); err != nil {
		return resumed, err
	}
	if len(left.Runs) > 0 {
		return resumed, left
	}
	return resumed, nil
}

// HandlersMissingError lists the unfinished runs that Resume left
// untouched because they use Go task handlers this engine does not have
// (runs started by a program that embeds flowscript). The other runs were
// resumed.
type HandlersMissingError struct{ Runs []LeftRun }

// LeftRun is a run Resume left unfinished, and the handlers it lacks.
type LeftRun struct {
	ID       string
	Workflow string
	Handlers []string
}

func (e *HandlersMissingError) Error() string {
	var b strings.Builder
	runs, they, them := "runs", "they use", "them"
	if len(e.Runs) == 1 {
		runs, they, them = "run", "it uses", "it"
	}
	fmt.Fprintf(&b, "left %d unfinished %s untouched: %s Go task handlers this process does not have (resume %s from the program that registers them)", len(e.Runs), runs, they, them)
	for _, r := range e.Runs {
		fmt.Fprintf(&b, "\n  run %s (%s) needs %s", r.ID, r.Workflow, strings.Join(r.Handlers, ", "))
	}
	return b.String()
}

// Is makes it an input error (exit 2).
func (e *HandlersMissingError) Is(target error) bool { return target == ErrInput }

// handlersMissing stops the resume of one run.
type handlersMissing struct {
	workflow string
	names    []string
}

func (h *handlersMissing) Error() string {
	return fmt.Sprintf("%s uses task handlers this engine does not have: %s", h.workflow, strings.Join(h.names, ", "))
}

// missingHandlers lists the task handlers a workflow names that this
// engine does not have.
func (e *Engine) missingHandlers(w *dag.Workflow) []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range w.Steps {
		if s.Kind == dag.KindTask && s.Handler != "" && !seen[s.Handler] {
			if _, ok := e.handler(s.Handler); !ok {
				names = append(names, s.Handler)
			}
			seen[s.Handler] = true
		}
	}
	return names
}

func (e *Engine) resumeRun(ctx context.Context, id string) error {
	// the run record as this resume found it: a concurrent resume of the
	// same run (a cancel reaching it while Resume walks the runs) may
	// load it, end it and let it go before this one is loaded
	before, err := e.runBytes(ctx, id)
	if err != nil {
		return err
	}
	rec, err := e.stored(ctx, id)
	if err != nil {
		return err
	}
	if rec.Status.Terminal() {
		return nil // ended meanwhile (a cancel cascading from its parent)
	}
	if !rec.CancelRequested && !rec.Detached && rec.ParentRunID != nil {
		// A blocking child outlives its parent only when the process that
		// cancelled a run no process ran (which ends the run at once, then
		// reaches its children) died in between: the cancel reaches the
		// child now, instead of the child running on under an ended parent.
		if parent, err := e.runRecord(ctx, *rec.ParentRunID); err == nil && parent.Status.Terminal() {
			return e.cancelStored(ctx, id)
		}
	}
	ar, err := e.loadRun(ctx, rec)
	if err != nil {
		return err
	}
	if names := e.missingHandlers(ar.prog.Workflow); len(names) > 0 && !rec.CancelRequested {
		// a run of an embedding program: leave it as it is for that
		// program, instead of failing its steps here (a cancelled one
		// runs nothing, so it may end here)
		return &handlersMissing{workflow: rec.Workflow, names: names}
	}
	e.mu.Lock()
	if _, loaded := e.active[id]; loaded {
		// another resume of the same run (a cancel reaching a run that no
		// process ran, while Resume walks the runs) came first: one
		// in-memory run per run
		e.mu.Unlock()
		return nil
	}
	// ... so that its record changed since: that resume carried the run
	// on (a run resumed twice would start again from the state this one
	// read, and a cancelled run could end again, succeeded). Read under
	// e.mu: a run is in e.active from its load to its end.
	if now, err := e.runBytes(ctx, id); err != nil || !bytes.Equal(now, before) {
		e.mu.Unlock()
		return err
	}
	e.active[id] = ar
	e.mu.Unlock()
	e.apply(ar, core.Resume{At: e.now()})
	e.armRunTimeout(ar)
	if rec.CancelRequested {
		// a cancel that was committed before the process stopped reaches
		// the children it had not reached yet
		return e.cancelChildren(ctx, id)
	}
	return nil
}

// armRunTimeout arms the workflow's timeout, counted from the run's start
// or its last rerun. When it passes, the run is cancelled as a whole tree
// and ends failed.
func (e *Engine) armRunTimeout(ar *activeRun) {
	ar.mu.Lock()
	timeout, run := ar.prog.Workflow.Timeout, ar.m.RunView()
	ar.mu.Unlock()
	started, ended := run.TimeoutFrom(), run.Status.Terminal()
	if timeout <= 0 || ended {
		return
	}
	if started.IsZero() {
		started = e.now()
	}
	e.afterFunc(started.Add(timeout).Sub(e.now()), func() {
		// a run that ended (and may have been rerun since, by another
		// in-memory run with its own timer) decides nothing here, and its
		// id's children are not this timer's to cancel
		if !e.applyHand(ar, core.TimedOut{At: e.now()}, nil, nil, nil) {
			return
		}
		// the children end cancelled; their ends end the steps waiting
		// for them
		if err := e.cancelChildren(e.base, ar.rec.ID); err != nil {
			e.log.Error("cannot cancel the children of a timed-out run", "run", ar.rec.ID, "error", err)
		}
	})
}

// runSource is the source a run was made from: its definition, or the
// snapshot stored with a script= child.
func (e *Engine) runSource(ctx context.Context, rec *RunRecord) (*journal.Definition, error) {
	var snap *journal.Definition
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		snap, err = tx.RunSource(rec.ID)
		return err
	})
	if err == nil {
		return snap, nil
	}
	if !errors.Is(err, journal.ErrNotFound) {
		return nil, err
	}
	def, err := e.definition(ctx, rec.Workflow, rec.Version)
	if err != nil {
		return nil, fmt.Errorf("cannot find its definition %s version %d: %w", rec.Workflow, rec.Version, err)
	}
	return def, nil
}

// runBytes is the stored run record of id, as it is stored.
func (e *Engine) runBytes(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := e.j.View(ctx, func(tx *journal.Tx) error {
		var err error
		data, err = tx.RunBytes(id)
		return err
	})
	return data, err
}
