package badgerstore

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
)

// TestWatchIgnoresValueLogRewrites: value-log garbage collection moves
// live values by writing them again, and Badger publishes those writes to
// subscribers (with their original versions). They are not commits, and a
// watch must not deliver them.
func TestWatchIgnoresValueLogRewrites(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Durability: Fast, ValueLogGCInterval: -1, valueLogFileSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	got := make(chan store.Event, 1000)
	w, err := store.StartWatch(ctx, s, []byte("gc/"), func(evs []store.Event) error {
		for _, e := range evs {
			got <- e
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	value := bytes.Repeat([]byte("v"), 100<<10)
	set := func(key string) {
		t.Helper()
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte(key), value) }); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"gc/keep"}
	// gc/keep stays live in the first log file, which the overwrites of
	// five rounds (10 MiB over 2 MiB files) then fill with garbage.
	set("gc/keep")
	for round := 0; round < 5; round++ {
		for i := 0; i < 20; i++ {
			k := fmt.Sprintf("gc/%d", i%4)
			set(k)
			want = append(want, k)
		}
		// Dropping a prefix flushes the memtable to a table.
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte("flush"), nil) }); err != nil {
			t.Fatal(err)
		}
		if err := s.db.DropPrefix([]byte("flush")); err != nil {
			t.Fatal(err)
		}
	}
	// Compaction of level 0, which starts by itself with this many
	// tables, records how much of each log file is garbage.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		compacted := false
		for _, ti := range s.db.Tables() {
			compacted = compacted || ti.Level > 0
		}
		if compacted {
			break
		}
		if time.Now().After(deadline) {
			t.Skipf("Badger did not compact level 0; nothing to check: %+v", s.db.Tables())
		}
	}
	rewrites := 0
	for s.db.RunValueLogGC(0.1) == nil {
		rewrites++
	}
	if rewrites == 0 {
		t.Skip("Badger rewrote no value log file; nothing to check")
	}
	set("gc/end")
	want = append(want, "gc/end")
	for i, k := range want {
		select {
		case e := <-got:
			if string(e.Key) != k {
				t.Fatalf("event %d is %q, want %q (after %d value log rewrites)", i, e.Key, k, rewrites)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d (%q) never came", i, k)
		}
	}
	select {
	case e := <-got:
		t.Fatalf("extra event %q", e.Key)
	default:
	}
	t.Logf("%d value log files rewritten", rewrites)
}
