package store_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/store"
)

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ prefix, want string }{
		{"", ""},
		{"a", "b"},
		{"run/", "run0"},
		{"a\xff", "b"},
		{"a\xfe\xff\xff", "a\xff"},
		{"\xff\xff", ""},
	} {
		got := store.PrefixEnd([]byte(c.prefix))
		if string(got) != c.want || (c.want == "" && got != nil) {
			t.Errorf("PrefixEnd(%q) = %q; want %q", c.prefix, got, c.want)
		}
	}
	// PrefixEnd does not change its argument.
	p := []byte("ab")
	store.PrefixEnd(p)
	if string(p) != "ab" {
		t.Errorf("PrefixEnd changed its argument to %q", p)
	}
}

func TestIsReserved(t *testing.T) {
	for key, want := range map[string]bool{
		"":                         true,
		store.ReservedPrefix:       true,
		store.ReservedPrefix + "x": true,
		"run/1":                    false,
		"\xff\xff":                 false,
		store.ReservedPrefix[:3]:   false,
	} {
		if got := store.IsReserved([]byte(key)); got != want {
			t.Errorf("IsReserved(%q) = %v; want %v", key, got, want)
		}
	}
}

func TestTypedErrors(t *testing.T) {
	locked := fmt.Errorf("open: %w", &store.LockedError{Dir: "/db", PID: 42})
	if !errors.Is(locked, store.ErrLocked) || errors.Is(locked, store.ErrCorrupt) {
		t.Errorf("LockedError does not match ErrLocked alone")
	}
	if msg := locked.Error(); !strings.Contains(msg, "/db") || !strings.Contains(msg, "pid 42") {
		t.Errorf("LockedError message %q", msg)
	}
	if msg := (&store.LockedError{Dir: "/db"}).Error(); strings.Contains(msg, "pid") {
		t.Errorf("LockedError without a pid mentions one: %q", msg)
	}
	cause := errors.New("manifest has bad magic")
	corrupt := fmt.Errorf("open: %w", &store.CorruptError{Dir: "/db", Err: cause})
	if !errors.Is(corrupt, store.ErrCorrupt) || !errors.Is(corrupt, cause) || errors.Is(corrupt, store.ErrLocked) {
		t.Errorf("CorruptError does not match ErrCorrupt and its cause alone")
	}
	if msg := corrupt.Error(); !strings.Contains(msg, "database /db is damaged") || !strings.Contains(msg, "bad magic") {
		t.Errorf("CorruptError message %q", msg)
	}
}
