package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowscript/flowscript/internal/failpoint"
	"github.com/flowscript/flowscript/store"
)

const (
	// maxKeySize is Badger's limit on a key's length.
	maxKeySize = 65000
	// userMetaLive marks every value written through Set. Badger's
	// subscription reports a delete as an entry with an empty value and
	// no user meta, so the mark is how Watch tells "set to empty" from
	// "deleted".
	userMetaLive byte = 1
	// scanCtxEvery is how many keys Scan visits between two checks of the
	// transaction's context.
	scanCtxEvery = 256
)

var errTxDone = errors.New("badgerstore: transaction used after its Update or View returned")

// tx is a store.Tx over a Badger transaction.
type tx struct {
	ctx      context.Context
	txn      *badger.Txn
	writable bool
	maxValue int64
	done     bool
	// writeErr is the first error of Set or Delete: a transaction whose
	// write failed is never committed, even if fn ignores the error.
	writeErr error
	// guards are the keys Guard read, checked again on a conflict.
	guards []guardRead
	// written counts the bytes of keys and values written
	written int64
	// view holds the value GetView shows, reused by the next one
	view []byte
	// prefixes are the key prefixes (up to the first '/') written, kept
	// only while a failpoint is armed
	prefixes map[string]bool
}

// hitFailpoints passes the failpoint "<when><prefix>/" once for each key
// prefix the transaction wrote.
func (t *tx) hitFailpoints(when string) {
	for p := range t.prefixes {
		failpoint.Hit(when + p)
	}
}

func (t *tx) notePrefix(key []byte) {
	if !failpoint.Enabled() {
		return
	}
	if i := bytes.IndexByte(key, '/'); i > 0 {
		if t.prefixes == nil {
			t.prefixes = map[string]bool{}
		}
		t.prefixes[string(key[:i+1])] = true
	}
}

var _ store.Tx = (*tx)(nil)

func (t *tx) Get(key []byte) ([]byte, error) {
	if t.done {
		return nil, errTxDone
	}
	item, err := t.txn.Get(key)
	if err != nil {
		return nil, txError("get", err)
	}
	return value(item)
}

// GetView calls v.View with the value of key without copying it: the
// slice is valid only while View runs, and View must not change it. Its
// error is returned as it is; an absent key is ErrNotFound, as for Get.
// The journal reads the records its forward-only checks compare this way.
func (t *tx) GetView(key []byte, v interface{ View(value []byte) error }) error {
	if t.done {
		return errTxDone
	}
	item, err := t.txn.Get(key)
	if err != nil {
		return txError("get", err)
	}
	// one buffer of the transaction holds the value while View runs
	val, err := item.ValueCopy(t.view[:0])
	if err != nil {
		return txError("read value", err)
	}
	t.view = val
	if len(val) == 0 && item.ValueSize() > 0 {
		return fmt.Errorf("%w: the value of key %q cannot be read from the value log", store.ErrCorrupt, abbrev(item.Key()))
	}
	return v.View(val)
}

// value returns a copy of item's value. Badger does not report a value it
// cannot read from its value log (it logs the failure and yields an empty
// value); a non-empty stored value that comes back empty is that case.
func value(item *badger.Item) ([]byte, error) {
	v, err := item.ValueCopy(nil)
	if err != nil {
		return nil, txError("read value", err)
	}
	if len(v) == 0 && item.ValueSize() > 0 {
		return nil, fmt.Errorf("%w: the value of key %q cannot be read from the value log", store.ErrCorrupt, abbrev(item.Key()))
	}
	return v, nil
}

func (t *tx) Set(key, value []byte) error { return t.set(bytes.Clone(key), cloneNonNil(value)) }

// SetOwned is Set without copying key and value: the caller hands them
// over, and changes neither until the transaction has ended (Badger keeps
// them until its commit, and its subscribers get them after). The journal
// writes the records it encodes this way, each encoded once.
func (t *tx) SetOwned(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return t.set(key, value)
}

// DeleteOwned is Delete without copying key (see SetOwned).
func (t *tx) DeleteOwned(key []byte) error { return t.del(key) }

func (t *tx) set(key, value []byte) error {
	if err := t.checkWrite(key); err != nil {
		return err
	}
	if int64(len(value)) > t.maxValue {
		return t.failWrite(fmt.Errorf("%w: value of %d bytes under key %q exceeds the limit of %d bytes", store.ErrTooLarge, len(value), abbrev(key), t.maxValue))
	}
	t.written += int64(len(key) + len(value))
	t.notePrefix(key)
	e := badger.NewEntry(key, value).WithMeta(userMetaLive)
	return t.failWrite(txError("set", t.txn.SetEntry(e)))
}

func (t *tx) Delete(key []byte) error { return t.del(bytes.Clone(key)) }

func (t *tx) del(key []byte) error {
	if err := t.checkWrite(key); err != nil {
		return err
	}
	t.written += int64(len(key))
	t.notePrefix(key)
	return t.failWrite(txError("delete", t.txn.Delete(key)))
}

// checkWrite refuses writes that Badger would refuse less clearly, or
// that must not happen at all.
func (t *tx) checkWrite(key []byte) error {
	switch {
	case t.done:
		return errTxDone
	case !t.writable:
		return store.ErrReadOnly
	case store.IsReserved(key):
		return t.failWrite(fmt.Errorf("%w: %q", store.ErrReservedKey, abbrev(key)))
	case len(key) > maxKeySize:
		return t.failWrite(fmt.Errorf("%w: key of %d bytes exceeds the limit of %d bytes", store.ErrTooLarge, len(key), maxKeySize))
	}
	return nil
}

func (t *tx) failWrite(err error) error {
	if err != nil && t.writeErr == nil {
		t.writeErr = err
	}
	return err
}

func (t *tx) Scan(prefix []byte, opts store.ScanOptions, fn func(key, value []byte) error) error {
	if t.done {
		return errTxDone
	}
	io := badger.DefaultIteratorOptions
	io.Reverse = opts.Reverse
	io.PrefetchValues = !opts.KeysOnly
	io.PrefetchSize = 16
	if !opts.Reverse {
		// Lets Badger skip tables that hold no key with the prefix. In
		// reverse the seek key can lie past the prefix, where an
		// iterator restricted to the prefix would stop at once.
		io.Prefix = prefix
	}
	it := t.txn.NewIterator(io)
	defer it.Close()

	seek, skip := seekKey(prefix, opts)
	if skip {
		return nil
	}
	n := 0
	for it.Seek(seek); it.Valid(); it.Next() {
		item := it.Item()
		k := item.Key()
		if !bytes.HasPrefix(k, prefix) {
			if opts.Reverse && bytes.Compare(k, prefix) > 0 {
				// Only the seek key itself, just past the prefix.
				continue
			}
			break
		}
		if n++; n%scanCtxEvery == 0 {
			if err := t.ctx.Err(); err != nil {
				return err
			}
		}
		var v []byte
		if !opts.KeysOnly {
			var err error
			if v, err = value(item); err != nil {
				return err
			}
		}
		if err := fn(item.KeyCopy(nil), v); err != nil {
			if errors.Is(err, store.ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// seekKey returns where a scan begins, or skip when no key can match.
func seekKey(prefix []byte, opts store.ScanOptions) (seek []byte, skip bool) {
	if !opts.Reverse {
		if opts.Start != nil && bytes.Compare(opts.Start, prefix) > 0 {
			return opts.Start, false
		}
		return prefix, false
	}
	end := store.PrefixEnd(prefix)
	if opts.Start != nil {
		if bytes.Compare(opts.Start, prefix) < 0 {
			return nil, true
		}
		if end == nil || bytes.Compare(opts.Start, end) < 0 {
			return opts.Start, false
		}
	}
	// nil seeks to the largest key of all.
	return end, false
}

func cloneNonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return bytes.Clone(b)
}

// abbrev shortens a key for an error message.
func abbrev(key []byte) []byte {
	if len(key) > 64 {
		return append(bytes.Clone(key[:61]), "..."...)
	}
	return key
}
