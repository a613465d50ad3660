package store

import (
	"errors"
	"fmt"
)

// Sentinel errors. Implementations may wrap them with detail; test with
// errors.Is.
var (
	// ErrNotFound: Tx.Get found no value under the key.
	ErrNotFound = errors.New("store: key not found")

	// ErrConflict: Update lost the optimistic-concurrency race on every
	// attempt it was allowed. Nothing was written by the last attempt.
	ErrConflict = errors.New("store: transaction conflict persisted after retries")

	// ErrClosed: the Store has been closed.
	ErrClosed = errors.New("store: store is closed")

	// ErrStop is returned by a Tx.Scan callback to end the scan early. It
	// is not an error to the caller: Scan then returns nil.
	ErrStop = errors.New("store: stop scan")

	// ErrLocked: the database is held by another process (or by another
	// open Store in this process). The error is a *LockedError, which
	// names the directory and, when it can be found, the holder's pid.
	ErrLocked = errors.New("store: database is locked by another process")

	// ErrCorrupt: the data directory is damaged or is not a database at
	// all. The error is a *CorruptError, which wraps the cause.
	ErrCorrupt = errors.New("store: database is damaged")

	// ErrTooLarge: a transaction, key or value is too large for one
	// commit. Nothing is written; split the work into several
	// transactions or store less.
	ErrTooLarge = errors.New("store: transaction too large")

	// ErrReadOnly: Set or Delete was called inside View.
	ErrReadOnly = errors.New("store: write in a read-only transaction")

	// ErrGuardFailed: a Tx.Guard found another value than it wanted, or
	// the guarded key changed before the transaction committed. Update
	// does not retry it.
	ErrGuardFailed = errors.New("store: guard failed")

	// ErrReservedKey: Set or Delete was given an empty key or one that
	// begins with ReservedPrefix.
	ErrReservedKey = errors.New("store: key is empty or reserved")
)

// LockedError reports that a database directory is held by another
// process. It matches ErrLocked with errors.Is.
type LockedError struct {
	// Dir is the database directory.
	Dir string
	// PID is the process that holds it, or 0 when it cannot be found.
	PID int
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("database %s is in use by another process (pid %d); stop that process or use another database directory", e.Dir, e.PID)
	}
	return fmt.Sprintf("database %s is in use by another process; stop that process or use another database directory", e.Dir)
}

// Is reports whether target is ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// CorruptError reports that a database directory cannot be opened because
// its content is damaged, or because it is not a database. It matches
// ErrCorrupt with errors.Is and unwraps to its cause.
type CorruptError struct {
	// Dir is the database directory.
	Dir string
	// Err is what the storage engine reported.
	Err error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("database %s is damaged or is not a flowscript database: %v (restore it from a backup, or move it aside to start with an empty database)", e.Dir, e.Err)
}

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the cause.
func (e *CorruptError) Unwrap() error { return e.Err }
