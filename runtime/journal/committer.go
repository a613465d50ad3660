package journal

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/flowscript/flowscript/store"
)

// A Commit is a group of writes that land together: one transition's
// state, its history events, a parent's notice, a child's creation. Only
// a commit too large for one transaction on its own is cut, between two
// of its ops (see op).
type Commit struct {
	ops []Op
	// next is the first op not yet written: the ops before it landed in
	// an earlier transaction
	next int
	// sub is the submission the commit came in: its outcome goes there
	sub *submission
	// stops are the flags of the runs whose transitions this commit
	// carries: once one of their commits fails, the flag is set and their
	// later commits are refused, so that nothing lands after a transition
	// that did not
	stops []*atomic.Bool
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
	// maxBatch bounds the commits in one transaction (the store's
	// limits, in filling, its writes and bytes)
	maxBatch int

	mu      sync.Mutex
	pending []*Commit
	writing bool
	closed  bool
	idle    *sync.Cond // signalled when writing ends

	// spare is the queue's other array: a batch keeps the queue's array
	// while it is written, the queue goes on in this one
	spare []*Commit
	// filling is the transaction being filled; fillTx its fill, bound
	// once
	filling filling
	fillTx  func(tx store.Tx) error

	// transactions and commits count what was written, for Stats.
	transactions, commits atomic.Uint64
}

func newCommitter(st store.Store) *committer {
	c := &committer{st: st, maxBatch: 512}
	c.idle = sync.NewCond(&c.mu)
	c.filling.limits = st.Limits()
	c.fillTx = c.filling.fill
	return c
}

// submit queues writes; wait on the returned commit for their outcome.
// Each run's commits land in the order they were submitted.
func (c *committer) submit(apply func(tx *Tx) error, stops ...*atomic.Bool) *Commit {
	return c.submitAll([][]Op{{Func(apply)}}, stops...)[0]
}

// submitAll queues commits, one per list of ops, in order; nothing of
// another submitter comes between them.
//
// The commits of one call are one submission, which collects their
// outcomes as they are written: waitAll waits for all of them. A
// submission of one or two commits (most are) is one allocation.
func (c *committer) submitAll(units [][]Op, stops ...*atomic.Bool) []*Commit {
	s := &submission{left: len(units)}
	s.cond.L = &s.mu
	all, cms := s.few[:], s.list[:]
	if len(units) > len(s.few) {
		all, cms = make([]Commit, len(units)), make([]*Commit, len(units))
	}
	all, cms = all[:len(units)], cms[:len(units)]
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, u := range units {
		cm := &all[i]
		cm.ops, cm.sub, cm.stops = u, s, stops
		cms[i] = cm
		if c.closed {
			s.settle(ErrClosed)
			continue
		}
		c.pending = append(c.pending, cm)
	}
	return cms
}

// A submission is what one submitAll queued, and the outcomes of its
// commits as they are written, in whatever order.
type submission struct {
	mu   sync.Mutex
	cond sync.Cond // on mu: signalled when the last outcome comes
	left int       // the commits whose outcome has not come
	err  error     // the first error among the outcomes
	// the storage of a submission of a few commits (a decision and what
	// follows it)
	few  [2]Commit
	list [2]*Commit
}

// settle takes the outcome of one of the submission's commits.
func (s *submission) settle(err error) {
	s.mu.Lock()
	if err != nil && s.err == nil {
		s.err = err
	}
	s.left--
	if s.left == 0 {
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

// wait returns the first error of the submission's commits once every
// one of them is written.
func (s *submission) wait() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.left > 0 {
		s.cond.Wait()
	}
	return s.err
}

// waitAll waits for every commit of one submitAll and returns the first
// error among them.
func (c *committer) waitAll(cms []*Commit) error {
	if len(cms) == 0 {
		return nil
	}
	return c.wait(cms[len(cms)-1])
}

// wait returns the first error of cm's submitAll once all its commits
// are committed (and synced, in durable mode). If no transaction is
// being written, the caller writes the queued commits itself (the ones
// before cm, of its own submission or of others, with it) and hands what
// is queued after cm to a goroutine. It must be called without any run's
// lock held.
func (c *committer) wait(cm *Commit) error {
	c.mu.Lock()
	if !c.writing && len(c.pending) > 0 {
		c.writing = true
		c.lead(cm)
	}
	c.mu.Unlock()
	return cm.sub.wait()
}

// lead writes the queued commits, a batch per transaction, until own is
// written (or, when own is nil, until none is left), then hands the rest
// to a new goroutine. c.mu is held on entry and on return, and c.writing
// is set on entry.
func (c *committer) lead(own *Commit) {
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
		batch := c.pending[:n]
		c.pending = append(c.spare[:0], c.pending[n:]...)
		c.spare = nil
		c.mu.Unlock()
		c.commit(batch)
		c.mu.Lock()
		clear(batch)
		c.spare = batch[:0]
	}
	c.writing = false
	c.idle.Broadcast()
}

// write submits and waits.
func (c *committer) write(apply func(tx *Tx) error) error {
	return c.wait(c.submit(apply))
}

// close refuses new commits and the queued ones, and waits for the
// transaction being written.
func (c *committer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, cm := range c.pending {
		cm.sub.settle(ErrClosed)
	}
	c.pending = nil
	for c.writing {
		c.idle.Wait()
	}
}

// commit writes a batch, in as few transactions as the store's limits
// allow. If a transaction fails as a whole (too large, or one commit's own
// check failed) its commits are split, so that one bad commit fails only
// itself; a failed guard (a fenced store this process no longer owns)
// fails them all.
func (c *committer) commit(batch []*Commit) {
	// commits of runs that already lost a commit are refused
	live := batch[:0] // in place: the batch is the caller's own
	for _, cm := range batch {
		if cm.stopped() {
			cm.written = true
			cm.sub.settle(ErrStopped)
			continue
		}
		live = append(live, cm)
	}
	batch = live
	for len(batch) > 0 {
		n, err := c.commitPrefix(batch)
		if err != nil && len(batch) > 1 && !errors.Is(err, store.ErrClosed) && !errors.Is(err, store.ErrGuardFailed) {
			mid := len(batch) / 2
			c.commit(batch[:mid])
			c.commit(batch[mid:])
			return
		}
		if err != nil {
			n = len(batch)
			for _, cm := range batch {
				for _, s := range cm.stops {
					s.Store(true)
				}
			}
		} else {
			c.transactions.Add(1)
			c.commits.Add(uint64(n))
		}
		for _, cm := range batch[:n] {
			cm.written = true
			cm.ops = nil // written: garbage now
			cm.sub.settle(err)
		}
		batch = batch[n:]
		if len(batch) > 0 && batch[0].stopped() {
			// a commit cut in two whose first part failed
			c.commit(batch)
			return
		}
	}
}

// errCut ends a transaction that a commit other than its first would
// take past the limits: it is written again without that commit.
type errCut struct{ at int }

func (errCut) Error() string { return "journal: transaction cut" }

// commitPrefix writes, in one transaction, the commits of batch that fit
// in the store's limits (always at least part of the first), and returns
// how many were written whole. A first commit too large on its own is
// written up to the op that fills the transaction (one op may pass the
// limits: they are a safe fraction of what the store takes); the rest of
// it comes next.
func (c *committer) commitPrefix(batch []*Commit) (int, error) {
	f := &c.filling
	f.batch, f.limit = batch, len(batch)
	defer func() { f.batch = nil }()
	for {
		err := c.st.Update(context.Background(), c.fillTx)
		if at, ok := cutAt(err); ok {
			f.limit = at
			continue
		}
		if err == nil && f.cut > 0 {
			batch[0].next = f.cut
		}
		return f.n, err
	}
}

// cutAt is where an errCut cut a transaction.
func cutAt(err error) (int, bool) {
	var ec errCut
	if err == nil || !errors.As(err, &ec) {
		return 0, false
	}
	return ec.at, true
}

// filling is the transaction commitPrefix is filling: one, reused (only
// the writing goroutine fills), so that a transaction costs the committer
// no allocation of its own.
type filling struct {
	limits store.Limits
	// batch[:limit] is what the transaction may take; n is how many
	// commits it took whole, cut the first op of batch[0] it left out
	batch       []*Commit
	limit, n    int
	cut         int
	transaction countingTx
}

// fill writes into tx the commits of f.batch[:f.limit] that fit.
func (f *filling) fill(tx store.Tx) error {
	batch := f.batch[:f.limit]
	if p, ok := tx.(prefetchTx); ok {
		if err := p.Prefetch(checkedKeys(batch)); err != nil {
			return err
		}
	}
	ct := &f.transaction
	*ct = countingTx{Tx: tx}
	f.n, f.cut = 0, 0
	// biggest is the largest commit in this transaction: it takes
	// no further commit once one more of that size would pass the
	// limits (one that passes them all the same cuts it short)
	var biggest size
	for i, cm := range batch {
		if i > 0 && ct.size().over(f.limits, biggest) {
			break
		}
		before := ct.size()
		for j := cm.next; j < len(cm.ops); j++ {
			if err := cm.ops[j].apply(ct); err != nil {
				return err
			}
			if !ct.size().over(f.limits, size{}) {
				continue
			}
			if i > 0 {
				return errCut{at: i}
			}
			if j+1 < len(cm.ops) {
				f.cut = j + 1
				return ct.writePacks()
			}
		}
		biggest = biggest.max(ct.size().minus(before))
		f.n = i + 1
	}
	// the history packs, each written once its last event is in
	return ct.writePacks()
}

// prefetchTx is a transaction that reads many keys in one go ahead of
// the Gets that follow (natsstore: one request instead of one per key).
type prefetchTx interface {
	Prefetch(keys [][]byte) error
}

// checkedKeys are the keys whose stored records the ops of batch read
// before replacing them (PutStep, PutRun: state only moves forward).
func checkedKeys(batch []*Commit) [][]byte {
	var keys [][]byte
	for _, cm := range batch {
		for j := cm.next; j < len(cm.ops); j++ {
			if o := &cm.ops[j]; o.fn == nil && o.forward.kind != noCheck {
				keys = append(keys, o.key)
			}
		}
	}
	return keys
}

// ErrStopped refuses the commits of a run after one of its commits
// failed.
var ErrStopped = errors.New("an earlier transition of this run could not be committed")

// ErrClosed refuses commits once the journal is closed.
var ErrClosed = errors.New("the engine is shutting down")

func (cm *Commit) stopped() bool {
	for _, s := range cm.stops {
		if s.Load() {
			return true
		}
	}
	return false
}
