package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/flowscript/flowscript/store"
)

// A commit is a group of writes that must land together: one transition's
// state, its history events and, later, a parent's notice.
type commit struct {
	apply func(tx store.Tx) error
	done  chan error
	// runs are the runs whose transitions this commit carries: once one
	// of their commits fails, their later commits are refused, so that
	// nothing lands after a transition that did not
	runs []*activeRun
	// written is set, by whoever wrote the commit, once its outcome is
	// known
	written bool
}

// committer writes transitions. Whoever waits for a commit while no
// transaction is being written writes every commit queued so far (its own
// among them) in one transaction, then the ones queued meanwhile, until
// none is left; the others wait for it. So one fsync acknowledges many
// transitions of many runs, and a lone chain of steps commits on its own
// goroutine without waking another.
type committer struct {
	st store.Store
	// maxBatch bounds the commits in one transaction.
	maxBatch int

	mu      sync.Mutex
	pending []*commit
	writing bool
	closed  bool
	idle    *sync.Cond // signalled when writing ends

	// transactions and commits count what was written, for Stats.
	transactions, commits atomic.Uint64
}

func newCommitter(st store.Store) *committer {
	c := &committer{st: st, maxBatch: 512}
	c.idle = sync.NewCond(&c.mu)
	return c
}

// submit queues writes; wait on the returned commit for their outcome.
// Each run's commits land in the order they were submitted.
func (c *committer) submit(apply func(tx store.Tx) error, runs ...*activeRun) *commit {
	cm := &commit{apply: apply, done: make(chan error, 1), runs: runs}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cm.done <- errEngineClosed
		return cm
	}
	c.pending = append(c.pending, cm)
	return cm
}

// wait returns the outcome of a submitted commit once the transaction
// carrying it is committed (and synced, in durable mode). If no
// transaction is being written, the caller writes the queued commits
// itself, and hands what is queued after its own to a goroutine. It must
// be called without any run's lock held.
func (c *committer) wait(cm *commit) error {
	c.mu.Lock()
	if !c.writing && len(c.pending) > 0 {
		c.writing = true
		c.lead(cm)
	}
	c.mu.Unlock()
	return <-cm.done
}

// lead writes the queued commits, a batch per transaction, until own is
// written (or, when own is nil, until none is left), then hands the rest
// to a new goroutine. c.mu is held on entry and on return, and c.writing
// is set on entry.
func (c *committer) lead(own *commit) {
	for len(c.pending) > 0 && !c.closed {
		if own != nil && own.written {
			go func() {
				c.mu.Lock()
				c.lead(nil)
				c.mu.Unlock()
			}()
			return
		}
		n := min(len(c.pending), c.maxBatch)
		batch := append([]*commit(nil), c.pending[:n]...)
		c.pending = append(c.pending[:0], c.pending[n:]...)
		c.mu.Unlock()
		c.commit(batch)
		c.mu.Lock()
	}
	c.writing = false
	c.idle.Broadcast()
}

// write submits and waits.
func (c *committer) write(apply func(tx store.Tx) error) error {
	return c.wait(c.submit(apply))
}

// close refuses new commits and the queued ones, and waits for the
// transaction being written.
func (c *committer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, cm := range c.pending {
		cm.done <- errEngineClosed
	}
	c.pending = nil
	for c.writing {
		c.idle.Wait()
	}
}

// commit writes a batch in one transaction. If the batch fails as a whole
// (too large, or one commit's own check failed) it is split, so that one
// bad commit fails only itself.
func (c *committer) commit(batch []*commit) {
	// commits of runs that already lost a commit are refused
	live := batch[:0:0]
	for _, cm := range batch {
		if cm.stopped() {
			cm.written = true
			cm.done <- errRunStopped
			continue
		}
		live = append(live, cm)
	}
	if batch = live; len(batch) == 0 {
		return
	}
	err := c.st.Update(context.Background(), func(tx store.Tx) error {
		for _, cm := range batch {
			if err := cm.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 && !errors.Is(err, store.ErrClosed) {
		mid := len(batch) / 2
		c.commit(batch[:mid])
		c.commit(batch[mid:])
		return
	}
	if err == nil {
		c.transactions.Add(1)
		c.commits.Add(uint64(len(batch)))
	} else {
		for _, cm := range batch {
			for _, ar := range cm.runs {
				ar.stopped.Store(true)
			}
		}
	}
	for _, cm := range batch {
		cm.written = true
		cm.done <- err
	}
}

// errRunStopped refuses the commits of a run after one of its commits
// failed.
var errRunStopped = errors.New("an earlier transition of this run could not be committed")

func (cm *commit) stopped() bool {
	for _, ar := range cm.runs {
		if ar.stopped.Load() {
			return true
		}
	}
	return false
}
