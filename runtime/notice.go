package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

// notices receives, through the store watch, the notices written in the
// transactions that end runs, and hands each to the step that waits.
func (e *Engine) notices(events []store.Event) error {
	for _, ev := range events {
		if !ev.Deleted {
			e.deliverNotice(ev.Key, ev.Value)
		}
	}
	return nil
}

// deliverNotice ends the waiting step with the outcome of the run it
// waited for; the notice is removed in the same transaction. A notice for
// a run this engine is not running waits in the store for its resume.
func (e *Engine) deliverNotice(key, value []byte) {
	// notice/<waiter>/<run>/<index:4><attempt:4>; the step is in the value
	rest := bytes.TrimPrefix(key, []byte(prefixNotice))
	i := bytes.IndexByte(rest, '/')
	if i < 0 || len(rest) < i+1+9 {
		return
	}
	waiterID, runID := string(rest[:i]), string(rest[i+1:len(rest)-9])
	var n noticeRecord
	if err := json.Unmarshal(value, &n); err != nil {
		e.log.Error("unreadable notice", "key", string(key), "error", err)
		return
	}
	e.mu.Lock()
	ar := e.active[waiterID]
	e.mu.Unlock()
	if ar == nil {
		return
	}
	n.Output = dag.NormalizeNumbers(n.Output)
	k := append([]byte(nil), key...)
	ev := core.ChildEnded{Step: ar.prog.Workflow.Steps[n.Index].ID, Attempt: n.Attempt, ChildRunID: runID, Status: n.Status, Output: n.Output, Error: n.Error, At: e.now()}
	// applied off the watch's goroutine: a commit waits for the committer
	go e.applyWith(ar, ev, func(tx store.Tx) error { return tx.Delete(k) }, nil)
}

// pendingNotices delivers the notices already in the store (written while
// no engine ran the waiting run).
func (e *Engine) pendingNotices(ctx context.Context) error {
	return e.deliverStored(ctx, []byte(prefixNotice))
}

// noticesFor delivers the stored notices addressed to one run.
func (e *Engine) noticesFor(runID string) error {
	return e.deliverStored(e.base, []byte(prefixNotice+runID+"/"))
}

func (e *Engine) deliverStored(ctx context.Context, prefix []byte) error {
	type kv struct{ k, v []byte }
	var found []kv
	err := e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(prefix, store.ScanOptions{}, func(k, v []byte) error {
			found = append(found, kv{k, v})
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, n := range found {
		e.deliverNotice(n.k, n.v)
	}
	return nil
}

// outcomeNotice is what a waiting step learns of an ended run.
func outcomeNotice(rec *RunRecord) noticeRecord {
	n := noticeRecord{Status: rec.Status, Output: rec.Output, Error: deref(rec.Error)}
	if n.Status != core.RunSucceeded {
		n.Error = fmt.Sprintf("child run %s (%s) %s", rec.ID, rec.Workflow, n.Status)
		if rec.Error != nil {
			n.Error += ": " + *rec.Error
		}
	}
	return n
}

// notifyWaiters writes, in the transaction that ends a run, a notice for
// every step attempt waiting for it, and removes their wait keys: a run
// that ends while its parent's process is down is never lost.
func notifyWaiters(tx store.Tx, id string, notice []byte) error {
	type waiter struct {
		key     []byte
		run     string
		index   int
		attempt int
	}
	var ws []waiter
	err := tx.Scan(waitPrefix(id), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		run, index, attempt, ok := decodeWaitKey(id, k)
		if ok {
			ws = append(ws, waiter{key: append([]byte(nil), k...), run: run, index: index, attempt: attempt})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range ws {
		var n noticeRecord
		if err := json.Unmarshal(notice, &n); err != nil {
			return err
		}
		n.Index, n.Attempt = w.index, w.attempt
		val, err := json.Marshal(&n)
		if err != nil {
			return err
		}
		if err := tx.Set(noticeKey(w.run, id, w.index, w.attempt), val); err != nil {
			return err
		}
		if err := tx.Delete(w.key); err != nil {
			return err
		}
	}
	return nil
}
