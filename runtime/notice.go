package runtime

import (
	"context"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// notice receives, through the journal's watch, a notice written in the
// transaction that ended a run, and hands it to the step that waits.
func (e *Engine) notice(d journal.Delivery, err error) {
	if err != nil {
		e.log.Error("unreadable notice", "error", err)
		return
	}
	e.deliverNotice(d)
}

// deliverNotice ends the waiting step with the outcome of the run it
// waited for; the notice is removed in the same transaction. A notice for
// a run this engine is not running waits in the store for its resume.
func (e *Engine) deliverNotice(d journal.Delivery) {
	e.mu.Lock()
	ar := e.active[d.Waiter]
	e.mu.Unlock()
	if ar == nil {
		return
	}
	n := d.Notice
	if n.Index < 0 || n.Index >= len(ar.prog.Workflow.Steps) {
		e.log.Error("a notice names no step of its run", "run", d.Waiter, "index", n.Index)
		return
	}
	n.Output = dag.NormalizeNumbers(n.Output)
	ev := core.ChildEnded{Step: ar.prog.Workflow.Steps[n.Index].ID, Attempt: n.Attempt, ChildRunID: d.Run, Status: n.Status, Output: n.Output, Error: n.Error, At: e.now()}
	// applied off the watch's goroutine: a commit waits for the committer
	go e.applyWith(ar, ev, []journal.Op{d.Drop()}, nil)
}

// pendingNotices delivers the notices already in the store (written while
// no engine ran the waiting run).
func (e *Engine) pendingNotices(ctx context.Context) error {
	return e.deliverStored(ctx, "")
}

// noticesFor delivers the stored notices addressed to one run.
func (e *Engine) noticesFor(runID string) error {
	return e.deliverStored(e.base, runID)
}

func (e *Engine) deliverStored(ctx context.Context, waiter string) error {
	var found []journal.Delivery
	err := e.j.View(ctx, func(tx *journal.Tx) error {
		return tx.Notices(waiter, func(d journal.Delivery, err error) {
			if err != nil {
				e.log.Error("unreadable notice", "error", err)
				return
			}
			found = append(found, d)
		})
	})
	if err != nil {
		return err
	}
	for _, d := range found {
		e.deliverNotice(d)
	}
	return nil
}
