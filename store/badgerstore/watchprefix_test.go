package badgerstore

import (
	"context"
	"testing"

	"github.com/flowscript/flowscript/store"
)

// TestWatchNeighbourPrefixes: a hub asks Badger for the keys that share
// its prefix's first byte only (subscription), so the keys of a
// neighbouring prefix reach it; a watch must deliver only its own, in
// transactions that write both, and two watches of prefixes with one
// first byte must each get theirs.
func TestWatchNeighbourPrefixes(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Durability: Fast})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	watch := func(prefix string) chan string {
		got := make(chan string, 100)
		w, err := store.StartWatch(ctx, s, []byte(prefix), func(evs []store.Event) error {
			for _, e := range evs {
				got <- string(e.Key) + "=" + string(e.Value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Stop() })
		return got
	}
	wait, waited := watch("wait/"), watch("waited/")
	err = s.Update(ctx, func(tx store.Tx) error {
		for _, k := range []string{"w", "wait", "waitX/1", "waited/a", "wait/a", "x/1", "wai"} {
			if err := tx.Set([]byte(k), []byte("1")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// a last commit to each, so that everything before it has been
	// delivered once it comes
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.Set([]byte("wait/z"), []byte("end")); err != nil {
			return err
		}
		return tx.Set([]byte("waited/z"), []byte("end"))
	}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		ch   chan string
		want []string
	}{
		"wait/":   {wait, []string{"wait/a=1", "wait/z=end"}},
		"waited/": {waited, []string{"waited/a=1", "waited/z=end"}},
	} {
		for _, want := range c.want {
			if got := <-c.ch; got != want {
				t.Fatalf("watch %s: got %s, want %s", name, got, want)
			}
		}
	}
}
