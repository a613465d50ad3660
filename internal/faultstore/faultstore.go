// Package faultstore wraps a real store.Store and makes a chosen share of
// its operations fail, for tests that prove the engine keeps its
// invariants when the store misbehaves. It fakes nothing else: every
// operation that is not failed goes to the real store.
//
// A failed Update either fails before the transaction runs, or runs the
// transaction's function and then fails instead of committing (the real
// store discards it), as a commit that hit a disk error would.
package faultstore

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"

	"github.com/flowscript/flowscript/store"
)

// ErrInjected is wrapped by every failure the wrapper makes.
var ErrInjected = errors.New("faultstore: injected fault")

// Store is a store.Store whose operations fail with probability Rate.
type Store struct {
	store.Store
	rate     atomic.Uint64 // parts per million
	mu       sync.Mutex
	rng      *rand.Rand
	injected atomic.Int64
	ops      atomic.Int64
}

// New wraps s; no fault is injected until SetRate.
func New(s store.Store, seed uint64) *Store {
	return &Store{Store: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetRate makes the share rate (0 to 1) of operations fail from now on.
func (s *Store) SetRate(rate float64) { s.rate.Store(uint64(rate * 1e6)) }

// Injected is how many faults were injected; Ops how many operations were
// seen.
func (s *Store) Injected() int64 { return s.injected.Load() }
func (s *Store) Ops() int64      { return s.ops.Load() }

func (s *Store) fault() bool {
	s.ops.Add(1)
	r := s.rate.Load()
	if r == 0 {
		return false
	}
	s.mu.Lock()
	hit := s.rng.Uint64N(1_000_000) < r
	s.mu.Unlock()
	if hit {
		s.injected.Add(1)
	}
	return hit
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.fault() {
		return ErrInjected
	}
	failCommit := s.fault()
	return s.Store.Update(ctx, func(tx store.Tx) error {
		if err := fn(&Tx{Tx: tx, s: s}); err != nil {
			return err
		}
		if failCommit {
			return ErrInjected
		}
		return nil
	})
}

// View implements store.Store.
func (s *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.fault() {
		return ErrInjected
	}
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(&Tx{Tx: tx, s: s}) })
}

// Tx is a store.Tx whose reads and writes fail with the store's rate.
type Tx struct {
	store.Tx
	s *Store
}

func (t *Tx) Get(key []byte) ([]byte, error) {
	if t.s.fault() {
		return nil, ErrInjected
	}
	return t.Tx.Get(key)
}

func (t *Tx) Set(key, value []byte) error {
	if t.s.fault() {
		return ErrInjected
	}
	return t.Tx.Set(key, value)
}

func (t *Tx) Delete(key []byte) error {
	if t.s.fault() {
		return ErrInjected
	}
	return t.Tx.Delete(key)
}

func (t *Tx) Scan(prefix []byte, opts store.ScanOptions, fn func(key, value []byte) error) error {
	if t.s.fault() {
		return ErrInjected
	}
	return t.Tx.Scan(prefix, opts, fn)
}
