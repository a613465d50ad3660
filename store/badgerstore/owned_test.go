package badgerstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// ownedTx is what the journal asks of a transaction that takes the
// slices it writes.
type ownedTx interface {
	SetOwned(key, value []byte) error
	DeleteOwned(key []byte) error
}

// SetOwned and DeleteOwned write as Set and Delete do (a nil value is an
// empty value, not a delete), are refused where Set is (reserved keys,
// a read-only transaction), and what they wrote reads back after the
// commit and after the database is opened again.
func TestOwnedWrites(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, badgerstore.Options{})
	ctx := context.Background()
	err := s.Update(ctx, func(tx store.Tx) error {
		ot, ok := tx.(ownedTx)
		if !ok {
			t.Fatal("a badgerstore transaction does not take owned slices")
		}
		if err := ot.SetOwned([]byte("a"), []byte("one")); err != nil {
			return err
		}
		if err := ot.SetOwned([]byte("empty"), nil); err != nil {
			return err
		}
		if err := ot.SetOwned([]byte("gone"), []byte("x")); err != nil {
			return err
		}
		if err := ot.DeleteOwned([]byte("gone")); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.(ownedTx).SetOwned([]byte(store.ReservedPrefix+"x"), nil)
	})
	if !errors.Is(err, store.ErrReservedKey) {
		t.Errorf("SetOwned of a reserved key: %v, want ErrReservedKey", err)
	}
	err = s.View(ctx, func(tx store.Tx) error {
		if err := tx.(ownedTx).SetOwned([]byte("b"), nil); !errors.Is(err, store.ErrReadOnly) {
			t.Errorf("SetOwned in View: %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openDir(t, dir, badgerstore.Options{})
	defer s.Close()
	err = s.View(ctx, func(tx store.Tx) error {
		if v, err := tx.Get([]byte("a")); err != nil || string(v) != "one" {
			t.Errorf("a: %q %v, want \"one\"", v, err)
		}
		if v, err := tx.Get([]byte("empty")); err != nil || len(v) != 0 {
			t.Errorf("empty: %q %v, want an empty value", v, err)
		}
		if _, err := tx.Get([]byte("gone")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("gone: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// GetView shows a committed value, the transaction's own write, and
// ErrNotFound for an absent key; View's error comes back as it is.
func TestGetView(t *testing.T) {
	s := openInMemory(t)
	defer s.Close()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte("a"), []byte("committed")) }); err != nil {
		t.Fatal(err)
	}
	type viewTx interface {
		GetView(key []byte, v interface{ View(value []byte) error }) error
	}
	err := s.Update(ctx, func(tx store.Tx) error {
		vt := tx.(viewTx)
		var got viewFunc
		if err := vt.GetView([]byte("a"), &got); err != nil || string(got.seen) != "committed" {
			t.Errorf("a: %q %v, want \"committed\"", got.seen, err)
		}
		if err := tx.Set([]byte("b"), []byte("own write")); err != nil {
			return err
		}
		if err := vt.GetView([]byte("b"), &got); err != nil || string(got.seen) != "own write" {
			t.Errorf("b: %q %v, want \"own write\"", got.seen, err)
		}
		if err := vt.GetView([]byte("none"), &got); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("none: %v, want ErrNotFound", err)
		}
		refused := errors.New("refused")
		if err := vt.GetView([]byte("a"), &viewFunc{err: refused}); err != refused {
			t.Errorf("View's error: %v, want it unchanged", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type viewFunc struct {
	seen []byte
	err  error
}

func (v *viewFunc) View(value []byte) error {
	v.seen = append(v.seen[:0], value...)
	return v.err
}
