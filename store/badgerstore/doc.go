// Package badgerstore is the embedded implementation of store.Store, on
// Badger v4: a directory on local disk (Open) or memory only
// (OpenInMemory), for one process at a time.
//
// # What it owns
//
// Opening Badger with options tuned for flowscript's workload (small
// values, many small synced commits, a few MiB of live data), the mapping
// of Badger's errors to the store package's (a held directory lock becomes
// a *store.LockedError naming the holder's pid; a damaged directory a
// *store.CorruptError), the watch hub that turns Badger's subscription
// into store.Store's Watch, the adapter from Badger's logger to hclog, and
// the background value-log garbage collection.
//
// # What it must not touch
//
// It knows nothing of runs, steps or key layouts: those belong to the
// runtime. It must not be imported by anything but the packages that
// choose a backend (the embedding API and tests); the rest of flowscript
// codes against the store package.
//
// # Durability
//
// With Options.Durability == Durable (the default) Badger syncs its write
// ahead log and value log before a commit is acknowledged, so Update
// returns only once the transaction would survive a power loss.
// Concurrent commits are grouped by Badger's single writer goroutine, so
// many committers share the cost of the syncs. With Fast, commits are
// acknowledged once they are in the operating system's page cache: they
// survive the process being killed, not the machine losing power.
//
// # Concurrency control
//
// Badger gives each transaction a snapshot and checks, at commit, whether
// any key the transaction read (with Get, or visited while scanning) was
// written by a transaction that committed after the snapshot was taken.
// Reading two keys and writing one of them is therefore serialised.
// Badger does not see phantoms: a key another transaction inserted into a
// range this transaction scanned is not a conflict, so "count the keys
// under a prefix, then add one" can overshoot a limit. Guard such an
// invariant with one shared key, as the store package documentation says.
//
// # Watch
//
// The first Watch of a prefix starts one Badger subscription covering
// that prefix, the transaction markers and a reserved probe key (the
// prefix's hub), and waits until it is live by committing a delete of the
// probe key and waiting for it to come back. Later Watches of the prefix
// only register with its hub. The hub never blocks Badger's publisher: each watch has
// its own unbounded queue, drained by the goroutine that called Watch. A
// watch whose callback falls behind therefore costs memory, not writer
// latency, and a callback may itself commit without deadlocking.
//
// Badger's subscription also publishes the values that value-log garbage
// collection moves; they carry no transaction marker, which is how the
// hub recognises and drops them, so a watch sees commits only.
//
// # Damage
//
// Open refuses, with a *store.CorruptError, a directory whose manifest,
// key registry or value log Badger cannot read, and checks the footer of
// every table file first, because Badger crashes the process (on its own
// goroutines, beyond recover) on a table whose footer points outside the
// file. Values lost from a damaged value log are reported by Get and Scan
// as errors wrapping store.ErrCorrupt; Badger itself would return them
// empty. Checksums of table blocks are verified when blocks are read.
// Badger still hides some damage: a table block that fails its checksum
// makes its keys look absent rather than failing the read, and a
// manifest or value log cut short is taken for a torn last write and
// truncated.
package badgerstore
