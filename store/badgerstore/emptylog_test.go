package badgerstore_test

import (
	"context"
	"fmt"
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

// A process killed while Badger created its value log left it empty; the
// next process opened a newer one (Badger does at every open) and was
// killed too. The empty file is now not the newest: every command on the
// database failed ("Open existing file … Create a new file", found by the
// tree crash test). It holds nothing, and the database opens whole.
func TestOpenWithAnOlderEmptyValueLog(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 2; i++ { // two opens: two value log files
		s, err := badgerstore.Open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set([]byte{'k', byte('0' + i)}, []byte("v"))
		}); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	var vlogs []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".vlog" {
			vlogs = append(vlogs, e.Name())
		}
	}
	if len(vlogs) < 2 {
		t.Fatalf("value logs %v, want two", vlogs)
	}
	if err := os.Truncate(filepath.Join(dir, vlogs[0]), 0); err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(string, badgerstore.Options) (*badgerstore.Store, error){
		"OpenReadOnly": badgerstore.OpenReadOnly, "Open": badgerstore.Open,
	} {
		s, err := open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		err = s.View(context.Background(), func(tx store.Tx) error {
			for _, k := range []string{"k0", "k1"} {
				if v, err := tx.Get([]byte(k)); err != nil || string(v) != "v" {
					return fmt.Errorf("%s = %q, %v", k, v, err)
				}
			}
			return nil
		})
		s.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
