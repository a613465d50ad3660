package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/storetest"
)

// wantUpdate checks what an Update returned (nil, or an error wrapping
// want) and how many times it ran its function.
func wantUpdate(t *testing.T, err error, calls int, want error, wantCalls int) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) || calls != wantCalls {
		t.Fatalf("Update = %v after %d calls; want %v after %d", err, calls, want, wantCalls)
	}
}

// guarder is the method store.Tx gains on another branch today.
type guarder interface {
	Guard(key, want []byte) error
}

func guard(tx store.Tx, key, want string) error {
	var w []byte
	if want != "" {
		w = []byte(want)
	}
	return tx.(guarder).Guard([]byte(key), w)
}

// ownerAndTaker opens two Stores on one new stream, each with its own
// connection, as two processes would; both close when the test ends.
func ownerAndTaker(t *testing.T) (owner, taker *natsstore.Store) {
	owner = openShared(t, natsstore.Options{Durability: natsstore.Fast})
	t.Cleanup(func() { owner.Close() })
	taker, err := natsstore.Open(natsstore.Options{Server: shared, Stream: owner.StreamName(), Durability: natsstore.Fast})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taker.Close() })
	return owner, taker
}

// TestGuardConcurrentWriter: another Store (another process, as far as
// JetStream can tell) takes the lease after this transaction guarded it
// and before it commits. The commit is refused with ErrGuardFailed, fn is
// not run again, and none of the transaction's writes lands.
func TestGuardConcurrentWriter(t *testing.T) {
	owner, taker := ownerAndTaker(t)
	storetest.Set(t, owner, "lease", "owner-1")

	calls := 0
	err := owner.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := guard(tx, "lease", "owner-1"); err != nil {
			return err
		}
		if calls == 1 {
			storetest.Set(t, taker, "lease", "owner-2")
		}
		for i := 0; i < 3; i++ {
			if err := tx.Set([]byte(fmt.Sprintf("work/%d", i)), []byte("done")); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, natsstore.ErrGuardFailed) {
		t.Fatalf("commit after the guarded key changed: %v; want ErrGuardFailed", err)
	}
	if errors.Is(err, store.ErrConflict) {
		t.Fatalf("a failed guard must not be reported as a conflict: %v", err)
	}
	if calls != 1 {
		t.Fatalf("fn ran %d times; a failed guard is not retried", calls)
	}
	for i := 0; i < 3; i++ {
		if v, ok := storetest.Get(t, owner, fmt.Sprintf("work/%d", i)); ok {
			t.Fatalf("work/%d = %q after a refused commit; the batch must land whole or not at all", i, v)
		}
	}
	storetest.WantValue(t, owner, "lease", "owner-2")
}

// TestGuardWrittenKey: a guard on a key the transaction also writes is
// carried by that write's own expected sequence.
func TestGuardWrittenKey(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer s.Close()
	storetest.Set(t, s, "lease", "epoch-1")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := guard(tx, "lease", "epoch-1"); err != nil {
			return err
		}
		if calls == 1 {
			storetest.Set(t, s, "lease", "epoch-9")
		}
		return tx.Set([]byte("lease"), []byte("epoch-2"))
	})
	wantUpdate(t, err, calls, natsstore.ErrGuardFailed, 1)
	storetest.WantValue(t, s, "lease", "epoch-9")
}

func TestGuardCompares(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer s.Close()
	storetest.Set(t, s, "lease", "owner-1")
	storetest.Set(t, s, "empty", "")
	ctx := context.Background()

	// Holds: the transaction commits.
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := guard(tx, "lease", "owner-1"); err != nil {
			return err
		}
		if err := guard(tx, "nobody", ""); err != nil {
			return err
		}
		return tx.Set([]byte("work"), []byte("done"))
	}); err != nil {
		t.Fatalf("Update with guards that hold: %v", err)
	}
	storetest.WantValue(t, s, "work", "done")

	// Does not hold: the transaction fails, even if fn ignores the error,
	// and is not retried.
	for _, c := range []struct{ key, want string }{
		{"lease", "owner-2"}, {"lease", ""}, {"nobody", "x"}, {"empty", ""},
	} {
		calls := 0
		err := s.Update(ctx, func(tx store.Tx) error {
			calls++
			_ = guard(tx, c.key, c.want)
			return tx.Set([]byte("refused"), []byte("x"))
		})
		if !errors.Is(err, natsstore.ErrGuardFailed) || calls != 1 {
			t.Errorf("Guard(%s, %q): Update = %v after %d calls; want ErrGuardFailed after 1", c.key, c.want, err, calls)
		}
	}
	if v, ok := storetest.Get(t, s, "refused"); ok {
		t.Fatalf("refused = %q after failed guards", v)
	}

	// Inside View a guard only compares.
	err := s.View(ctx, func(tx store.Tx) error {
		if err := guard(tx, "lease", "owner-1"); err != nil {
			return err
		}
		if err := guard(tx, "lease", "owner-2"); !errors.Is(err, natsstore.ErrGuardFailed) {
			return fmt.Errorf("mismatching guard in View: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGuardOtherConflictRetried: losing a race on an unguarded key is an
// ordinary conflict, retried with the guard checked again.
func TestGuardOtherConflictRetried(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer s.Close()
	storetest.Set(t, s, "lease", "owner-1")
	storetest.Set(t, s, "counter", "0")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := guard(tx, "lease", "owner-1"); err != nil {
			return err
		}
		v, err := tx.Get([]byte("counter"))
		if err != nil {
			return err
		}
		if calls == 1 {
			storetest.Set(t, s, "counter", "5")
		}
		return tx.Set([]byte("counter"), append(v, '+'))
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.WantValue(t, s, "counter", "5+")
}

// TestRefusedBatchLeavesNothing: a batch whose second message's expected
// sequence is stale is refused whole. The first attempt's writes never
// reach a watch; the retry's do, once.
func TestRefusedBatchLeavesNothing(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer s.Close()
	storetest.Set(t, s, "k1", "0")
	storetest.Set(t, s, "k2", "0")
	seen := make(chan store.Event, 100)
	w, err := store.StartWatch(context.Background(), s, []byte("k"), func(evs []store.Event) error {
		for _, ev := range evs {
			seen <- ev
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		for _, k := range []string{"k1", "k2"} {
			if _, err := tx.Get([]byte(k)); err != nil {
				return err
			}
		}
		if calls == 1 {
			storetest.Set(t, s, "k2", "other") // k1's expectation still holds, k2's no longer
		}
		v := []byte(fmt.Sprintf("attempt %d", calls))
		if err := tx.Set([]byte("k1"), v); err != nil {
			return err
		}
		return tx.Set([]byte("k2"), v)
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.Set(t, s, "k3", "end")
	var got []string
	for ev := range seen {
		got = append(got, string(ev.Key)+"="+string(ev.Value))
		if string(ev.Key) == "k3" {
			break
		}
	}
	if err := w.Stop(); err != nil {
		t.Fatal(err)
	}
	want := "k2=other k1=attempt 2 k2=attempt 2 k3=end"
	if fmt.Sprint(strings.Join(got, " ")) != want {
		t.Fatalf("watch saw %q; want %q", got, want)
	}
}

// TestFencedOwnerAfterTakeover: an owner commits work fenced on a lease,
// as fast as it can, while a taker rewrites the lease from another
// connection. In commit order (a watch of everything), no work of the
// owner lands after the takeover, and the owner ends on ErrGuardFailed.
func TestFencedOwnerAfterTakeover(t *testing.T) {
	owner, taker := ownerAndTaker(t)
	storetest.Set(t, owner, "lease", "owner-1")
	var order []string // written by the watch only, read after it ended
	w, err := store.StartWatch(context.Background(), owner, nil, func(evs []store.Event) error {
		for _, ev := range evs {
			order = append(order, string(ev.Key)+"="+string(ev.Value))
			if string(ev.Key) == "end" {
				return errDone
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	committed := make(chan int, 1000)
	ended := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for n := 0; ; n++ {
				err := owner.Update(context.Background(), func(tx store.Tx) error {
					if err := guard(tx, "lease", "owner-1"); err != nil {
						return err
					}
					return tx.Set([]byte(fmt.Sprintf("work/%d/%d", g, n)), []byte("owner-1"))
				})
				if err != nil {
					ended <- err
					return
				}
				committed <- 1
			}
		}()
	}
	for i := 0; i < 40; i++ {
		<-committed
	}
	storetest.Set(t, taker, "lease", "owner-2")
	for g := 0; g < 4; g++ {
		if err := <-ended; !errors.Is(err, natsstore.ErrGuardFailed) {
			t.Fatalf("the deposed owner's commit ended with %v; want ErrGuardFailed", err)
		}
	}
	storetest.Set(t, taker, "end", "x")
	if err := w.Wait(); !errors.Is(err, errDone) {
		t.Fatalf("watch ended with %v", err)
	}
	took, work := false, 0
	for _, e := range order {
		switch {
		case e == "lease=owner-2":
			took = true
		case strings.HasPrefix(e, "work/") && took:
			t.Fatalf("the owner's %s landed after the takeover; commit order: %q", e, order)
		case strings.HasPrefix(e, "work/"):
			work++
		}
	}
	if !took || work < 40 {
		t.Fatalf("watch saw the takeover %v and %d works; want the takeover and at least 40", took, work)
	}
	t.Logf("%d fenced commits before the takeover", work)
}
