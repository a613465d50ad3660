package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/flowscript/flowscript/store"
)

var basicTests = []test{
	{"GetSetDelete", testGetSetDelete},
	{"GetMissingIsErrNotFound", testGetMissing},
	{"EmptyValueIsNotAbsent", testEmptyValue},
	{"ReadYourOwnWrites", testReadYourWrites},
	{"SlicesBelongToCaller", testSlicesBelongToCaller},
	{"ViewIsReadOnly", testViewIsReadOnly},
	{"ViewIsSnapshot", testViewIsSnapshot},
	{"ReservedKeysRefused", testReservedKeys},
	{"BinaryKeysAndValues", testBinaryKeys},
}

func testGetSetDelete(t *testing.T, s store.Store) {
	Set(t, s, "a", "1", "b", "2")
	WantValue(t, s, "a", "1")
	WantValue(t, s, "b", "2")
	Set(t, s, "a", "one")
	WantValue(t, s, "a", "one")
	del(t, s, "a")
	wantAbsent(t, s, "a")
	WantValue(t, s, "b", "2")
	// Deleting an absent key is not an error.
	del(t, s, "a", "never-written")
	wantAbsent(t, s, "a")
}

func testGetMissing(t *testing.T, s store.Store) {
	ctx := context.Background()
	err := s.View(ctx, func(tx store.Tx) error {
		v, err := tx.Get([]byte("missing"))
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(missing) = %q, %v; want ErrNotFound", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	Set(t, s, "k", "v")
	del(t, s, "k")
	err = s.Update(ctx, func(tx store.Tx) error {
		if _, err := tx.Get([]byte("k")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(deleted key) error = %v; want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An error from Get returned by fn comes back unchanged.
	err = s.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte("missing"))
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("View returned %v; want ErrNotFound", err)
	}
}

func testEmptyValue(t *testing.T, s store.Store) {
	Set(t, s, "empty", "")
	v, ok := Get(t, s, "empty")
	if !ok || v != "" {
		t.Fatalf("Get(empty) = %q, present=%v; want an empty value", v, ok)
	}
	err := s.Update(context.Background(), func(tx store.Tx) error {
		return tx.Set([]byte("nil"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := Get(t, s, "nil"); !ok || v != "" {
		t.Fatalf("Get(nil) = %q, present=%v; want an empty value", v, ok)
	}
	if got := scan(t, s, "", store.ScanOptions{}); len(got) != 2 {
		t.Fatalf("Scan sees %q; want both empty values", got)
	}
}

func testReadYourWrites(t *testing.T, s store.Store) {
	Set(t, s, "gone", "x")
	err := s.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.Set([]byte("k"), []byte("1")); err != nil {
			return err
		}
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "1" {
			t.Errorf("Get after Set = %q, %v; want 1", v, err)
		}
		if err := tx.Set([]byte("k"), []byte("2")); err != nil {
			return err
		}
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "2" {
			t.Errorf("Get after second Set = %q, %v; want 2", v, err)
		}
		if err := tx.Delete([]byte("gone")); err != nil {
			return err
		}
		if _, err := tx.Get([]byte("gone")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get after Delete: %v; want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	WantValue(t, s, "k", "2")
	wantAbsent(t, s, "gone")
}

func testSlicesBelongToCaller(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Set copies its arguments.
	key, val := []byte("key1"), []byte("value1")
	err := s.Update(ctx, func(tx store.Tx) error {
		err := tx.Set(key, val)
		copy(key, "XXXX")
		copy(val, "XXXXXX")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	WantValue(t, s, "key1", "value1")

	// What Get and Scan return stays valid after the transaction and
	// after later writes.
	Set(t, s, "s/1", "one", "s/2", "two")
	var got []byte
	var keys, vals [][]byte
	err = s.View(ctx, func(tx store.Tx) error {
		var err error
		if got, err = tx.Get([]byte("key1")); err != nil {
			return err
		}
		return tx.Scan([]byte("s/"), store.ScanOptions{}, func(k, v []byte) error {
			keys, vals = append(keys, k), append(vals, v)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	Set(t, s, "key1", "changed", "s/1", "ONE", "s/2", "TWO")
	for i := 0; i < 100; i++ {
		Set(t, s, "churn", string(rune('a'+i%26)))
	}
	if string(got) != "value1" {
		t.Errorf("value from Get changed to %q after the transaction", got)
	}
	if len(keys) != 2 || string(keys[0]) != "s/1" || string(keys[1]) != "s/2" ||
		string(vals[0]) != "one" || string(vals[1]) != "two" {
		t.Errorf("pairs from Scan changed to %q %q after the transaction", keys, vals)
	}
}

func testViewIsReadOnly(t *testing.T, s store.Store) {
	err := s.View(context.Background(), func(tx store.Tx) error {
		if err := tx.Set([]byte("k"), []byte("v")); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("Set in View: %v; want ErrReadOnly", err)
		}
		if err := tx.Delete([]byte("k")); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("Delete in View: %v; want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, s, "k")
}

func testViewIsSnapshot(t *testing.T, s store.Store) {
	Set(t, s, "k", "before")
	inView := make(chan struct{})
	written := make(chan error)
	go func() {
		<-inView
		written <- s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set([]byte("k"), []byte("after"))
		})
	}()
	err := s.View(context.Background(), func(tx store.Tx) error {
		// Take the snapshot's first read before the write commits.
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "before" {
			t.Errorf("Get = %q, %v; want before", v, err)
		}
		close(inView)
		if err := <-written; err != nil {
			t.Errorf("concurrent Update: %v", err)
		}
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "before" {
			t.Errorf("Get after a concurrent commit = %q, %v; want the snapshot's before", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	WantValue(t, s, "k", "after")
}

func testReservedKeys(t *testing.T, s store.Store) {
	for _, key := range [][]byte{nil, {}, []byte(store.ReservedPrefix), []byte(store.ReservedPrefix + "x")} {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.Set(key, []byte("v")); !errors.Is(err, store.ErrReservedKey) {
				t.Errorf("Set(%q): %v; want ErrReservedKey", key, err)
			}
			if err := tx.Delete(key); !errors.Is(err, store.ErrReservedKey) {
				t.Errorf("Delete(%q): %v; want ErrReservedKey", key, err)
			}
			// Ignoring the error must not commit the rest.
			return tx.Set([]byte("other"), []byte("v"))
		})
		if !errors.Is(err, store.ErrReservedKey) {
			t.Errorf("Update after a refused write of %q returned %v; want ErrReservedKey", key, err)
		}
		wantAbsent(t, s, "other")
	}
}

func testBinaryKeys(t *testing.T, s store.Store) {
	key := "\x00\x01\xfe\xff bin\x00"
	val := "\xff\x00\x80 value \x00"
	Set(t, s, key, val)
	WantValue(t, s, key, val)
	wantKVs(t, "Scan", scan(t, s, "\x00", store.ScanOptions{}), []kv{{key, val}})
}
