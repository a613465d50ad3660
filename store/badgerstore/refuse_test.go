package badgerstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// A directory that holds other files and is not a flowscript database is
// refused, and nothing is written into it (Badger used to make a database
// next to the user's files).
func TestNotAFlowscriptDatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	before := dirSums(t, dir)
	for name, open := range map[string]func(string, badgerstore.Options) (*badgerstore.Store, error){
		"Open": badgerstore.Open, "OpenReadOnly": badgerstore.OpenReadOnly,
	} {
		s, err := open(dir, badgerstore.Options{})
		if err == nil {
			s.Close()
			t.Fatalf("%s of a foreign directory succeeded", name)
		}
		if !errors.Is(err, badgerstore.ErrNotFlowscript) || !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "not a flowscript database") {
			t.Fatalf("%s: %v; want ErrNotFlowscript", name, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if after := dirSums(t, dir); len(entries) != 1 || !reflect.DeepEqual(before, after) {
		t.Fatalf("files were written into a foreign directory: %v", entries)
	}
}

// manyTables returns a closed database of n tables: each open writes keys
// and closing flushes them into a table of their own, as n short CLI runs
// do.
func manyTables(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		s := openDir(t, dir, badgerstore.Options{Durability: badgerstore.Fast})
		err := s.Update(context.Background(), func(tx store.Tx) error {
			if err := tx.Set([]byte(fmt.Sprintf("run/%02d", i)), []byte("small")); err != nil {
				return err
			}
			return tx.Set([]byte(fmt.Sprintf("out/%02d", i)), make([]byte, 70<<10))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The damage that was read as a whole database (fewer runs, exit 0), or
// "repaired" by deleting tables: each is refused, and no file changes.
func TestDamageRefusedAndLeftAlone(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"ManifestTruncated", func(t *testing.T, dir string) { must(t, truncate(filepath.Join(dir, "MANIFEST"))) }},
		{"ManifestDeleted", func(t *testing.T, dir string) { must(t, os.Remove(filepath.Join(dir, "MANIFEST"))) }},
		{"TableDeleted", func(t *testing.T, dir string) { must(t, os.Remove(middleFile(t, dir, ".sst"))) }},
		{"TableByteFlipped", func(t *testing.T, dir string) { flip(t, middleFile(t, dir, ".sst"), 40) }},
		{"ValueLogTruncated", func(t *testing.T, dir string) { must(t, truncate(middleFile(t, dir, ".vlog"))) }},
		{"ValueLogByteFlipped", func(t *testing.T, dir string) { flip(t, middleFile(t, dir, ".vlog"), 30000) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := manyTables(t, 10)
			c.damage(t, dir)
			before := dirSums(t, dir)
			wantCorrupt(t, dir)
			if after := dirSums(t, dir); !reflect.DeepEqual(before, after) {
				t.Fatalf("Open changed the files of a damaged database:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// After a kill, a database whose memtable log (.mem) was deleted has lost
// its newest commits: it is refused, not opened as an older database.
func TestMemtableLogDeletedAfterKill(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for total := 0; total < 2000; {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("helper: %v", err)
		}
		total += n
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	mems, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
	if len(mems) == 0 {
		t.Fatal("the killed process left no .mem file")
	}
	for _, m := range mems {
		must(t, os.Remove(m))
	}
	before := dirSums(t, dir)
	wantCorrupt(t, dir)
	if after := dirSums(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("Open changed the files of a damaged database")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	must(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b, off)
	must(t, err)
}

// middleFile is the middle one of dir's files with the suffix (background
// compaction decides which tables exist).
func middleFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	if len(m) == 0 {
		t.Fatalf("no %s file in %s", suffix, dir)
	}
	return m[len(m)/2]
}
