package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/storetest"
)

// TestSnapshotTooOld: the stream keeps History revisions per key. A View
// whose key changed fewer times than that still reads its snapshot; past
// it, the read fails with ErrSnapshotTooOld instead of reading "absent".
func TestSnapshotTooOld(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast, History: 2})
	defer s.Close()
	storetest.Set(t, s, "k", "v0")
	storetest.Set(t, s, "p/a", "a0")
	err := s.View(context.Background(), func(tx store.Tx) error {
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "v0" {
			return fmt.Errorf("first Get = %q, %v", v, err)
		}
		storetest.Set(t, s, "k", "v1")
		storetest.Set(t, s, "p/a", "a1")
		storetest.Set(t, s, "p/b", "b1") // created after the snapshot: absent in it
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "v0" {
			return fmt.Errorf("Get after one change = %q, %v; want the snapshot's v0", v, err)
		}
		var got []string
		if err := tx.Scan([]byte("p/"), store.ScanOptions{}, func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			return nil
		}); err != nil {
			return err
		}
		if strings.Join(got, " ") != "p/a=a0" {
			return fmt.Errorf("Scan at the snapshot = %q; want p/a=a0", got)
		}
		storetest.Set(t, s, "k", "v2")
		storetest.Set(t, s, "p/a", "a2")
		if v, err := tx.Get([]byte("k")); !errors.Is(err, natsstore.ErrSnapshotTooOld) {
			return fmt.Errorf("Get after two changes with History 2 = %q, %v; want ErrSnapshotTooOld", v, err)
		}
		err := tx.Scan([]byte("p/"), store.ScanOptions{}, func(k, v []byte) error { return nil })
		if !errors.Is(err, natsstore.ErrSnapshotTooOld) {
			return fmt.Errorf("Scan after two changes with History 2: %v; want ErrSnapshotTooOld", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// In Update the lost snapshot is a conflict: fn runs again on a fresh one.
	calls := 0
	err = s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if _, err := tx.Get([]byte("p/b")); err != nil {
			return err
		}
		if calls == 1 {
			storetest.Set(t, s, "k", "v3")
			storetest.Set(t, s, "k", "v4")
		}
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		return tx.Set([]byte("k"), append(v, '+'))
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.WantValue(t, s, "k", "v4+")
}

// TestWatchWholeTransactions: every call of a watch's fn holds whole
// transactions, also when a transaction's last messages fall outside the
// watched prefix (and a guard adds a marker message outside every key).
func TestWatchWholeTransactions(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer s.Close()
	storetest.Set(t, s, "lease", "me")
	const txs = 150
	type seen struct {
		mu    sync.Mutex
		calls []map[int]int // per call: transaction -> events
		total int
	}
	watch := func(prefix string, per int) (*seen, *store.Watcher) {
		sn := &seen{}
		w, err := store.StartWatch(context.Background(), s, []byte(prefix), func(evs []store.Event) error {
			sn.mu.Lock()
			defer sn.mu.Unlock()
			call := map[int]int{}
			for _, ev := range evs {
				n, err := strconv.Atoi(string(ev.Value))
				if err != nil {
					return fmt.Errorf("event %q=%q", ev.Key, ev.Value)
				}
				call[n]++
			}
			sn.calls = append(sn.calls, call)
			sn.total += len(evs)
			if sn.total == txs*per {
				return errDone
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return sn, w
	}
	a, wa := watch("a/", 2)
	all, wall := watch("", 4)
	for i := 0; i < txs; i++ {
		v := []byte(strconv.Itoa(i))
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := guard(tx, "lease", "me"); err != nil {
				return err
			}
			for _, k := range []string{"a/%d/x", "a/%d/y", "b/%d", "z/%d"} {
				if err := tx.Set([]byte(fmt.Sprintf(k, i)), v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []*store.Watcher{wa, wall} {
		select {
		case <-w.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("watch did not see every transaction")
		}
		if err := w.Wait(); !errors.Is(err, errDone) {
			t.Fatalf("watch ended with %v", err)
		}
	}
	for name, c := range map[string]struct {
		sn  *seen
		per int
	}{"a/": {a, 2}, "everything": {all, 4}} {
		for i, call := range c.sn.calls {
			for tx, n := range call {
				if n != c.per {
					t.Errorf("watch of %s: call %d holds %d of transaction %d's %d events", name, i, n, tx, c.per)
				}
			}
		}
		t.Logf("watch of %s: %d transactions in %d calls", name, txs, len(c.sn.calls))
	}
}

var errDone = errors.New("done")

// TestReadsAreChecked: a key a transaction read and did not write is
// checked at commit, by a marker message when it fits in the batch, by
// the stream's last sequence when it does not. Either way a concurrent
// change to it makes the transaction run again.
func TestReadsAreChecked(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast, MaxBatch: 1000})
	defer s.Close()
	storetest.Set(t, s, "a", "1")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		v, err := tx.Get([]byte("a"))
		if err != nil {
			return err
		}
		if calls == 1 {
			storetest.Set(t, s, "a", "2")
		}
		return tx.Set([]byte("copy-of-a"), v)
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.WantValue(t, s, "copy-of-a", "2")

	// 1,200 keys read: too many to check one by one in a 1,000-message
	// batch. A write to any key since the snapshot, here an unrelated
	// one, then makes the commit run again.
	for half := 0; half < 2; half++ {
		if err := s.Update(context.Background(), func(tx store.Tx) error {
			for i := half * 600; i < (half+1)*600; i++ {
				if err := tx.Set([]byte(fmt.Sprintf("r/%04d", i)), []byte("x")); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	calls = 0
	err = s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		n := 0
		if err := tx.Scan([]byte("r/"), store.ScanOptions{KeysOnly: true}, func(k, v []byte) error {
			n++
			return nil
		}); err != nil {
			return err
		}
		if calls == 1 {
			storetest.Set(t, s, "unrelated", "x")
		}
		return tx.Set([]byte("count"), []byte(strconv.Itoa(n)))
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.WantValue(t, s, "count", "1200")
}
