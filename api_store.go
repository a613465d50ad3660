package flowscript

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowscript/flowscript/store/lease"
	"github.com/flowscript/flowscript/store/natsstore"
)

// A database can live in a NATS JetStream stream instead of a Badger
// directory, so that engines on many machines share it: one process at a
// time owns it (a lease with a heartbeat), every commit of the owner's
// engine is fenced on that ownership, and another process takes the
// database over once the owner's heartbeat has been still for the
// takeover time. Other processes read it directly. This is what
// `flowscript --store nats://...` runs on.

// NATSOptions tunes OpenNATS. The zero value is the default.
type NATSOptions struct {
	// Durability: Durable waits for the server's acknowledgement of
	// each commit, Fast does not.
	Durability Durability
	// MustExist opens only a database that exists: OpenNATS fails with
	// ErrNoDatabase instead of creating the stream (a command that reads
	// must not leave a database behind under a mistyped name).
	MustExist bool
}

// ErrNoDatabase is OpenNATS's error, with MustExist, when the server has
// no database of that name.
var ErrNoDatabase = natsstore.ErrNoDatabase

// NATSStore is a database kept in a NATS JetStream stream.
type NATSStore struct {
	st  *natsstore.Store
	url string
	// used: an engine owns st now, and closes it
	used bool
}

// OpenNATS connects to the database of a nats://host:port[/name] URL (the
// stream name, by default "flowscript"), creating the stream if needed.
// Start an engine on it with Engine (as its owner) or ReadOnlyEngine.
func OpenNATS(url string, opts NATSOptions) (*NATSStore, error) {
	dur := natsstore.Durable
	if opts.Durability == Fast {
		dur = natsstore.Fast
	}
	st, err := natsstore.Open(natsstore.Options{URL: url, Durability: dur, MustExist: opts.MustExist})
	if err != nil {
		return nil, err
	}
	return &NATSStore{st: st, url: url}, nil
}

// URL is the URL the store was opened with.
func (s *NATSStore) URL() string { return s.url }

// Stream is the name of the JetStream stream that holds the database.
func (s *NATSStore) Stream() string { return s.st.StreamName() }

// Close closes the connection, unless an engine was started on the store
// (the engine's Close closes it then).
func (s *NATSStore) Close() error {
	if s.used {
		return nil
	}
	return s.st.Close()
}

// Owner is a process that owns a database on NATS.
type Owner struct {
	// ID is the ownership's random id; Host and PID the process's
	// machine and process id; Since when it took the database.
	ID    string
	Host  string
	PID   int
	Since time.Time
}

func (o Owner) String() string { return lease.Token(o).String() }

// Owner reads who owns the database; ok is false when nobody does.
func (s *NATSStore) Owner(ctx context.Context) (owner Owner, ok bool, err error) {
	t, ok, err := lease.ReadOwner(ctx, s.st)
	return Owner(t), ok, err
}

// DefaultTakeover is the default of AcquireOptions.Takeover.
const DefaultTakeover = lease.DefaultTakeover

// AcquireOptions tunes Acquire. The zero value takes a free database, or
// one whose owner's heartbeat stays still for DefaultTakeover.
type AcquireOptions struct {
	// Takeover is how long the owner's heartbeat must stay still before
	// the database is taken from it.
	Takeover time.Duration
	// Wait: keep waiting while the owner is alive (what serve does).
	// Without it Acquire returns an *OwnedError as soon as the owner's
	// heartbeat moves.
	Wait bool
	// Waiting, if set, is told once that another process owns the
	// database and Acquire watches its heartbeat.
	Waiting func(owner Owner)
}

// OwnedError is what Acquire returns when the database has a live owner.
type OwnedError struct {
	Owner Owner
	err   *lease.OwnedError
}

func (e *OwnedError) Error() string { return e.err.Error() }

// Lease is this process's ownership of a database on NATS.
type Lease struct {
	// Previous is the owner the database was taken from (zero when it
	// was free), and Waited how long its heartbeat was watched.
	Previous Owner
	Waited   time.Duration
	l        *lease.Lease
}

// Acquire makes this process the owner of the database: at once when
// nobody owns it, else once the owner's heartbeat has been still for
// opts.Takeover. It ends early with ctx.
func (s *NATSStore) Acquire(ctx context.Context, opts AcquireOptions) (*Lease, error) {
	cfg := lease.Config{Takeover: opts.Takeover, Wait: opts.Wait}
	if opts.Waiting != nil {
		cfg.Waiting = func(t lease.Token) { opts.Waiting(Owner(t)) }
	}
	l, err := lease.Acquire(ctx, s.st, cfg)
	var owned *lease.OwnedError
	if errors.As(err, &owned) {
		return nil, &OwnedError{Owner: Owner(owned.Owner), err: owned}
	}
	if err != nil {
		return nil, err
	}
	return &Lease{Previous: Owner(l.Previous), Waited: l.Waited, l: l}, nil
}

// Owner is this process as the database's owner.
func (l *Lease) Owner() Owner { return Owner(l.l.Owner()) }

// SetLost sets what is called (once, on its own goroutine) when this
// process stops being the owner: another took the database, or the
// heartbeat could not be renewed in time. The process must then stop:
// its engine's commits are refused, its runs stay unfinished for the new
// owner. If the lease is already lost, fn is called at once.
func (l *Lease) SetLost(fn func(err error)) { l.l.SetLost(fn) }

// Err is nil while this process owns the database; once it lost it,
// why (the lease was taken, or the heartbeat could not be renewed in
// time). It is set before any commit the fence refused returns.
func (l *Lease) Err() error { return l.l.Err() }

// Release stops the heartbeat and frees the database if this process
// still owns it, so that a waiting process takes it at once. An engine
// started with the lease releases it on Close.
func (l *Lease) Release() error { return l.l.Release() }

// Engine starts an engine that owns the database through l: each of its
// commits lands only while l holds. The engine owns the store and the
// lease from then on: its Close releases the lease and closes the store.
func (s *NATSStore) Engine(l *Lease, opts Options) (*Engine, error) {
	if l == nil {
		return nil, errors.New("flowscript: NATSStore.Engine needs the Lease that Acquire gave")
	}
	if err := s.take(); err != nil {
		return nil, err
	}
	return newEngine(&lease.Fenced{Store: s.st, L: l.l}, opts)
}

// ReadOnlyEngine starts an engine that reads the database, whoever owns
// it, and refuses every change with reason. Its Close closes the store.
func (s *NATSStore) ReadOnlyEngine(reason error, opts Options) (*Engine, error) {
	if err := s.take(); err != nil {
		return nil, err
	}
	if reason == nil {
		reason = fmt.Errorf("the database %s is open read-only", s.url)
	}
	return newEngine(lease.ReadOnly{Store: s.st, Reason: reason}, opts)
}

func (s *NATSStore) take() error {
	if s.used {
		return errors.New("flowscript: an engine was started on this NATSStore already")
	}
	s.used = true
	return nil
}
