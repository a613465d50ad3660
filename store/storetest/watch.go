package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
)

var watchTests = []test{
	{"WatchDeliversPrefixInCommitOrder", testWatchOrder},
	{"WatchConcurrentCommitsInOrder", testWatchConcurrentOrder},
	{"WatchDeletesAndEmptyValues", testWatchDeletes},
	{"WatchSkipsRolledBack", testWatchSkipsRolledBack},
	{"WatchReadyBeforeWork", testWatchReady},
	{"WatchNothingFromBefore", testWatchNothingFromBefore},
	{"WatchManyWatchers", testWatchMany},
	{"WatchCallbackMayUpdate", testWatchCallbackUpdates},
	{"WatchSlowCallbackDoesNotBlockWriters", testWatchSlowCallback},
	{"WatchCallbackErrorEndsWatch", testWatchFnError},
	{"WatchContextCancelReturnsNil", testWatchCancel},
}

func testWatchOrder(t *testing.T, s store.Store) {
	ev := startWatch(t, s, "w/")
	type op struct {
		key, value string
		deleted    bool
	}
	var want []op
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("w/%03d", 99-i) // descending keys: order must be commit order, not key order
		Set(t, s, k, strconv.Itoa(i), "x/"+k, "outside", "w", "outside", "v/z", "outside")
		want = append(want, op{k, strconv.Itoa(i), false})
		if i%10 == 9 {
			del(t, s, k, "x/"+k)
			want = append(want, op{k, "", true})
		}
	}
	Set(t, s, "w/end", "")
	want = append(want, op{"w/end", "", false})
	for _, w := range want {
		wantEvent(t, ev.next(t), w.key, w.value, w.deleted)
	}
	ev.none(t)
}

// testWatchConcurrentCommitsInOrder: 8 goroutines increment one counter;
// commit order is the counter's order, so a watch must see 1, 2, 3, ...
// with no gap and no repeat (a retried attempt's writes never show).
func testWatchConcurrentOrder(t *testing.T, s store.Store) {
	ev := startWatch(t, s, "n/")
	const goroutines, each = 8, 20
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				err := s.Update(context.Background(), func(tx store.Tx) error {
					n, err := increment(tx, []byte("n/counter"))
					if err != nil {
						return err
					}
					return tx.Set([]byte(fmt.Sprintf("n/log/%d", n)), []byte("x"))
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := 1
	for next <= goroutines*each {
		e := ev.next(t)
		if string(e.Key) != "n/counter" {
			continue
		}
		if string(e.Value) != strconv.Itoa(next) {
			t.Fatalf("counter event %q; want %d", e.Value, next)
		}
		next++
	}
}

func testWatchDeletes(t *testing.T, s store.Store) {
	Set(t, s, "d/old", "x")
	ev := startWatch(t, s, "d/")
	Set(t, s, "d/empty", "")
	del(t, s, "d/old")
	del(t, s, "d/never-existed")
	Set(t, s, "d/old", "back")
	wantEvent(t, ev.next(t), "d/empty", "", false)
	wantEvent(t, ev.next(t), "d/old", "", true)
	wantEvent(t, ev.next(t), "d/never-existed", "", true)
	wantEvent(t, ev.next(t), "d/old", "back", false)
}

func testWatchSkipsRolledBack(t *testing.T, s store.Store) {
	ev := startWatch(t, s, "r/")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Set([]byte("r/rolled-back"), []byte("x")); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	if err == nil {
		t.Fatal("Update: want the fn error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	_ = s.Update(ctx, func(tx store.Tx) error {
		cancel()
		return tx.Set([]byte("r/cancelled"), []byte("x"))
	})
	_ = s.Update(context.Background(), func(tx store.Tx) error {
		_ = tx.Set([]byte("r/refused"), []byte("x"))
		return tx.Set(nil, []byte("x")) // a refused write rolls back the rest
	})
	Set(t, s, "r/committed", "y")
	// Had any of the others been written, it would come first.
	wantEvent(t, ev.next(t), "r/committed", "y", false)
	ev.none(t)
}

// testWatchReady: work started after StartWatch returns (or after Ready
// is called) is never missed, however quickly it commits.
func testWatchReady(t *testing.T, s store.Store) {
	for i := 0; i < 20; i++ {
		prefix := fmt.Sprintf("ready/%02d/", i)
		ev := startWatch(t, s, prefix)
		Set(t, s, prefix+"work", "done")
		wantEvent(t, ev.next(t), prefix+"work", "done", false)
	}
	// The same with Watch and Ready directly.
	got := make(chan []store.Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		ended <- s.Watch(ctx, []byte("ready/direct/"), store.WatchOptions{Ready: func() { close(ready) }},
			func(evs []store.Event) error {
				got <- evs
				return errors.New("seen")
			})
	}()
	select {
	case <-ready:
	case err := <-ended:
		t.Fatalf("Watch ended before Ready: %v", err)
	}
	Set(t, s, "ready/direct/work", "done")
	evs := <-got
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	wantEvent(t, evs[0], "ready/direct/work", "done", false)
	if err := <-ended; err == nil || err.Error() != "seen" {
		t.Fatalf("Watch returned %v; want the callback's error", err)
	}
}

// testWatchNothingFromBefore: writes committed before Watch is called are
// not delivered, even to the first watch of a Store.
func testWatchNothingFromBefore(t *testing.T, s store.Store) {
	for i := 0; i < 50; i++ {
		Set(t, s, fmt.Sprintf("b/before/%02d", i), "x")
	}
	ev := startWatch(t, s, "b/")
	Set(t, s, "b/after", "y")
	wantEvent(t, ev.next(t), "b/after", "y", false)
	ev.none(t)
}

func testWatchMany(t *testing.T, s store.Store) {
	all := startWatch(t, s, "")
	m1 := startWatch(t, s, "m/")
	m2 := startWatch(t, s, "m/")
	m1a := startWatch(t, s, "m/1")
	Set(t, s, "m/1", "one", "m/2", "two", "z", "zed")
	// Events of one transaction may arrive in any order among themselves.
	collect := func(e *events, n int) map[string]store.Event {
		got := map[string]store.Event{}
		for i := 0; i < n; i++ {
			ev := e.next(t)
			got[string(ev.Key)] = ev
		}
		e.none(t)
		return got
	}
	a, b, c, d := collect(all, 3), collect(m1, 2), collect(m2, 2), collect(m1a, 1)
	if len(a) != 3 || len(b) != 2 || len(c) != 2 || len(d) != 1 {
		t.Fatalf("watches got %d, %d, %d, %d distinct keys; want 3, 2, 2, 1", len(a), len(b), len(c), len(d))
	}
	// Each watch owns its slices.
	b["m/1"].Value[0] = 'X'
	if string(c["m/1"].Value) != "one" || string(a["m/1"].Value) != "one" || string(d["m/1"].Value) != "one" {
		t.Fatalf("changing one watch's event changed another's")
	}
}

// testWatchCallbackUpdates: the callback may commit, even many times, and
// see its own commits come back.
func testWatchCallbackUpdates(t *testing.T, s store.Store) {
	const hops = 50
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := store.StartWatch(ctx, s, []byte("ping/"), func(evs []store.Event) error {
		for _, e := range evs {
			n, err := strconv.Atoi(string(e.Value))
			if err != nil {
				return err
			}
			if n == hops {
				return errDone
			}
			err = s.Update(ctx, func(tx store.Tx) error {
				return tx.Set([]byte("ping/"+strconv.Itoa(n+1)), []byte(strconv.Itoa(n+1)))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	Set(t, s, "ping/0", "0")
	select {
	case <-w.Done():
	case <-time.After(waitLimit):
		t.Fatalf("chain of %d commits from the callback did not finish", hops)
	}
	if err := w.Wait(); !errors.Is(err, errDone) {
		t.Fatalf("watch ended with %v", err)
	}
	WantValue(t, s, "ping/"+strconv.Itoa(hops), strconv.Itoa(hops))
}

var errDone = errors.New("done")

// testWatchSlowCallback: a callback that does not return does not stop
// writers; its events wait for it.
func testWatchSlowCallback(t *testing.T, s store.Store) {
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	w, err := store.StartWatch(context.Background(), s, []byte("slow/"), func(evs []store.Event) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			got = append(got, string(e.Key))
		}
		if len(got) == 3000 {
			return errDone
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < 3000; i++ {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set([]byte(fmt.Sprintf("slow/%04d", i)), big)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := w.Wait(); !errors.Is(err, errDone) {
		t.Fatalf("watch ended with %v", err)
	}
	for i, k := range got {
		if k != fmt.Sprintf("slow/%04d", i) {
			t.Fatalf("event %d is %q", i, k)
		}
	}
}

func testWatchFnError(t *testing.T, s store.Store) {
	errMine := errors.New("mine")
	w, err := store.StartWatch(context.Background(), s, []byte("e/"), func([]store.Event) error {
		return fmt.Errorf("wrapped: %w", errMine)
	})
	if err != nil {
		t.Fatal(err)
	}
	Set(t, s, "e/1", "x")
	if err := w.Wait(); !errors.Is(err, errMine) {
		t.Fatalf("Watch returned %v; want the callback's error", err)
	}
	// The Store goes on working.
	Set(t, s, "e/2", "y")
	WantValue(t, s, "e/2", "y")
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	w, err := store.StartWatch(ctx, s, nil, func([]store.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Wait(); err != nil {
		t.Fatalf("Watch after its context ended: %v; want nil", err)
	}
	// A context that has already ended: Watch returns nil at once.
	if err := s.Watch(ctx, nil, store.WatchOptions{}, func([]store.Event) error { return nil }); err != nil {
		t.Fatalf("Watch with an ended context: %v; want nil", err)
	}
	if _, err := store.StartWatch(ctx, s, nil, func([]store.Event) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("StartWatch with an ended context: %v; want context.Canceled", err)
	}
}
