package runtime

import (
	"context"
	"errors"
	"sync"
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
	record := func(name string) func(store.Tx) error {
		return func(tx store.Tx) error {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			return tx.Set([]byte("k/"+name), []byte(name))
		}
	}
	a, b, d := c.submit(record("a")), c.submit(record("b")), c.submit(record("d"))
	if err := c.wait(a); err != nil {
		t.Fatal(err)
	}
	// b and d are written by the goroutine a's waiter handed them to
	for _, cm := range []*commit{b, d} {
		if err := <-cm.done; err != nil {
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
				err := c.write(func(tx store.Tx) error {
					prev, err := tx.Get(key)
					if err != nil && !errors.Is(err, store.ErrNotFound) {
						return err
					}
					if len(prev) != i {
						return errors.New("a commit landed out of order")
					}
					return tx.Set(key, make([]byte, i+1))
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
	queued := c.submit(func(tx store.Tx) error { return tx.Set([]byte("q"), nil) })
	c.close()
	if err := c.wait(queued); err != errEngineClosed {
		t.Fatalf("queued commit: %v, want errEngineClosed", err)
	}
	if err := c.write(func(tx store.Tx) error { return nil }); err != errEngineClosed {
		t.Fatalf("commit after close: %v, want errEngineClosed", err)
	}
	err := st.View(context.Background(), func(tx store.Tx) error {
		_, err := tx.Get([]byte("q"))
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused commit: %v, want it absent", err)
	}
}
