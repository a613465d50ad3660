package badgerstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

var garbage = []byte("this is not a badger file, just some text\n")

// newDatabase returns the directory of a closed database holding small
// and large (value log) values, with at least one table file.
func newDatabase(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openDir(t, dir, badgerstore.Options{Durability: badgerstore.Fast})
	for i := 0; i < 12; i++ {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.Set([]byte(fmt.Sprintf("small/%02d", i)), []byte("v")); err != nil {
				return err
			}
			return tx.Set([]byte(fmt.Sprintf("large/%02d", i)), bytes.Repeat([]byte{'x'}, 100<<10))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func onlyFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(m) != 1 {
		t.Fatalf("want one %s file in %s, found %q", suffix, dir, m)
	}
	return m[0]
}

func wantCorrupt(t *testing.T, dir string) {
	t.Helper()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open of a damaged database succeeded")
	}
	var ce *store.CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open: %v (%T); want a *store.CorruptError", err, err)
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "damaged") {
		t.Fatalf("message %q does not name the directory and say it is damaged", msg)
	}
	t.Log(err)
}

func TestOpenDamaged(t *testing.T) {
	t.Run("FileInsteadOfDirectory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "db")
		if err := os.WriteFile(path, garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		wantCorrupt(t, path)
	})
	t.Run("GarbageManifestAlone", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "MANIFEST"), garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		wantCorrupt(t, dir)
	})
	for _, c := range []struct {
		name, file string
		damage     func(path string) error
	}{
		{"GarbageManifest", "MANIFEST", overwrite},
		{"EmptyManifest", "MANIFEST", empty},
		{"GarbageKeyRegistry", "KEYREGISTRY", overwrite},
		{"TruncatedKeyRegistry", "KEYREGISTRY", truncate},
		{"GarbageTable", ".sst", overwrite},
		{"EmptyTable", ".sst", empty},
		{"TruncatedTable", ".sst", truncate},
		{"GarbageValueLog", ".vlog", overwrite},
		{"EmptyValueLog", ".vlog", empty},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := newDatabase(t)
			path := filepath.Join(dir, c.file)
			if strings.HasPrefix(c.file, ".") {
				path = onlyFile(t, dir, c.file)
			}
			if err := c.damage(path); err != nil {
				t.Fatal(err)
			}
			wantCorrupt(t, dir)
		})
	}
}

func overwrite(path string) error { return os.WriteFile(path, garbage, 0o600) }
func empty(path string) error     { return os.WriteFile(path, nil, 0o600) }
func truncate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, fi.Size()/2)
}

// TestDamagedValueLogRead: Badger treats a value log cut short as a torn
// write and opens; Open, which reads every value of a small database,
// refuses it, and leaves its files as they were. Opened read-only (as
// `flowscript check` does), reading a value it lost is an error, not an
// empty value.
func TestDamagedValueLogRead(t *testing.T) {
	dir := newDatabase(t)
	if err := truncate(onlyFile(t, dir, ".vlog")); err != nil {
		t.Fatal(err)
	}
	before := dirSums(t, dir)
	wantCorrupt(t, dir)
	if after := dirSums(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("Open changed the files of a damaged database:\nbefore %v\nafter  %v", before, after)
	}
	s, err := badgerstore.OpenReadOnly(dir, badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(context.Background(), func(tx store.Tx) error {
		if v, err := tx.Get([]byte("small/11")); err != nil || string(v) != "v" {
			t.Errorf("Get(small/11) = %q, %v; want the small value, kept in the table", v, err)
		}
		_, err := tx.Get([]byte("large/11"))
		return err
	})
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Get of a value lost from the value log: %v; want ErrCorrupt", err)
	}
	err = s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("large/"), store.ScanOptions{}, func(k, v []byte) error {
			if len(v) != 100<<10 {
				return fmt.Errorf("%s: %d bytes", k, len(v))
			}
			return nil
		})
	})
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Scan over values lost from the value log: %v; want ErrCorrupt", err)
	}
}

func TestOpenEmptyName(t *testing.T) {
	if _, err := badgerstore.Open("", badgerstore.Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

// A value log left empty by a process killed while creating it, at the
// database's first open, holds nothing: the database opens.
func TestEmptyValueLogOfANewDatabaseOpens(t *testing.T) {
	dir := t.TempDir()
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	vlog := onlyFile(t, dir, ".vlog")
	if err := os.Truncate(vlog, 0); err != nil {
		t.Fatal(err)
	}
	s, err = badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s.Close()
}

// dirSums is the content hash of every file in dir but the lock file.
func dirSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]string{}
	for _, e := range entries {
		if e.Name() == "flowscript.lock" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sums[e.Name()] = fmt.Sprintf("%x", sha256.Sum256(data))
	}
	return sums
}
