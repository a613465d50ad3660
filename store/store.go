package store

import "context"

// Store is a transactional, ordered key-value store. Keys and values are
// arbitrary byte strings; keys sort in ascending byte order. A Store is
// safe for concurrent use by many goroutines.
type Store interface {
	// Update runs fn in a read-write transaction and commits it.
	//
	// In durable mode the commit is synced to disk before Update returns
	// nil. If the commit loses an optimistic-concurrency race (another
	// transaction committed a write to a key fn read or wrote), Update runs
	// fn again in a fresh transaction, up to an implementation-defined
	// number of attempts, and then returns an error wrapping ErrConflict.
	// fn may therefore run more than once and must not have effects
	// outside the transaction.
	//
	// If fn returns an error, nothing is written and that error is
	// returned unchanged. If a Set or Delete inside fn failed, nothing is
	// written and that error is returned even when fn ignored it and
	// returned nil. If ctx is done before the commit starts, nothing is
	// written and ctx.Err() is returned; a commit that has started is not
	// interrupted.
	Update(ctx context.Context, fn func(tx Tx) error) error

	// View runs fn in a read-only snapshot of the store: fn sees every
	// transaction that committed before View started and none that
	// committed later. Set and Delete return ErrReadOnly. The error fn
	// returns is returned unchanged.
	View(ctx context.Context, fn func(tx Tx) error) error

	// Watch calls fn with the committed writes whose keys begin with
	// prefix (an empty prefix matches every key), from the moment the
	// subscription is active until ctx is done or fn returns an error.
	//
	// Events arrive in commit order, each call carrying one or more
	// complete transactions; the order of the events of one transaction
	// among themselves is implementation-defined. Writes of transactions
	// that did not commit are never delivered. A deleted key is delivered
	// with Deleted set and a nil Value. fn runs on the goroutine that
	// called Watch, one call at a time; it may use the Store (including
	// Update). Events that arrive while fn runs are queued, so a slow fn
	// delays its own watch but never blocks writers.
	//
	// opts.Ready, if set, is called once the subscription is active and
	// before any call to fn; see the package documentation for what that
	// guarantees. Watch returns nil when ctx is done, the error of fn if it
	// returns one, and an error wrapping ErrClosed when the Store is
	// closed (also if it was closed before Watch was called, in which case
	// Ready is never called).
	Watch(ctx context.Context, prefix []byte, opts WatchOptions, fn func(events []Event) error) error

	// Limits bound what one transaction may hold; the runtime sizes its
	// commits by them. A transaction within both limits always fits; one
	// past them may still fit (the limits are a safe fraction of what
	// the implementation accepts) or fail with ErrTooLarge.
	Limits() Limits

	// Close waits for running Update and View calls to return, ends every
	// Watch with ErrClosed, and releases the store's resources (for an
	// on-disk store, also the lock on its directory). After Close every
	// method returns an error wrapping ErrClosed. Calling Close again
	// returns nil.
	Close() error
}

// Tx is a transaction handed to the function given to Update or View. It
// is valid only until that function returns and must not be used from
// several goroutines at once.
type Tx interface {
	// Get returns the value of key, or an error wrapping ErrNotFound when
	// the key is absent. Get sees the transaction's own earlier writes.
	// The returned slice belongs to the caller and stays valid after the
	// transaction ends.
	Get(key []byte) ([]byte, error)

	// Set writes value under key. The Store copies key and value, so the
	// caller may reuse both slices as soon as Set returns. An empty value
	// is a value like any other (not a delete). Keys must not be empty nor
	// begin with ReservedPrefix. Set returns an error wrapping ErrTooLarge
	// when the transaction has grown too large to commit at once, and
	// ErrReadOnly inside View.
	Set(key, value []byte) error

	// Delete removes key; deleting an absent key is not an error. Its
	// errors are those of Set.
	Delete(key []byte) error

	// Scan calls fn for each key that begins with prefix, in ascending
	// byte order (descending with opts.Reverse), starting at opts.Start
	// if it is set. Scan sees the transaction's own earlier writes.
	//
	// If fn returns ErrStop, Scan stops and returns nil; any other error
	// stops the scan and is returned unchanged. key and value belong to fn
	// and stay valid after the transaction ends. fn must not call Set or
	// Delete on the same transaction while the scan runs; collect the
	// keys and write them after Scan returns.
	Scan(prefix []byte, opts ScanOptions, fn func(key, value []byte) error) error

	// Guard reads key and fails with an error wrapping ErrGuardFailed
	// unless its value equals want (want nil means: key absent). The read
	// is held to commit: if key changes before this transaction commits,
	// the commit fails with ErrGuardFailed and is NOT retried. A failed
	// Guard also fails the transaction, as a failed Set does. Inside View
	// Guard only compares.
	Guard(key, want []byte) error
}

// Limits bound what one transaction may hold; the runtime sizes its
// commits by them.
type Limits struct {
	MaxWrites int // Set and Delete calls in one transaction
	MaxBytes  int // bytes of keys plus values written in one transaction
}

// ScanOptions tune Tx.Scan. The zero value scans every key under the
// prefix in ascending order, with values.
type ScanOptions struct {
	// Start, if not nil, is the first key to visit (inclusive). In
	// ascending order the scan begins at the smallest key >= Start, in
	// descending order at the largest key <= Start; keys outside the
	// prefix are never visited whatever Start is.
	Start []byte
	// Reverse visits keys in descending byte order.
	Reverse bool
	// KeysOnly skips reading values: fn receives a nil value. It is
	// cheaper when only the keys matter.
	KeysOnly bool
}

// WatchOptions tune Store.Watch. The zero value is the default.
type WatchOptions struct {
	// Ready, if not nil, is called exactly once, on the goroutine that
	// called Watch, as soon as the subscription is active and before fn
	// is first called. It must not block for long; closing a channel is
	// the usual body. It is not called when Watch fails before the
	// subscription is active.
	Ready func()
}

// Event is one committed write delivered by Store.Watch.
type Event struct {
	// Key is the written key. Key and Value belong to the receiver.
	Key []byte
	// Value is the value written; nil when Deleted is true.
	Value []byte
	// Deleted reports that the key was deleted rather than set.
	Deleted bool
}

// ReservedPrefix begins the keys that a Store implementation keeps for
// itself. Tx.Set and Tx.Delete refuse them with ErrReservedKey and
// Store.Watch never delivers them.
const ReservedPrefix = "\xff\xff!store!"
