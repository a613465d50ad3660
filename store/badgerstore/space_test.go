package badgerstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// smallFS mounts a tmpfs of size bytes (root only; skipped otherwise) and
// returns its directory and a function that resizes it.
func smallFS(t *testing.T, size string) (string, func(size string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir, func(size string) {
		if out, err := exec.Command("mount", "-o", "remount,size="+size, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount: %v %s", err, out)
		}
	}
}

// On a full file system a commit fails with "no space left on device"
// instead of the process dying of SIGBUS in Badger's memory-mapped logs;
// what was committed stays, and once there is space again commits go on.
func TestFullDiskIsAnErrorNotACrash(t *testing.T) {
	fs, resize := smallFS(t, "5m")
	dir := fs + "/db"
	s := openDir(t, dir, badgerstore.Options{})
	big := make([]byte, 300<<10)
	committed := 0
	var err error
	for i := 0; i < 100; i++ {
		err = s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set([]byte(fmt.Sprintf("k/%03d", i)), big)
		})
		if err != nil {
			break
		}
		committed++
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("after %d commits: %v; want no space left on device", committed, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close on a full file system: %v", err)
	}
	// reopening on the full file system is refused or works, never a crash
	if s2, err := badgerstore.Open(dir, badgerstore.Options{}); err == nil {
		s2.Close()
	} else if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("reopen: %v", err)
	}
	resize("50m")
	s = openDir(t, dir, badgerstore.Options{})
	defer s.Close()
	n := 0
	err = s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("k/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error { n++; return nil })
	})
	if err != nil || n != committed {
		t.Fatalf("after more space: %d keys, %v; want the %d committed", n, err, committed)
	}
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Set([]byte("k/more"), big) }); err != nil {
		t.Fatalf("commit once there is space: %v", err)
	}
}
