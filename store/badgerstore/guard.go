package badgerstore

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowscript/flowscript/store"
)

// guardRead is a key a transaction guarded, with the version it saw (0:
// absent). Badger holds the read to commit: a write to the key committed
// meanwhile makes the commit conflict, and the versions tell a conflict
// on a guarded key (not retried) from any other (retried).
type guardRead struct {
	key     []byte
	version uint64
}

// Guard implements store.Tx.
func (t *tx) Guard(key, want []byte) error {
	if t.done {
		return errTxDone
	}
	item, err := t.txn.Get(key)
	var got []byte
	var version uint64
	found := err == nil
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return t.failWrite(txError("guard", err))
	default:
		if got, err = value(item); err != nil {
			return t.failWrite(err)
		}
		version = item.Version()
	}
	if want == nil && found || want != nil && (!found || !bytes.Equal(got, want)) {
		return t.failWrite(fmt.Errorf("%w: key %q does not hold the expected value", store.ErrGuardFailed, abbrev(key)))
	}
	if t.writable {
		t.guards = append(t.guards, guardRead{key: bytes.Clone(key), version: version})
	}
	return nil
}

// guardConflict turns a commit's conflict into ErrGuardFailed when a
// guarded key changed since the transaction read it; any other conflict
// is returned as it is, to be retried.
func (s *Store) guardConflict(t *tx, conflict error) error {
	if len(t.guards) == 0 {
		return conflict
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	for _, g := range t.guards {
		var now uint64
		item, err := txn.Get(g.key)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return txError("guard", err)
		default:
			now = item.Version()
		}
		if now != g.version {
			return fmt.Errorf("%w: key %q changed before the transaction committed", store.ErrGuardFailed, abbrev(g.key))
		}
	}
	return conflict
}
