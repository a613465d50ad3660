package badgerstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowscript/flowscript/store"
)

// Badger formats most wrapped errors with %v, so the cause's type is lost
// by the time Open returns and the error text is all there is to go on.

// lockMessage is the text of Badger's error when flock on the directory
// fails (dir_unix.go).
const lockMessage = "Cannot acquire directory lock"

// environmentErrnos are failures of the machine rather than of the
// database's content: they are reported as they are, not as ErrCorrupt.
var environmentErrnos = []syscall.Errno{
	syscall.EACCES, syscall.EPERM, syscall.ENOSPC, syscall.EROFS,
	syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.EDQUOT, syscall.EIO,
}

// openError maps an error of badger.Open on dir to the store package's.
func openError(dir string, err error) error {
	msg := err.Error()
	if strings.Contains(msg, lockMessage) || errors.Is(err, syscall.EWOULDBLOCK) {
		return &store.LockedError{Dir: dir, PID: lockHolder(dir)}
	}
	for _, errno := range environmentErrnos {
		if errors.Is(err, errno) || strings.Contains(msg, errno.Error()) {
			return fmt.Errorf("badgerstore: open database %s: %w", dir, err)
		}
	}
	return &store.CorruptError{Dir: dir, Err: err}
}

// lockHolder returns the pid Badger wrote into the LOCK file of dir, or
// 0. The file is advisory: it can be missing for an instant while its
// holder starts, and it is left behind (stale) when its holder is killed,
// which is harmless because the lock itself is an flock that the kernel
// releases with the process.
func lockHolder(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "LOCK"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// txError maps an error of a Badger transaction operation.
func txError(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, badger.ErrKeyNotFound):
		return store.ErrNotFound
	case errors.Is(err, badger.ErrTxnTooBig):
		return fmt.Errorf("%w: %s would exceed the size of one commit; split the work into several transactions", store.ErrTooLarge, op)
	case strings.Contains(err.Error(), "exceeded") && strings.Contains(err.Error(), "size"):
		// Badger's exceedsSize: a key over 65000 bytes or a value
		// over the value log file size (or, in memory, the inline
		// value limit).
		return fmt.Errorf("%w: %s: %v", store.ErrTooLarge, op, err)
	case errors.Is(err, badger.ErrDBClosed), errors.Is(err, badger.ErrBlockedWrites):
		return fmt.Errorf("%w (%s)", store.ErrClosed, op)
	case errors.Is(err, badger.ErrEmptyKey), errors.Is(err, badger.ErrInvalidKey):
		return fmt.Errorf("%w: %s: %v", store.ErrReservedKey, op, err)
	}
	return fmt.Errorf("badgerstore: %s: %w", op, err)
}
