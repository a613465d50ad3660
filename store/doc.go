// Package store defines the small transactional key-value interface that
// flowscript's runtime is built on, together with the errors every
// implementation reports and a few helpers that work with any
// implementation.
//
// # What it owns
//
// The contract: [Store] (transactions, prefix scans, prefix watches),
// [Tx], [Event], the option structs, the sentinel errors ([ErrNotFound],
// [ErrConflict], [ErrClosed], [ErrStop], [ErrLocked], [ErrCorrupt],
// [ErrTooLarge], [ErrReadOnly], [ErrReservedKey]) and their typed forms
// ([LockedError], [CorruptError]).
//
// # What it must not touch
//
// It imports no storage engine. Badger lives in store/badgerstore; the key
// layout of runs, steps and definitions belongs to the runtime, which is
// the only package that decides what the keys mean. The conformance suite
// that pins this contract down is store/storetest; every implementation
// runs it.
//
// # Transactions
//
// [Store.Update] runs a function in a read-write transaction and commits
// it; [Store.View] runs one in a read-only snapshot. Update retries the
// function when the commit loses an optimistic-concurrency race, so the
// function must be safe to run more than once and must not have effects
// outside the transaction (sending on channels, starting processes) that
// a retry would repeat. Keep such effects after Update returns.
//
// Every implementation guarantees that a transaction which reads a key
// (with [Tx.Get] or [Tx.Scan]) and writes that same key conflicts with any
// concurrent transaction that also writes it, so read-modify-write of one
// key never loses an update. Whether reads of keys the transaction does
// not write are checked as well differs between implementations, and no
// implementation detects phantoms: a key that another transaction inserts
// into a range this one scanned. An invariant that spans several keys or a
// key range ("at most N children per run") must therefore be guarded by
// one shared key that every transaction touching the invariant reads and
// writes, such as a counter.
//
// # Watches
//
// [Store.Watch] delivers committed writes under a prefix, in commit order.
// It is the way to wait for something to happen without polling. To avoid
// missing a write between "look at the current state" and "wait for
// changes", subscribe first and read the state after the subscription is
// active: [WatchOptions.Ready] is called at that moment, and [StartWatch]
// wraps the pattern. Every write committed after Ready is either visible
// to a [Store.View] started after Ready, or delivered to the watch, or
// both; nothing committed before Watch was called is delivered.
//
// # Reserved keys
//
// Keys that begin with [ReservedPrefix] belong to the implementation
// (badgerstore uses one to learn when its subscription is live). Set and
// Delete refuse them with [ErrReservedKey] and Watch never delivers them.
package store
