package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
)

// waitLimit bounds every wait for something that should happen promptly,
// so that a broken implementation fails instead of hanging.
const waitLimit = 20 * time.Second

// kv is one key and value, for building and comparing expectations.
type kv struct{ k, v string }

func set(t *testing.T, s store.Store, pairs ...string) {
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

// get returns the value of key, and false when it is absent.
func get(t *testing.T, s store.Store, key string) (string, bool) {
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

func wantValue(t *testing.T, s store.Store, key, want string) {
	t.Helper()
	got, ok := get(t, s, key)
	if !ok {
		t.Fatalf("key %q is absent, want %q", key, want)
	}
	if got != want {
		t.Fatalf("key %q = %q, want %q", key, got, want)
	}
}

func wantAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	if got, ok := get(t, s, key); ok {
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

// events collects what a watch delivers.
type events struct {
	ch chan store.Event
}

func newEvents() *events { return &events{ch: make(chan store.Event, 100000)} }

func (e *events) fn(evs []store.Event) error {
	for _, ev := range evs {
		e.ch <- ev
	}
	return nil
}

// next returns the next event, failing the test after waitLimit.
func (e *events) next(t *testing.T) store.Event {
	t.Helper()
	select {
	case ev := <-e.ch:
		return ev
	case <-time.After(waitLimit):
		t.Fatalf("no watch event within %v", waitLimit)
		return store.Event{}
	}
}

// none checks that no event is queued.
func (e *events) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-e.ch:
		t.Fatalf("unexpected watch event %s", describe(ev))
	default:
	}
}

func describe(ev store.Event) string {
	if ev.Deleted {
		return fmt.Sprintf("delete %q", ev.Key)
	}
	return fmt.Sprintf("set %q=%q", ev.Key, ev.Value)
}

func wantEvent(t *testing.T, got store.Event, key, value string, deleted bool) {
	t.Helper()
	want := store.Event{Key: []byte(key), Value: []byte(value), Deleted: deleted}
	if deleted {
		want.Value = nil
	}
	if !bytes.Equal(got.Key, want.Key) || got.Deleted != want.Deleted || !bytes.Equal(got.Value, want.Value) || (deleted && got.Value != nil) {
		t.Fatalf("watch event: got %s, want %s", describe(got), describe(want))
	}
}

// startWatch starts a watch that collects into a new events value and
// stops when the test ends.
func startWatch(t *testing.T, s store.Store, prefix string) *events {
	t.Helper()
	e := newEvents()
	w, err := store.StartWatch(context.Background(), s, []byte(prefix), e.fn)
	if err != nil {
		t.Fatalf("StartWatch(%q): %v", prefix, err)
	}
	t.Cleanup(func() {
		if err := w.Stop(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("watch %q ended with %v", prefix, err)
		}
	})
	return e
}
