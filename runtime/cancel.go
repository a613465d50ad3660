package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// ErrAlreadyEnded: the run to cancel had already ended; nothing changed.
var ErrAlreadyEnded = errors.New("the run already ended")

// Cancel cancels a run and every non-detached run below it. The cancel
// of each run is committed before it is carried out: running bodies are
// stopped, shell process groups get SIGTERM and then SIGKILL, pending
// steps end cancelled and nothing starts afterwards. A run that is not
// running in this engine (its process died) is ended cancelled at once.
func (e *Engine) Cancel(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	rec, err := e.Get(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	id := rec.ID
	if rec.Status.Terminal() {
		return rec, ErrAlreadyEnded
	}
	if err := e.cancelTree(ctx, id); err != nil {
		return rec, err
	}
	return rec, nil
}

// cancelTree cancels a run, then its non-detached children. The run's
// own cancel commits first: a spawn decided before it is in the store
// (and active here) when the children are listed, and none is decided
// after it.
func (e *Engine) cancelTree(ctx context.Context, id string) error {
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()
	if ar != nil {
		e.apply(ar, core.Cancel{At: e.now()})
	} else if err := e.cancelStored(ctx, id); err != nil {
		return err
	}
	return e.cancelChildren(ctx, id)
}

// cancelChildren cancels the unfinished non-detached children of a run
// (and their trees).
func (e *Engine) cancelChildren(ctx context.Context, id string) error {
	kids, err := e.childIDs(ctx, id)
	if err != nil {
		return err
	}
	// Siblings are cancelled concurrently, so that their cancels share
	// transactions (and syncs) instead of each waiting for its own; each
	// still commits its own cancel before listing its children.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, cancelFanOut)
	)
	for _, kid := range kids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := e.cancelChild(ctx, kid); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cancelFanOut bounds the children of one run that are cancelled at once.
const cancelFanOut = 64

// cancelChild cancels a child and its subtree, unless it is detached
// (detached subtrees are outside the cancel) or already ended.
func (e *Engine) cancelChild(ctx context.Context, kid string) error {
	rec, err := e.runRecord(ctx, kid)
	if err != nil {
		return err
	}
	if rec.Detached || rec.Status.Terminal() {
		return nil
	}
	return e.cancelTree(ctx, kid)
}

// cancelStored cancels an unfinished run that no process is running: the
// request is written, then the run is loaded and ends cancelled (nothing
// it was running survived its process).
func (e *Engine) cancelStored(ctx context.Context, id string) error {
	err := e.c.write(func(tx *journal.Tx) error {
		rec, err := tx.Run(id)
		if err != nil {
			return err
		}
		if rec.Status.Terminal() || rec.CancelRequested {
			return nil
		}
		rec.CancelRequested = true
		return tx.PutRunRecord(rec)
	})
	if err != nil {
		return err
	}
	e.mu.Lock()
	_, running := e.active[id]
	e.mu.Unlock()
	if !running {
		if err := e.resumeRun(ctx, id); err != nil {
			return err
		}
	}
	// a resume that loaded the run before the cancel was written (Resume
	// walking the runs while a timeout cancels one) runs it here without
	// the cancel: tell it (a run that has the cancel already ignores it)
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()
	if ar != nil {
		e.apply(ar, core.Cancel{At: e.now()})
	}
	return nil
}

func (e *Engine) childIDs(ctx context.Context, id string) ([]string, error) {
	var kids []string
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		kids, err = tx.Children(id)
		return err
	})
	return kids, err
}

func (e *Engine) runRecord(ctx context.Context, id string) (*RunRecord, error) {
	var rec *RunRecord
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		rec, err = tx.Run(id)
		return err
	})
	return rec, err
}

// stopSubWorkflow ends a cancelled sub_workflow step whose child is not
// its own (a run reused through an idempotency key): that run is not
// cancelled with this tree, so the step does not wait for it. It acts on
// the stop action alone, which carries the child as the cancel found it;
// a step that ended meanwhile ignores the late end.
func (e *Engine) stopSubWorkflow(ar *activeRun, stop core.StopStep) {
	if e.ownsChild(ar, stop.ChildRunID) {
		return // cancelled with the tree, its notice ends the step
	}
	e.apply(ar, core.StepEnded{Step: stop.Step, Attempt: stop.Attempt, Error: "cancelled", At: e.now()})
}

// ownsChild reports whether run id is a child of ar (not a run reused
// through an idempotency key).
func (e *Engine) ownsChild(ar *activeRun, id string) bool {
	if id == "" {
		return false
	}
	rec, err := e.runRecord(e.base, id)
	return err == nil && deref(rec.ParentRunID) == ar.rec.ID
}

// subWorkflowTimedOut ends a blocking sub_workflow step whose timeout
// passed. Its own child (with the child's subtree) is cancelled first, and
// the step ends, with the timeout as its error, when the child has ended:
// a retry never runs beside the child it replaces. It acts on a view of
// the attempt taken under the run's lock (core.Running) and on the
// results of the events it applies, never on the machine's state.
func (e *Engine) subWorkflowTimedOut(ar *activeRun, step string, attempt int, timeout time.Duration) {
	ar.mu.Lock()
	at, running := ar.m.Running(step, attempt)
	ar.mu.Unlock()
	if !running {
		return // ended before its timeout
	}
	childID := at.ChildRunID
	msg := fmt.Sprintf("timed out after %s", dag.FormatDuration(timeout))
	if e.ownsChild(ar, childID) {
		msg = fmt.Sprintf("%s; its child run %s was cancelled", msg, childID)
		if !e.applyHand(ar, core.EndWithChild{Step: step, Attempt: attempt, Error: msg, At: e.now()}, nil, nil, nil) {
			return // ended meanwhile
		}
		err := e.cancelTree(e.base, childID)
		if err == nil {
			return // the child's end ends the step
		}
		e.log.Error("cannot cancel a timed-out step's child", "run", ar.rec.ID, "step", step, "child", childID, "error", err)
		e.apply(ar, core.EndWithChild{Step: step, Attempt: attempt, At: e.now()})
	}
	e.apply(ar, core.StepEnded{Step: step, Attempt: attempt, Error: msg, At: e.now()})
}
