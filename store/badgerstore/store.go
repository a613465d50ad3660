package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowscript/flowscript/internal/failpoint"
	"github.com/flowscript/flowscript/store"
)

// Store is a store.Store on a Badger database.
type Store struct {
	db   *badger.DB
	opts Options
	dir  string // "" in memory
	// readOnly: opened by OpenReadOnly
	readOnly bool
	// tmpDir is the copy OpenReadOnly opened, removed by Close
	tmpDir string
	// space keeps commits from filling the file system (see space.go)
	space *spaceGuard
	// maxValue is the largest value Set accepts.
	maxValue int64

	// mu guards closing and inflight; idle is signalled when inflight
	// drops to zero while closing.
	mu       sync.Mutex
	idle     *sync.Cond
	inflight int
	closing  bool
	// lock is held from before Badger opens until after it closes.
	lock *dirLock
	// closed is closed when Close begins, ending every Watch.
	closed chan struct{}

	// hubs are the Badger subscriptions of the watches, one per
	// watched prefix
	hubMu       sync.Mutex
	hubs        map[string]*hub
	hubsStopped bool

	stopGC context.CancelFunc
	gcDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database in directory dir.
//
// Before Badger opens anything, Open refuses (with a *store.CorruptError
// and without writing a file) a directory that holds other files and is
// not marked as a flowscript database (ErrNotFlowscript), and a database
// whose files do not agree: a MANIFEST that is missing, cut short or names
// missing tables, many tables it does not name, a memtable log missing
// after an unclean stop. Once open, every table's checksums are verified.
//
// If another process (or another Store in this process) holds the
// directory, Open returns a *store.LockedError naming the holder's pid. If
// the directory's content is damaged, or dir is not a directory, it
// returns a *store.CorruptError. A lock left behind by a process that was
// killed is no obstacle: it is an flock, released by the kernel when its
// holder dies.
func Open(dir string, opts Options) (*Store, error) {
	lock, err := claimAndLock(dir, true)
	if err != nil {
		return nil, err
	}
	dir = lock.dir
	opts = opts.withDefaults()
	if free, err := freeBytes(dir); err == nil && free < spaceReserve {
		lock.release()
		return nil, noSpace(dir, free)
	}
	// verify read-only first: nothing is written to a damaged database.
	// After a kill Badger must cut its memtable log back to the last
	// whole entry, which it does only when opened for writing: then the
	// verification comes after the open.
	ro, err := openReadOnly(dir, lock, opts)
	if err != nil && strings.Contains(err.Error(), "Log truncate required") {
		// Badger cuts a log a kill left back only when it opens for
		// writing: verify a copy
		ro, err = openCopy(dir, opts)
	}
	if err != nil {
		lock.release()
		return nil, err
	}
	verr := ro.verifyOnOpen()
	ro.closeBadger()
	if verr != nil {
		lock.release()
		return nil, &store.CorruptError{Dir: dir, Err: verr}
	}
	s, err := open(dir, badgerOptions(dir, false, opts), opts, opts.valueLogFileSize)
	if err != nil {
		lock.release()
		return nil, err
	}
	s.lock = lock
	s.space = &spaceGuard{dir: dir}
	if err := writeMarker(dir, markerOpen); err != nil {
		s.Close()
		return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
	}
	return s, nil
}

// OpenReadOnly opens an existing database for reading only, after the
// same checks of its files as Open; it writes nothing. Verify checks the
// rest.
func OpenReadOnly(dir string, opts Options) (*Store, error) {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			return nil, &store.CorruptError{Dir: dir, Err: errors.New("it is a file, not a directory")}
		}
		return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
	}
	lock, err := claimAndLock(dir, false)
	if err != nil {
		return nil, err
	}
	s, err := openReadOnly(lock.dir, lock, opts.withDefaults())
	if err != nil && strings.Contains(err.Error(), "Log truncate required") {
		// a killed process left a memtable log that Badger must cut
		// back, which it does only for writing: open a copy
		s, err = openCopy(lock.dir, opts)
	}
	if err != nil {
		lock.release()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

// openCopy opens a copy of dir's files, in a temporary directory that
// Close removes. The copy is a real one (holes kept): never hard links,
// because Badger truncates a table file to zero before it removes it,
// which through a link would destroy the original.
func openCopy(dir string, opts Options) (*Store, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".flowscript-verify-")
	if err != nil {
		tmp, err = os.MkdirTemp("", "flowscript-verify-")
	}
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	for _, e := range entries {
		if e.IsDir() || !badgerFile(e.Name()) || e.Name() == dirLockName || strings.HasPrefix(e.Name(), "flowscript.sock") {
			continue
		}
		if err := copyFile(filepath.Join(dir, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	s, err := open(tmp, badgerOptions(tmp, false, opts.withDefaults()), opts.withDefaults(), 0)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	s.readOnly, s.tmpDir = true, tmp
	return s, nil
}

// copyFile copies from into a new file to, leaving holes where the
// source reads as zeros: Badger's logs are mostly-sparse files of tens of
// MiB. (It reads everything: SEEK_DATA may not see pages written through
// a memory map and not yet flushed.)
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for off := int64(0); ; {
		n, err := in.ReadAt(buf, off)
		if n > 0 && !allZero(buf[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				out.Close()
				return werr
			}
		}
		off += int64(n)
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			out.Close()
			return err
		}
	}
	if err := out.Truncate(fi.Size()); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// claimAndLock refuses a directory that is not ours, makes a missing one
// (with create), and takes the directory lock.
func claimAndLock(dir string, create bool) (*dirLock, error) {
	if dir == "" {
		return nil, errors.New("badgerstore: open: empty directory name")
	}
	fi, statErr := os.Stat(dir)
	if statErr == nil && !fi.IsDir() {
		return nil, &store.CorruptError{Dir: dir, Err: errors.New("it is a file, not a directory")}
	}
	if statErr == nil {
		if _, err := claimDir(dir); err != nil {
			if errors.Is(err, os.ErrPermission) {
				return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
			}
			return nil, &store.CorruptError{Dir: dir, Err: err}
		}
	}
	if create {
		// Badger creates missing parents with mode 0700 too, but reports
		// failures without their cause's type.
		if err := os.MkdirAll(dir, 0o700); err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENOTDIR) {
				return nil, &store.CorruptError{Dir: dir, Err: err}
			}
			return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	if err := preflight(dir); err != nil {
		lock.release()
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
		}
		return nil, &store.CorruptError{Dir: dir, Err: err}
	}
	return lock, nil
}

// openReadOnly opens Badger read-only on a locked, preflighted dir. A
// directory Badger never initialised (no MANIFEST) opens as an empty
// in-memory database, so that nothing is created.
func openReadOnly(dir string, lock *dirLock, opts Options) (*Store, error) {
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); errors.Is(err, os.ErrNotExist) {
		bo := badgerOptions("", true, opts).WithValueThreshold(inMemoryValueThreshold)
		s, err := open("", bo, opts, 0)
		if err != nil {
			return nil, err
		}
		s.dir, s.readOnly = dir, true
		return s, nil
	}
	bo := badgerOptions(dir, false, opts).WithReadOnly(true)
	s, err := open(dir, bo, opts, 0)
	if err != nil {
		return nil, err
	}
	s.readOnly = true
	return s, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// closeBadger closes a store that Open used only to verify.
func (s *Store) closeBadger() {
	if s.stopGC != nil {
		s.stopGC()
		<-s.gcDone
	}
	s.stopHubs()
	s.db.Close()
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
	}
}

// preflight is what Open checks before Badger opens dir.
func preflight(dir string) error {
	state, err := readMarker(dir)
	if err != nil {
		return err
	}
	if err := verifyFiles(dir, state); err != nil {
		return err
	}
	return checkTables(dir)
}

// OpenInMemory opens an empty database that lives in memory only and is
// lost on Close. Values must be smaller than 1 MiB (Badger keeps them
// inline in memory).
func OpenInMemory(opts Options) (*Store, error) {
	opts = opts.withDefaults()
	bo := badgerOptions("", true, opts)
	bo = bo.WithValueThreshold(inMemoryValueThreshold)
	return open("", bo, opts, inMemoryValueThreshold-1)
}

// inMemoryValueThreshold is Badger's largest value threshold. In memory
// every value must stay below it: Badger accepts a value of exactly the
// threshold in memory, then panics writing it.
const inMemoryValueThreshold = 1 << 20

func open(dir string, bo badger.Options, opts Options, maxValue int64) (s *Store, err error) {
	defer func() {
		// Badger panics on some kinds of damage instead of returning an
		// error; a damaged directory must not take the process down.
		if r := recover(); r != nil {
			s, err = nil, &store.CorruptError{Dir: dir, Err: fmt.Errorf("%v", r)}
		}
	}()
	db, err := badger.Open(bo)
	if err != nil {
		if dir == "" {
			return nil, fmt.Errorf("badgerstore: open in memory: %w", err)
		}
		return nil, openError(dir, err)
	}
	s = &Store{
		db:       db,
		opts:     opts,
		dir:      dir,
		maxValue: maxValue,
		closed:   make(chan struct{}),
	}
	s.idle = sync.NewCond(&s.mu)
	s.hubs = map[string]*hub{}
	if dir != "" && opts.ValueLogGCInterval > 0 && !bo.ReadOnly {
		s.startGC(opts.ValueLogGCInterval)
	}
	opts.Logger.Debug("database opened", "dir", dir, "durability", opts.Durability)
	return s, nil
}

// Dir returns the database directory, or "" for an in-memory database.
func (s *Store) Dir() string { return s.dir }

// enter registers a running operation; it fails once Close has begun.
func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return store.ErrClosed
	}
	s.inflight++
	return nil
}

func (s *Store) leave() {
	s.mu.Lock()
	s.inflight--
	if s.inflight == 0 && s.closing {
		s.idle.Broadcast()
	}
	s.mu.Unlock()
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("%w: the database was opened read-only", store.ErrReadOnly)
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := s.attempt(ctx, fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
		if attempt >= s.opts.MaxUpdateAttempts {
			return fmt.Errorf("%w (%d attempts)", store.ErrConflict, attempt)
		}
		if err := backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// attempt runs fn once in a new transaction and commits it. It returns
// badger.ErrConflict, unmapped, when the commit lost a race.
func (s *Store) attempt(ctx context.Context, fn func(tx store.Tx) error) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	t := &tx{ctx: ctx, txn: txn, writable: true, maxValue: s.maxValue}
	err := func() error {
		defer func() { t.done = true }()
		return fn(t)
	}()
	switch {
	case err != nil:
		return err
	case t.writeErr != nil:
		return t.writeErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.space.check(t.written); err != nil {
		return err
	}
	if failpoint.Enabled() {
		t.hitFailpoints("before-commit:")
	}
	if err := txn.Commit(); err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return s.guardConflict(t, err)
		}
		return txError("commit", err)
	}
	if failpoint.Enabled() {
		t.hitFailpoints("after-commit:")
	}
	return nil
}

// backoff sleeps before the next attempt of a conflicting Update, so that
// racing committers spread out instead of colliding again: no wait after
// the first conflict, then a random wait ("full jitter") below a ceiling
// that doubles from 100 µs up to 5 ms.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 1 {
		return nil
	}
	ceiling := 5 * time.Millisecond
	if attempt < 8 {
		ceiling = min(ceiling, 100*time.Microsecond<<(attempt-2))
	}
	t := time.NewTimer(rand.N(ceiling) + 1)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// View implements store.Store.
func (s *Store) View(ctx context.Context, fn func(tx store.Tx) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	t := &tx{ctx: ctx, txn: txn, maxValue: s.maxValue}
	defer func() { t.done = true }()
	return fn(t)
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.closed)
	for s.inflight > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()

	if s.stopGC != nil {
		s.stopGC()
		<-s.gcDone
	}
	s.stopHubs()
	if s.dir != "" && !s.readOnly {
		// Badger's Close flushes the memtable and removes its log: a
		// kill in the middle must not look like a lost log
		writeMarker(s.dir, markerClosing)
	}
	err := s.db.Close()
	if err == nil && s.dir != "" && !s.readOnly {
		err = writeMarker(s.dir, markerClosed)
	}
	s.lock.release()
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
	}
	if err != nil {
		return fmt.Errorf("badgerstore: close: %w", err)
	}
	s.opts.Logger.Debug("database closed", "dir", s.dir)
	return nil
}
