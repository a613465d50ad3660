package storetest

// This file: writing and reading keys in a test, and checking what they
// hold.

import (
	"context"
	"errors"
	"testing"

	"github.com/flowscript/flowscript/store"
)

// kv is one key and value, for building and comparing expectations.
type kv struct{ k, v string }

// Set writes key/value pairs (key, value, key, value, …) in one
// transaction, failing the test on any error.
func Set(t *testing.T, s store.Store, pairs ...string) {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Fatalf("set: odd number of arguments")
	}
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < len(pairs); i += 2 {
			if err := tx.Set([]byte(pairs[i]), []byte(pairs[i+1])); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update(set %q): %v", pairs, err)
	}
}

func del(t *testing.T, s store.Store, keys ...string) {
	t.Helper()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for _, k := range keys {
			if err := tx.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update(delete %q): %v", keys, err)
	}
}

// Get returns the value of key, and false when it is absent; any other
// error fails the test.
func Get(t *testing.T, s store.Store, key string) (string, bool) {
	t.Helper()
	var v []byte
	err := s.View(context.Background(), func(tx store.Tx) error {
		var err error
		v, err = tx.Get([]byte(key))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatalf("View(get %q): %v", key, err)
	}
	return string(v), true
}

// WantValue fails the test unless key holds want.
func WantValue(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	got, ok := Get(t, s, key)
	if !ok {
		t.Fatalf("key %q is absent, want %q", key, want)
	}
	if got != want {
		t.Fatalf("key %q = %q, want %q", key, got, want)
	}
}

func wantAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	if got, ok := Get(t, s, key); ok {
		t.Fatalf("key %q = %q, want it absent", key, got)
	}
}

// scan returns what Scan visits.
func scan(t *testing.T, s store.Store, prefix string, opts store.ScanOptions) []kv {
	t.Helper()
	var out []kv
	err := s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte(prefix), opts, func(k, v []byte) error {
			out = append(out, kv{string(k), string(v)})
			return nil
		})
	})
	if err != nil {
		t.Fatalf("Scan(%q, %+v): %v", prefix, opts, err)
	}
	return out
}

func wantKVs(t *testing.T, what string, got, want []kv) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d pairs %q, want %d pairs %q", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: pair %d is %q, want %q\n got: %q\nwant: %q", what, i, got[i], want[i], got, want)
		}
	}
}
