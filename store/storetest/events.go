package storetest

// This file: collecting what a watch delivers, and checking it.

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
