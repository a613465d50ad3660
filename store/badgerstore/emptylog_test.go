package badgerstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// A kill -9 between Badger creating a log file (NNNNN.mem, NNNNNN.vlog)
// and sizing it leaves an empty file; the database must still open, with
// its data.
func TestOpenAfterKillLeftEmptyLogFile(t *testing.T) {
	for _, name := range []string{"00001.mem", "00009.mem", "000009.vlog"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if name != "00001.mem" { // 00001.mem: the first Open was killed
				s, err := badgerstore.Open(dir, badgerstore.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Set([]byte("k"), []byte("v")) }); err != nil {
					t.Fatal(err)
				}
				s.Close()
			}
			if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := badgerstore.Open(dir, badgerstore.Options{})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer s.Close()
			if name == "00001.mem" {
				return
			}
			err = s.View(context.Background(), func(tx store.Tx) error {
				v, err := tx.Get([]byte("k"))
				if err == nil && string(v) != "v" {
					t.Errorf("k = %q", v)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
