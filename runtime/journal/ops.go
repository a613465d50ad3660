package journal

import (
	"errors"

	"github.com/flowscript/flowscript/store"
)

// An Op is one step of a commit: a write of val under key (after the
// forward-only check accepts the value it replaces), a delete, or any
// function of the transaction. A decision is a list of ops in causal
// order: a step's end comes before the start of the step it feeds, a
// run's records before its end, a child's steps before its record. That
// order is what makes it safe to cut a list too large for one transaction
// between two ops: every prefix is a state that resume carries on from.
type Op struct {
	key, val []byte
	del      bool
	// forward, when set, is the forward-only check of a step or run
	// record (a value, not a closure: a step's end is the hottest write)
	forward forward
	// history marks a history event's write: it joins its run's pack
	// (histpack.go)
	history bool
	fn      func(tx *Tx) error
}

func setOp(key, val []byte) Op { return Op{key: key, val: val} }
func deleteOp(key []byte) Op   { return Op{key: key, del: true} }

// Func is an op that runs fn in the transaction.
func Func(fn func(tx *Tx) error) Op { return Op{fn: fn} }

func (o *Op) apply(tx store.Tx) error {
	if o.fn != nil {
		return o.fn(&Tx{tx: tx})
	}
	if ct, ok := tx.(*countingTx); ok && o.history {
		return ct.appendHistory(o.key, o.val)
	}
	if o.forward.kind != noCheck {
		if vt, ok := tx.(viewTx); ok {
			// the stored record is compared where it lies, not copied
			if err := vt.GetView(o.key, &o.forward); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
		} else if old, err := tx.Get(o.key); err == nil {
			if err := o.forward.check(old); err != nil {
				return err
			}
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	// an op's key and value are made for it and never change: the
	// store may keep them instead of copying them
	if ot, ok := tx.(ownedTx); ok {
		if o.del {
			return ot.DeleteOwned(o.key)
		}
		return ot.SetOwned(o.key, o.val)
	}
	if o.del {
		return tx.Delete(o.key)
	}
	return tx.Set(o.key, o.val)
}

// viewTx is a transaction that can show a stored value without copying
// it (badgerstore's): the slice is valid only while View runs. (An
// interface, not a func: a method value would take an allocation.)
type viewTx interface {
	GetView(key []byte, v interface{ View(value []byte) error }) error
}

// ownedTx is a transaction that can take the slices it writes instead of
// copying them (badgerstore's): the caller changes neither key nor value
// until the transaction has ended.
type ownedTx interface {
	SetOwned(key, value []byte) error
	DeleteOwned(key []byte) error
}

// countingTx counts the writes and bytes a transaction holds, so the
// committer can size its transactions by the store's limits.
type countingTx struct {
	store.Tx
	writes, bytes int
	// packs are the history keys the transaction fills, one per run
	// (histpack.go); packIndex finds them once there are many
	packs     []histPack
	packIndex map[string]int
	packBuf   [2]histPack // packs' first storage: most transactions write one or two runs
}

func (t *countingTx) Set(key, value []byte) error {
	t.writes++
	t.bytes += len(key) + len(value)
	return t.Tx.Set(key, value)
}

func (t *countingTx) Delete(key []byte) error {
	t.writes++
	t.bytes += len(key)
	return t.Tx.Delete(key)
}

// GetView passes on to a store that shows values in place, else reads a
// copy.
func (t *countingTx) GetView(key []byte, v interface{ View(value []byte) error }) error {
	if vt, ok := t.Tx.(viewTx); ok {
		return vt.GetView(key, v)
	}
	old, err := t.Get(key)
	if err != nil {
		return err
	}
	return v.View(old)
}

// SetOwned and DeleteOwned pass an op's own slices on (Op.apply) when
// the store takes them, else copy as Set and Delete do.
func (t *countingTx) SetOwned(key, value []byte) error {
	if ot, ok := t.Tx.(ownedTx); ok {
		t.writes++
		t.bytes += len(key) + len(value)
		return ot.SetOwned(key, value)
	}
	return t.Set(key, value)
}

func (t *countingTx) DeleteOwned(key []byte) error {
	if ot, ok := t.Tx.(ownedTx); ok {
		t.writes++
		t.bytes += len(key)
		return ot.DeleteOwned(key)
	}
	return t.Delete(key)
}

// size is what a transaction or a commit holds.
type size struct{ writes, bytes int }

func (t *countingTx) size() size { return size{t.writes, t.bytes} }

// over reports whether s plus more passes the limits.
func (s size) over(l store.Limits, more size) bool {
	return s.writes+more.writes > l.MaxWrites || s.bytes+more.bytes > l.MaxBytes
}

func (s size) minus(o size) size { return size{s.writes - o.writes, s.bytes - o.bytes} }

func (s size) max(o size) size { return size{max(s.writes, o.writes), max(s.bytes, o.bytes)} }
