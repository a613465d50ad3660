package journal

import (
	"context"
	"sync/atomic"

	"github.com/flowscript/flowscript/store"
)

// ErrNotFound is returned, wrapped, for a record that is not stored.
var ErrNotFound = store.ErrNotFound

// Journal is the engine's persistence on a store: every read and write of
// the runtime goes through it.
type Journal struct {
	st store.Store
	c  *committer
}

// New opens a journal on a store. The caller keeps ownership of the store
// and closes it after the journal.
func New(st store.Store) *Journal {
	return &Journal{st: st, c: newCommitter(st)}
}

// View runs fn in a read-only transaction.
func (j *Journal) View(ctx context.Context, fn func(tx *Tx) error) error {
	return j.st.View(ctx, func(tx store.Tx) error { return fn(&Tx{tx: tx}) })
}

// Update runs fn in a transaction of its own, outside the committer (for
// writes that no transition depends on: definitions).
func (j *Journal) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return j.st.Update(ctx, func(tx store.Tx) error { return fn(&Tx{tx: tx}) })
}

// Submit queues commits, one per list of ops, in order; nothing of another
// submitter comes between them, and each run's commits land in the order
// they were submitted. stops are the flags of the runs the commits carry
// transitions of: a failed commit sets them, and a commit of a run whose
// flag is set is refused with ErrStopped.
func (j *Journal) Submit(units [][]Op, stops ...*atomic.Bool) []*Commit {
	return j.c.submitAll(units, stops...)
}

// Wait waits for the commits of one Submit, all of them (they share the
// channel their outcomes come on), and returns the first error among
// them. It must be called without any run's lock held: the first waiter
// writes for everybody queued.
func (j *Journal) Wait(cms []*Commit) error { return j.c.waitAll(cms) }

// Write submits fn as a commit of its own and waits for it.
func (j *Journal) Write(fn func(tx *Tx) error) error { return j.c.write(fn) }

// Close refuses new commits and the queued ones (ErrClosed), and waits for
// the transaction being written.
func (j *Journal) Close() { j.c.close() }

// Stats counts the transactions written and the commits they carried.
func (j *Journal) Stats() (transactions, commits uint64) {
	return j.c.transactions.Load(), j.c.commits.Load()
}

// WatchNotices calls fn, on the watch's goroutine, with every notice
// written from now on (and those stored when it starts, see
// store.StartWatch); a notice that does not decode comes with its error.
// stop ends the watch.
func (j *Journal) WatchNotices(ctx context.Context, fn func(Delivery, error)) (stop func() error, err error) {
	w, err := store.StartWatch(ctx, j.st, []byte(prefixNotice), func(events []store.Event) error {
		for _, ev := range events {
			if !ev.Deleted {
				fn(parseNotice(ev.Key, ev.Value))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w.Stop, nil
}
