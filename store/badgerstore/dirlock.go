package badgerstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/flowscript/flowscript/store"
)

// dirLockName is the lock this package takes before it looks at any of
// Badger's files: a second process must not read tables that the holder
// is writing (it would see half-written files and call them damaged).
const dirLockName = "flowscript.lock"

// dirLock is an exclusive flock on dir/flowscript.lock holding the pid of
// its process. The kernel releases it when the process dies, so a lock
// left by a killed process is no obstacle.
type dirLock struct {
	f   *os.File
	dir string // the absolute directory it locks
}

func lockDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, dirLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &store.LockedError{Dir: dir, PID: dirLockHolder(dir)}
		}
		return nil, fmt.Errorf("badgerstore: lock database %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f, dir: dir}, nil
}

func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// dirLockHolder reads the pid in the lock file, or falls back to Badger's.
func dirLockHolder(dir string) int {
	if b, err := os.ReadFile(filepath.Join(dir, dirLockName)); err == nil {
		if pid, err := strconv.Atoi(string(trimSpace(b))); err == nil && pid > 0 {
			return pid
		}
	}
	return lockHolder(dir)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
