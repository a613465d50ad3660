package storetest

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/flowscript/flowscript/store"
)

var durableTests = []durableTest{
	{"SurvivesReopen", testSurvivesReopen},
	{"LargeValuesSurviveReopen", testLargeValuesSurvive},
	{"WatchAfterReopen", testWatchAfterReopen},
}

func testSurvivesReopen(t *testing.T, open func() store.Store) {
	s := open()
	for i := 0; i < 200; i++ {
		Set(t, s, fmt.Sprintf("k/%03d", i), fmt.Sprintf("v%d", i))
	}
	for i := 0; i < 200; i += 3 {
		del(t, s, fmt.Sprintf("k/%03d", i))
	}
	Set(t, s, "empty", "")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for round := 0; round < 2; round++ {
		s = open()
		for i := 0; i < 200; i++ {
			k := fmt.Sprintf("k/%03d", i)
			if i%3 == 0 {
				wantAbsent(t, s, k)
			} else {
				WantValue(t, s, k, fmt.Sprintf("v%d", i))
			}
		}
		WantValue(t, s, "empty", "")
		if got := scan(t, s, "k/", store.ScanOptions{KeysOnly: true}); len(got) != 133 {
			t.Fatalf("after reopening, Scan sees %d keys; want 133", len(got))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func testLargeValuesSurvive(t *testing.T, open func() store.Store) {
	s := open()
	values := map[string][]byte{}
	for i, size := range []int{0, 1, 1 << 10, 100 << 10, 1 << 20, 3 << 20} {
		v := bytes.Repeat([]byte{byte('a' + i)}, size)
		k := fmt.Sprintf("large/%d", size)
		values[k] = v
		err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Set([]byte(k), v) })
		if err != nil {
			t.Fatalf("Set %d bytes: %v", size, err)
		}
	}
	// Overwrite some, so that the log holds garbage.
	for i := 0; i < 5; i++ {
		v := bytes.Repeat([]byte{'z'}, 200<<10)
		values["large/102400"] = v
		err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Set([]byte("large/102400"), v) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	err := s.View(context.Background(), func(tx store.Tx) error {
		for k, want := range values {
			got, err := tx.Get([]byte(k))
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %d bytes back, want %d", k, len(got), len(want))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testWatchAfterReopen(t *testing.T, open func() store.Store) {
	s := open()
	Set(t, s, "w/1", "before")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	ev := startWatch(t, s, "w/")
	Set(t, s, "w/2", "after")
	wantEvent(t, ev.next(t), "w/2", "after", false)
	ev.none(t)
	WantValue(t, s, "w/1", "before")
}
