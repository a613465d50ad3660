package badgerstore

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// Badger writes its value log and memtable log through memory maps of
// sparse files. On a full file system a write to such a map cannot be
// given a page, and the kernel sends SIGBUS, which kills the process
// (Go cannot turn it into an error on Badger's goroutines). So the store
// keeps a reserve of free space: a commit that would leave less than it
// fails with ENOSPC ("no space left on device") before Badger writes, and
// Open refuses a database on a file system that has less free.

// spaceReserve is the free space a commit must leave: room for Badger to
// roll its logs, flush a memtable and write its MANIFEST.
const spaceReserve = 1 << 20

// spaceRecheck is how long a reading of plenty of free space is trusted.
const spaceRecheck = 100 * time.Millisecond

// plentyOfSpace is free space that needs no reading before every commit.
const plentyOfSpace = 256 << 20

type spaceGuard struct {
	dir string
	mu  sync.Mutex
	at  time.Time
	// free is the last reading, less what commits wrote since
	free int64
}

func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// check fails with ENOSPC when writing n more bytes would leave less than
// the reserve.
func (g *spaceGuard) check(n int64) error {
	if g == nil || g.dir == "" {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.at) > spaceRecheck || g.free-n < plentyOfSpace {
		free, err := freeBytes(g.dir)
		if err != nil {
			return nil // cannot tell: let the write say
		}
		g.free, g.at = free, time.Now()
	}
	// a value is written twice in the worst case (log, then table)
	if g.free-2*n < spaceReserve {
		return noSpace(g.dir, g.free)
	}
	g.free -= n
	return nil
}

func noSpace(dir string, free int64) error {
	return fmt.Errorf("badgerstore: database %s: %w: %s free, and the database needs %s in reserve; free some space, then continue with flowscript resume", dir, syscall.ENOSPC, byteCount(free), byteCount(spaceReserve))
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
