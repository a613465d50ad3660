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
}

// committer is the one goroutine that writes transitions. It drains every
// commit queued while the previous transaction was being synced into the
// next transaction, so one fsync acknowledges many transitions of many runs.
type committer struct {
	st    store.Store
	queue chan *commit
	stop  chan struct{}
	wg    sync.WaitGroup
	// maxBatch bounds the commits in one transaction.
	maxBatch int
	// transactions and commits count what was written, for Stats.
	transactions, commits atomic.Uint64
}

func newCommitter(st store.Store) *committer {
	c := &committer{st: st, queue: make(chan *commit, 4096), stop: make(chan struct{}), maxBatch: 512}
	c.wg.Add(1)
	go c.loop()
	return c
}

// submit queues writes and returns a channel that yields the outcome once
// the transaction carrying them is committed (and synced, in durable mode).
func (c *committer) submit(apply func(tx store.Tx) error, runs ...*activeRun) <-chan error {
	cm := &commit{apply: apply, done: make(chan error, 1), runs: runs}
	select {
	case c.queue <- cm:
	case <-c.stop:
		cm.done <- errEngineClosed
	}
	return cm.done
}

// write submits and waits.
func (c *committer) write(apply func(tx store.Tx) error) error {
	return <-c.submit(apply)
}

func (c *committer) close() {
	close(c.stop)
	c.wg.Wait()
}

func (c *committer) loop() {
	defer c.wg.Done()
	batch := make([]*commit, 0, c.maxBatch)
	for {
		select {
		case cm := <-c.queue:
			batch = append(batch[:0], cm)
		case <-c.stop:
			c.drainClosed()
			return
		}
	fill:
		for len(batch) < c.maxBatch {
			select {
			case cm := <-c.queue:
				batch = append(batch, cm)
			default:
				break fill
			}
		}
		c.commit(batch)
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
		cm.done <- err
	}
}

func (c *committer) drainClosed() {
	for {
		select {
		case cm := <-c.queue:
			cm.done <- errEngineClosed
		default:
			return
		}
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
