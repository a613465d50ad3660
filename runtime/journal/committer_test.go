package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

func memStore(t *testing.T) store.Store {
	t.Helper()
	s, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The first waiter writes what is queued; once its own commit is written
// it leaves the rest to a goroutine, and every commit lands, in order.
func TestCommitterWaiterWritesAndHandsOn(t *testing.T) {
	c := newCommitter(memStore(t))
	c.maxBatch = 1 // one commit per transaction: the waiter's own comes first
	var mu sync.Mutex
	var order []string
	record := func(name string) func(*Tx) error {
		return func(tx *Tx) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return tx.tx.Set([]byte("k/"+name), []byte(name))
		}
	}
	a, b, d := c.submit(record("a")), c.submit(record("b")), c.submit(record("d"))
	if err := c.wait(a); err != nil {
		t.Fatal(err)
	}
	// b and d are written by the goroutine a's waiter handed them to
	for _, cm := range []*Commit{b, d} {
		if err := cm.sub.wait(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != 3 || order[0] != "a" || order[1] != "b" || order[2] != "d" {
		t.Fatalf("commits written in order %v, want [a b d]", order)
	}
	if n := c.transactions.Load(); n != 3 {
		t.Fatalf("%d transactions, want 3", n)
	}
	c.close()
}

// Many goroutines commit at once: commits share transactions, and each
// goroutine's commits land in the order it made them.
func TestCommitterConcurrentWaitersShareTransactions(t *testing.T) {
	st := memStore(t)
	c := newCommitter(st)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []byte{'w', byte(w)}
			for i := range each {
				err := c.write(func(tx *Tx) error {
					prev, err := tx.tx.Get(key)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if len(prev) != i {
						return errors.New("a commit landed out of order")
					}
					return tx.tx.Set(key, make([]byte, i+1))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if tx, cm := c.transactions.Load(), c.commits.Load(); cm != writers*each || tx > cm {
		t.Fatalf("%d commits in %d transactions, want %d commits", cm, tx, writers*each)
	}
	c.close()
}

// close refuses what is queued and what comes later.
func TestCommitterCloseRefusesQueuedCommits(t *testing.T) {
	st := memStore(t)
	c := newCommitter(st)
	queued := c.submit(func(tx *Tx) error { return tx.tx.Set([]byte("q"), nil) })
	c.close()
	if err := c.wait(queued); err != ErrClosed {
		t.Fatalf("queued commit: %v, want ErrClosed", err)
	}
	if err := c.write(func(tx *Tx) error { return nil }); err != ErrClosed {
		t.Fatalf("commit after close: %v, want ErrClosed", err)
	}
	err := st.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Get([]byte("q"))
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused commit: %v, want it absent", err)
	}
}

// limitedStore reports small limits, so that commits must be split.
type limitedStore struct {
	store.Store
	limits store.Limits
}

func (s limitedStore) Limits() store.Limits { return s.limits }

// Commits are packed into transactions by the store's limits, whole, and
// land in order; a commit larger than the limits on its own is cut
// between its ops.
func TestCommitterSizesTransactionsByLimits(t *testing.T) {
	st := limitedStore{memStore(t), store.Limits{MaxWrites: 10, MaxBytes: 1 << 20}}
	c := newCommitter(st)
	defer c.close()
	// 20 commits of 3 writes each, then one of 25 writes
	var units [][]Op
	for i := range 20 {
		var u []Op
		for j := range 3 {
			u = append(u, setOp([]byte(fmt.Sprintf("k/%02d/%d", i, j)), []byte("v")))
		}
		units = append(units, u)
	}
	var big []Op
	for j := range 25 {
		big = append(big, setOp([]byte(fmt.Sprintf("k/big/%02d", j)), []byte("v")))
	}
	units = append(units, big)
	before := c.transactions.Load()
	if err := c.waitAll(c.submitAll(units)); err != nil {
		t.Fatal(err)
	}
	txs := c.transactions.Load() - before
	// 60 writes at 3 per commit, at most 10 per transaction: 3 commits a
	// transaction, 7 transactions; the big one is cut in 3 (a transaction
	// may pass the limit by its last op: 11+11+3)
	if txs != 10 {
		t.Fatalf("%d transactions; want 10 (7 for the small commits, 3 for the big one)", txs)
	}
	n := 0
	err := st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("k/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			n++
			return nil
		})
	})
	if err != nil || n != 85 {
		t.Fatalf("%d keys written (%v); want 85", n, err)
	}
}

// recordingStore records the keys each committed transaction wrote.
type recordingStore struct {
	limitedStore
	cur       []string
	committed [][]string
}

func (s *recordingStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	err := s.limitedStore.Update(ctx, func(tx store.Tx) error {
		s.cur = nil
		return fn(recordingTx{tx, s})
	})
	if err == nil {
		s.committed = append(s.committed, s.cur)
	}
	return err
}

type recordingTx struct {
	store.Tx
	s *recordingStore
}

func (t recordingTx) Set(key, value []byte) error {
	t.s.cur = append(t.s.cur, string(key))
	return t.Tx.Set(key, value)
}

// A commit that passes the limits in a transaction that already holds
// others is not cut: the transaction is written without it, and it comes
// whole in the next.
func TestCommitterKeepsCommitsWhole(t *testing.T) {
	st := &recordingStore{limitedStore: limitedStore{memStore(t), store.Limits{MaxWrites: 10, MaxBytes: 1 << 20}}}
	c := newCommitter(st)
	defer c.close()
	set := func(key string) Op { return setOp([]byte(key), nil) }
	small := []Op{set("a1"), set("a2")}
	var large []Op
	for j := range 9 {
		large = append(large, set(fmt.Sprintf("b%d", j)))
	}
	if err := c.waitAll(c.submitAll([][]Op{small, large, small})); err != nil {
		t.Fatal(err)
	}
	// the large commit (9 writes) does not fit after the small one (2):
	// it lands whole in a transaction of its own
	want := [][]string{{"a1", "a2"}, {"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"}, {"a1", "a2"}}
	if fmt.Sprint(st.committed) != fmt.Sprint(want) {
		t.Fatalf("transactions %v; want %v", st.committed, want)
	}
}

// The commits of one submitAll share a channel: waitAll returns once all
// of them are written, in however many transactions, with the error of
// the one that failed, and the others land.
func TestCommitterWaitAllWaitsForEveryCommitOfASubmit(t *testing.T) {
	st := memStore(t)
	c := newCommitter(st)
	c.maxBatch = 2 // the five commits take three transactions at least
	set := func(k string) []Op { return []Op{setOp([]byte(k), []byte(k))} }
	bad := []Op{Func(func(tx *Tx) error { return errors.New("refused") })}
	cms := c.submitAll([][]Op{set("a"), set("b"), bad, set("d"), set("e")})
	if err := c.waitAll(cms); err == nil || err.Error() != "refused" {
		t.Fatalf("waitAll: %v, want the failed commit's error", err)
	}
	for i, cm := range cms {
		if !cm.written {
			t.Errorf("commit %d is not written when waitAll returns", i)
		}
	}
	err := st.View(context.Background(), func(tx store.Tx) error {
		for _, k := range []string{"a", "b", "d", "e"} {
			if _, err := tx.Get([]byte(k)); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.close()
}

// prefetchingStore is a real store whose transactions take Prefetch (as
// natsstore's do), recording the keys each transaction prefetched; fail
// makes Prefetch fail.
type prefetchingStore struct {
	store.Store
	fetched [][]string
	fail    error
}

func (s *prefetchingStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(prefetchingTx{tx, s}) })
}

type prefetchingTx struct {
	store.Tx
	s *prefetchingStore
}

func (t prefetchingTx) Prefetch(keys [][]byte) error {
	var got []string
	for _, k := range keys {
		got = append(got, string(k))
	}
	t.s.fetched = append(t.s.fetched, got)
	return t.s.fail
}

// A transaction is offered, before its ops run, the keys whose stored
// records its ops check (PutStep, PutRun), all of them and only those:
// plain writes and Funcs read nothing ahead. A failing Prefetch fails
// the commits like a failing read, and stops their runs.
func TestCommitterPrefetchesCheckedKeys(t *testing.T) {
	st := &prefetchingStore{Store: memStore(t)}
	c := newCommitter(st)
	defer c.close()
	step := func(run string, i int) Op {
		op, err := PutStep(run, i, &StepRecord{ID: fmt.Sprintf("s%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	a, b := step("r1", 1), step("r2", 7)
	plain := setOp([]byte("k/plain"), []byte("v"))
	fn := Func(func(tx *Tx) error { return tx.tx.Set([]byte("k/fn"), nil) })
	if err := c.waitAll(c.submitAll([][]Op{{a, plain}, {fn, b}})); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([][]string{{string(a.key), string(b.key)}})
	if got := fmt.Sprint(st.fetched); got != want {
		t.Fatalf("prefetched %v; want %v", got, want)
	}

	st.fail = errors.New("prefetch failed")
	var stop atomic.Bool
	err := c.waitAll(c.submitAll([][]Op{{step("r3", 1)}}, &stop))
	if !errors.Is(err, st.fail) || !stop.Load() {
		t.Fatalf("commit with a failing Prefetch: %v, run stopped %v; want the Prefetch error and the run stopped", err, stop.Load())
	}
	if err := c.waitAll(c.submitAll([][]Op{{plain}}, &stop)); !errors.Is(err, ErrStopped) {
		t.Fatalf("the stopped run's next commit: %v; want ErrStopped", err)
	}
}
