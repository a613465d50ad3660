package badgerstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/flowscript/flowscript/store"
)

// Store is a store.Store on a Badger database.
type Store struct {
	db   *badger.DB
	opts Options
	dir  string // "" in memory
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

	hub *hub

	stopGC context.CancelFunc
	gcDone chan struct{}
}

var _ store.Store = (*Store)(nil)

// Open opens (creating it if needed) the database in directory dir.
//
// If another process (or another Store in this process) holds the
// directory, Open returns a *store.LockedError naming the holder's pid. If
// the directory's content is damaged, or dir is not a directory, it
// returns a *store.CorruptError. A lock left behind by a process that was
// killed is no obstacle: it is an flock, released by the kernel when its
// holder dies.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("badgerstore: open: empty directory name")
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, &store.CorruptError{Dir: dir, Err: errors.New("it is a file, not a directory")}
	}
	// Badger creates missing parents with mode 0700 too, but reports
	// failures without their cause's type.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && errors.Is(pe.Err, syscall.ENOTDIR) {
			return nil, &store.CorruptError{Dir: dir, Err: err}
		}
		return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	if err := checkTables(dir); err != nil {
		lock.release()
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("badgerstore: open database %s: %w", dir, err)
		}
		return nil, &store.CorruptError{Dir: dir, Err: err}
	}
	opts = opts.withDefaults()
	s, err := open(dir, badgerOptions(dir, false, opts), opts, opts.valueLogFileSize)
	if err != nil {
		lock.release()
		return nil, err
	}
	s.lock = lock
	return s, nil
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
	s.hub = newHub(s)
	if dir != "" && opts.ValueLogGCInterval > 0 {
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
	if err := txn.Commit(); err != nil {
		if errors.Is(err, badger.ErrConflict) {
			return s.guardConflict(t, err)
		}
		return txError("commit", err)
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
	s.hub.stop()
	err := s.db.Close()
	s.lock.release()
	if err != nil {
		return fmt.Errorf("badgerstore: close: %w", err)
	}
	s.opts.Logger.Debug("database closed", "dir", s.dir)
	return nil
}
