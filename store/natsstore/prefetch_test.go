package natsstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/storetest"
)

type prefetcher interface{ Prefetch(keys [][]byte) error }

func prefetch(tx store.Tx, keys ...string) error {
	var bs [][]byte
	for _, k := range keys {
		bs = append(bs, []byte(k))
	}
	return tx.(prefetcher).Prefetch(bs)
}

func wantGet(tx store.Tx, key, want string) error {
	v, err := tx.Get([]byte(key))
	switch {
	case want == "" && !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("Get %s = %q, %v; want not found", key, v, err)
	case want != "" && (err != nil || string(v) != want):
		return fmt.Errorf("Get %s = %q, %v; want %q", key, v, err, want)
	}
	return nil
}

// TestPrefetch: keys read ahead with Prefetch are read at the snapshot
// (present, deleted, absent), and the reads are checked at commit like
// any Get: a prefetched key changed by another writer makes the commit
// a conflict, and fn runs again.
func TestPrefetch(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast})
	defer s.Close()
	storetest.Set(t, s, "a", "1")
	storetest.Set(t, s, "b", "x")
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Delete([]byte("b")) }); err != nil {
		t.Fatal(err)
	}
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := tx.Set([]byte("own"), []byte("mine")); err != nil {
			return err
		}
		if err := prefetch(tx, "a", "b", "c", "own", "a"); err != nil {
			return err
		}
		want := "1"
		if calls == 1 {
			storetest.Set(t, s, "a", "2") // after the snapshot
			storetest.Set(t, s, "c", "new")
		} else {
			want = "2"
		}
		for _, g := range [][2]string{{"a", want}, {"b", ""}, {"own", "mine"}} {
			if err := wantGet(tx, g[0], g[1]); err != nil {
				return err
			}
		}
		if calls == 1 {
			if err := wantGet(tx, "c", ""); err != nil {
				return err
			}
		}
		return tx.Set([]byte("copy"), []byte(want))
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.WantValue(t, s, "copy", "2")
}

// TestPrefetchTellsAbsentFromPushedOut: many keys without a revision at
// the snapshot are checked together; one created after the snapshot was
// absent in it, one whose snapshot revision was pushed out of the
// stream's History makes the attempt a conflict (ErrSnapshotTooOld), so
// that fn runs again on a fresh snapshot.
func TestPrefetchTellsAbsentFromPushedOut(t *testing.T) {
	s := openShared(t, natsstore.Options{Durability: natsstore.Fast, History: 2})
	defer s.Close()
	storetest.Set(t, s, "z", "0")
	storetest.Set(t, s, "k", "v0")
	calls := 0
	err := s.Update(context.Background(), func(tx store.Tx) error {
		calls++
		if err := wantGet(tx, "z", "0"); err != nil { // the snapshot
			return err
		}
		if calls == 1 {
			storetest.Set(t, s, "p", "created") // its first revision, after the snapshot
			if err := prefetch(tx, "p", "m"); err != nil {
				return err
			}
			if err := wantGet(tx, "p", ""); err != nil {
				return err
			}
			storetest.Set(t, s, "k", "v1")
			storetest.Set(t, s, "k", "v2") // v0, the snapshot's, pushed out
			return prefetch(tx, "k", "m")
		}
		if err := prefetch(tx, "k", "m", "p"); err != nil {
			return err
		}
		for _, g := range [][2]string{{"k", "v2"}, {"m", ""}, {"p", "created"}} {
			if err := wantGet(tx, g[0], g[1]); err != nil {
				return err
			}
		}
		return tx.Set([]byte("z"), []byte("1"))
	})
	wantUpdate(t, err, calls, nil, 2)
	storetest.WantValue(t, s, "z", "1")
}
