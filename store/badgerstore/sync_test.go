package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
)

// newestFile is the highest id among the directory's files with the given
// extension, or -1.
func newestFile(t *testing.T, dir, ext string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	newest := -1
	for _, e := range entries {
		if base, ok := strings.CutSuffix(e.Name(), ext); ok {
			if fid, err := strconv.Atoi(base); err == nil && fid > newest {
				newest = fid
			}
		}
	}
	return newest
}

// TestSyncFollowsNewestFiles writes enough to make Badger start new
// memtable and value log files several times, and checks after every
// commit that the file the syncer synced last is the newest one on disk:
// the one that holds the commit.
func TestSyncFollowsNewestFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Durability: Durable, ValueLogGCInterval: -1, valueLogFileSize: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	inline := bytes.Repeat([]byte("i"), valueThreshold-1024) // kept in the memtable's log
	large := bytes.Repeat([]byte("L"), valueThreshold+1024)  // kept in the value log
	firstMem, firstVlog := s.syncer.mem.fid, s.syncer.vlog.fid
	for i := 0; i < 700; i++ {
		value := inline
		if i%5 == 0 {
			value = large
		}
		before := s.syncer.syncs.Load()
		if err := s.Update(ctx, func(tx store.Tx) error {
			return tx.Set([]byte(fmt.Sprintf("k%03d", i%50)), value)
		}); err != nil {
			t.Fatal(err)
		}
		if s.syncer.syncs.Load() == before {
			t.Fatalf("commit %d returned without a sync", i)
		}
		if got, want := s.syncer.mem.fid, newestFile(t, dir, ".mem"); got != want {
			t.Fatalf("after commit %d the syncer is on memtable file %d, the newest is %d", i, got, want)
		}
		if &value[0] == &large[0] {
			if got, want := s.syncer.vlog.fid, newestFile(t, dir, ".vlog"); got != want {
				t.Fatalf("after commit %d the syncer is on value log file %d, the newest is %d", i, got, want)
			}
		}
	}
	if s.syncer.mem.fid-firstMem < 2 || s.syncer.vlog.fid-firstVlog < 2 {
		t.Fatalf("the test did not make Badger start new files: memtable files %d..%d, value log files %d..%d",
			firstMem, s.syncer.mem.fid, firstVlog, s.syncer.vlog.fid)
	}
}

// TestSyncSharedByConcurrentCommits: commits that wait at the same time
// share syncs, and every one of them is covered by one.
func TestSyncSharedByConcurrentCommits(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Durability: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(context.Background(), func(tx store.Tx) error {
					return tx.Set([]byte(fmt.Sprintf("w%d/%d", w, i)), []byte("v"))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.syncer.mu.Lock()
	written, synced := s.syncer.written, s.syncer.synced
	s.syncer.mu.Unlock()
	syncs := s.syncer.syncs.Load()
	if written != writers*each || synced != written {
		t.Fatalf("%d commits registered, %d covered by a finished sync; want %d and %d", written, synced, writers*each, writers*each)
	}
	if syncs >= written {
		t.Fatalf("%d syncs for %d concurrent commits: none was shared", syncs, written)
	}
	t.Logf("%d commits, %d syncs", written, syncs)
}

// TestSyncFailureIsSticky: once a sync fails, the commit waiting for it
// and every later one fail (whether the kernel still holds what it could
// not sync is unknown), and what was synced before is still there after
// reopening.
func TestSyncFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{Durability: Durable})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	set := func(k string) error {
		return s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte(k), []byte("v")) })
	}
	if err := set("before"); err != nil {
		t.Fatal(err)
	}
	// a descriptor that can no longer be synced
	s.syncer.mem.f.Close()
	for _, k := range []string{"failed", "later"} {
		err := set(k)
		if err == nil || !strings.Contains(err.Error(), "sync") {
			t.Fatalf("commit %q: got %v, want a sync error", k, err)
		}
	}
	s.Close()
	s, err = Open(dir, Options{Durability: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(ctx, func(tx store.Tx) error {
		_, err := tx.Get([]byte("before"))
		return err
	})
	if err != nil {
		t.Fatalf("the commit synced before the failure: %v", err)
	}
	if err := set("after reopening"); err != nil {
		t.Fatal(err)
	}
}

// TestFastModeDoesNotSync: the fast mode has no syncer, and a read-only
// Update in durable mode costs no sync.
func TestFastModeDoesNotSync(t *testing.T) {
	f, err := Open(t.TempDir(), Options{Durability: Fast})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.syncer != nil {
		t.Fatal("the fast mode has a syncer")
	}
	d, err := Open(t.TempDir(), Options{Durability: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	before := d.syncer.syncs.Load()
	err = d.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.Get([]byte("absent"))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.syncer.syncs.Load() - before; n != 0 {
		t.Fatalf("a read-only update made %d syncs", n)
	}
}

// TestViewWaitsForSync: a View whose snapshot holds a commit that is
// written but still being synced returns only after the sync; a View
// with nothing in flight syncs nothing.
func TestViewWaitsForSync(t *testing.T) {
	s, err := Open(t.TempDir(), Options{Durability: Durable})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	release := make(chan struct{})
	var releaseOnce sync.Once
	// before Close, which waits for the held Update, also when failing
	defer releaseOnce.Do(func() { close(release) })
	syncing := make(chan struct{}, 1)
	s.syncer.beforeSync = func() {
		select {
		case syncing <- struct{}{}:
			<-release
		default:
		}
	}
	updated := make(chan error, 1)
	go func() {
		updated <- s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte("k"), []byte("v")) })
	}()
	<-syncing // the commit is written; its sync is held
	viewed := make(chan error, 1)
	go func() {
		viewed <- s.View(ctx, func(tx store.Tx) error {
			_, err := tx.Get([]byte("k"))
			return err
		})
	}()
	select {
	case err := <-viewed:
		t.Fatalf("View returned (%v) while the commit it reads was not synced", err)
	case err := <-updated:
		t.Fatalf("Update returned (%v) before its sync", err)
	case <-time.After(100 * time.Millisecond):
	}
	releaseOnce.Do(func() { close(release) })
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if err := <-viewed; err != nil {
		t.Fatalf("View after the sync: %v", err)
	}
	before := s.syncer.syncs.Load()
	if err := s.View(ctx, func(tx store.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if n := s.syncer.syncs.Load() - before; n != 0 {
		t.Fatalf("a View with nothing in flight made %d syncs", n)
	}
}
