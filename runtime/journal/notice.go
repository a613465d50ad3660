package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

// A Delivery is a stored notice: the outcome of run Run for the attempt
// of the step of run Waiter that waited for it.
type Delivery struct {
	Waiter, Run    string
	Index, Attempt int
	Notice         Notice
}

// Drop is the op that removes the delivered notice, in the transaction of
// the transition it causes.
func (d Delivery) Drop() Op { return DropNotice(d.Waiter, d.Run, d.Index, d.Attempt) }

// DropNotice removes the notice of run for a waiter's step attempt.
func DropNotice(waiter, run string, index, attempt int) Op {
	return deleteOp(noticeKey(waiter, run, index, attempt))
}

// parseNotice reads notice/<waiter>/<run>/<index:4><attempt:4>.
func parseNotice(key, value []byte) (Delivery, error) {
	rest := bytes.TrimPrefix(key, []byte(prefixNotice))
	i := bytes.IndexByte(rest, '/')
	if i < 0 || len(rest) < i+1+9 || rest[len(rest)-9] != '/' {
		return Delivery{}, fmt.Errorf("notice key %q does not name a waiter, a run and a step attempt", key)
	}
	n := len(rest)
	d := Delivery{
		Waiter: string(rest[:i]), Run: string(rest[i+1 : n-9]),
		Index: int(binary.BigEndian.Uint32(rest[n-8 : n-4])), Attempt: int(binary.BigEndian.Uint32(rest[n-4:])),
	}
	if err := json.Unmarshal(value, &d.Notice); err != nil {
		return d, fmt.Errorf("notice %q does not decode: %v", key, err)
	}
	return d, nil
}

// Notices returns the stored notices addressed to run waiter, or to every
// run when waiter is "". Those that do not decode come with their errors.
func (t *Tx) Notices(waiter string, fn func(Delivery, error)) error {
	prefix := []byte(prefixNotice)
	if waiter != "" {
		prefix = append(prefix, waiter+"/"...)
	}
	return t.tx.Scan(prefix, store.ScanOptions{}, func(k, v []byte) error {
		fn(parseNotice(k, v))
		return nil
	})
}

// OutcomeOf is what a waiting step learns of an ended run.
func OutcomeOf(rec *RunRecord) Notice {
	n := Notice{Status: rec.Status, Output: rec.Output}
	if rec.Error != nil {
		n.Error = *rec.Error
	}
	if n.Status != core.RunSucceeded {
		n.Error = fmt.Sprintf("child run %s (%s) %s", rec.ID, rec.Workflow, n.Status)
		if rec.Error != nil {
			n.Error += ": " + *rec.Error
		}
	}
	return n
}

// PutNotice writes the outcome of run for a waiter's step attempt.
func (t *Tx) PutNotice(waiter, run string, index, attempt int, n Notice) error {
	n.Index, n.Attempt = index, attempt
	val, err := json.Marshal(&n)
	if err != nil {
		return err
	}
	return t.tx.Set(noticeKey(waiter, run, index, attempt), val)
}

// notifyWaiters writes, in the transaction that ends a run, a notice for
// every step attempt waiting for it, and removes their wait keys: a run
// that ends while its parent's process is down is never lost.
func notifyWaiters(tx store.Tx, id string, n Notice) error {
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
	t := &Tx{tx: tx}
	for _, w := range ws {
		if err := t.PutNotice(w.run, id, w.index, w.attempt, n); err != nil {
			return err
		}
		if err := tx.Delete(w.key); err != nil {
			return err
		}
	}
	return nil
}
