// Package testio holds small I/O helpers shared by the tests of several
// packages.
package testio

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that tests can read while goroutines write
// to it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
