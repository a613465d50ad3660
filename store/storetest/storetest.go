// Package storetest is the conformance suite for store.Store: the tests
// that every implementation must pass, so that the runtime can rely on the
// contract written in the store package and a second backend can slot in
// beside badgerstore.
//
// It owns the tests and the small helpers they share. It must not import
// any implementation (each implementation's own tests call Run and
// RunDurable), and it must not depend on implementation details that the
// store package does not promise; behaviour specific to one backend is
// tested next to that backend.
//
// The suite uses real time only to bound waits (a watch that never
// delivers fails after a generous deadline instead of hanging); it makes
// no timing assertions.
package storetest

import (
	"testing"

	"github.com/flowscript/flowscript/store"
)

// test is one conformance test, run on a fresh, empty Store.
type test struct {
	name string
	fn   func(t *testing.T, s store.Store)
}

// durableTest is one conformance test that opens, closes and reopens a
// Store in one directory.
type durableTest struct {
	name string
	fn   func(t *testing.T, open func() store.Store)
}

// Run runs the conformance suite. open must return a new, empty Store for
// each call; the suite closes every Store it opens (Close may be called
// twice). Subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	var all []test
	all = append(all, basicTests...)
	all = append(all, scanTests...)
	all = append(all, txnTests...)
	all = append(all, watchTests...)
	all = append(all, limitsTests...)
	for _, tc := range all {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// RunDurable runs the tests of data surviving Close and reopening. open
// must open the Store kept in dir, creating it when dir is empty, with
// commits synced before they are acknowledged. Each test gets its own
// directory and closes every Store it opens.
func RunDurable(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	for _, tc := range durableTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			tc.fn(t, func() store.Store {
				s := open(t, dir)
				t.Cleanup(func() { _ = s.Close() })
				return s
			})
		})
	}
}
