package lease

import (
	"context"
	"errors"

	"github.com/flowscript/flowscript/store"
)

// Fenced is a store.Store whose every Update is fenced on a Lease: it
// commits only while the lease holds. The engine is given a Fenced store
// and never sees the lease. Close releases the lease, then closes the
// store under it.
type Fenced struct {
	store.Store
	L *Lease
}

// Update runs fn in a transaction that also guards the lease. A commit
// refused because the lease was taken fails with an error wrapping
// store.ErrGuardFailed, is not retried, and marks the lease lost.
func (f *Fenced) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	err := f.Store.Update(ctx, func(tx store.Tx) error {
		if err := f.L.Guard(tx); err != nil {
			return err
		}
		return fn(tx)
	})
	if errors.Is(err, store.ErrGuardFailed) && f.L.Err() == nil {
		f.L.lose(f.L.takenBy())
	}
	return err
}

// Close releases the lease and closes the store.
func (f *Fenced) Close() error {
	return errors.Join(f.L.Release(), f.Store.Close())
}

// ReadOnly is a store.Store that refuses every Update with Reason: what a
// process that reads a database it does not own is given.
type ReadOnly struct {
	store.Store
	Reason error
}

// Update refuses to write.
func (r ReadOnly) Update(context.Context, func(tx store.Tx) error) error { return r.Reason }
