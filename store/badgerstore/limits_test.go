package badgerstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

func TestTooLarge(t *testing.T) {
	ctx := context.Background()
	mem := openInMemory(t)
	defer mem.Close()
	disk := openDir(t, t.TempDir(), badgerstore.Options{Durability: badgerstore.Fast})
	defer disk.Close()
	for _, c := range []struct {
		name       string
		s          store.Store
		key, value []byte
	}{
		{"LongKey", disk, bytes.Repeat([]byte("k"), 70000), nil},
		{"Value1MiBInMemory", mem, []byte("k"), make([]byte, 1<<20)},
		{"ValueOver64MiBOnDisk", disk, []byte("k"), make([]byte, 64<<20+1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Update(ctx, func(tx store.Tx) error {
				err := tx.Set(c.key, c.value)
				if !errors.Is(err, store.ErrTooLarge) {
					t.Errorf("Set: %v; want ErrTooLarge", err)
				}
				if len(err.Error()) > 200 {
					t.Errorf("message of %d bytes; keep it short: %.200s...", len(err.Error()), err)
				}
				return nil
			})
			if !errors.Is(err, store.ErrTooLarge) {
				t.Fatalf("Update: %v; want ErrTooLarge", err)
			}
		})
	}
	// Just under 1 MiB fits in memory, 3 MiB on disk; large values do
	// not count towards the size of a transaction on disk.
	if err := mem.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte("k"), make([]byte, 1<<20-1)) }); err != nil {
		t.Fatalf("1 MiB - 1 in memory: %v", err)
	}
	err := disk.Update(ctx, func(tx store.Tx) error {
		for i := 0; i < 8; i++ {
			if err := tx.Set([]byte(fmt.Sprintf("k%d", i)), make([]byte, 3<<20)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("8 values of 3 MiB in one transaction on disk: %v", err)
	}
}

// TestSmallFootprint: an empty database reserves little disk space (the
// files Badger preallocates are sparse and modest) and leaves little
// behind once closed.
func TestSmallFootprint(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, badgerstore.Options{})
	apparent, allocated := diskUsage(t, dir)
	if apparent > 256<<20 || allocated > 1<<20 {
		t.Errorf("open empty database: %d bytes apparent, %d allocated; want at most 256 MiB and 1 MiB", apparent, allocated)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	apparent, allocated = diskUsage(t, dir)
	if apparent > 2<<20 || allocated > 1<<20 {
		t.Errorf("closed empty database: %d bytes apparent, %d allocated; want at most 2 MiB and 1 MiB", apparent, allocated)
	}
}

func diskUsage(t *testing.T, dir string) (apparent, allocated int64) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		fi, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			allocated += st.Blocks * 512
		}
		names = append(names, fmt.Sprintf("%s=%d", e.Name(), fi.Size()))
	}
	t.Logf("%s: %s", dir, strings.Join(names, " "))
	return apparent, allocated
}
