// Package natsstore is a store.Store on NATS JetStream: one stream holds a
// whole database, so that every transaction commits as one JetStream
// atomic batch. It is experimental: it passes the store/storetest
// conformance suite, but the engine does not open on it yet, and the
// ownership of runs across processes (leases, fencing, takeover) is not
// here; see "What is missing".
//
// # What it owns
//
// The mapping of keys to subjects, transactions on one stream, snapshot
// reads, watches, and the embedded server it may start for Options.Dir.
// It must not know what the keys mean (that is the runtime's) and must
// not reach into other packages of the module.
//
// # Layout
//
// The stream <name> takes the subjects fs.<name>.>:
//
//	fs.<name>.k.<tokens>   one subject per key, its revisions (History per key)
//	fs.<name>.x.head       one message, so that the stream always has a last sequence
//	fs.<name>.x.r.<n>      read markers (see Transactions), each gone 10 s after its batch
//
// A key becomes tokens by splitting it at '/' and encoding each segment:
// letters, digits and '-' stay, every other byte is '_' and two hex
// digits, an empty segment is a lone '_' ("run/r1/step/0001" is
// fs.db.k.run.r1.step.0001). A key's revision is the stream sequence of
// its last message; a delete is a message with the header
// Flowscript-Op: del (a tombstone; none is ever purged yet).
//
// # Transactions
//
// Update is optimistic and client-side. Reads are at a snapshot S, a
// stream sequence: the first read of an Update (at once for a View) asks
// the server for its last sequence with a multi-last direct get, which
// the server answers under the lock an atomic commit holds, so S never
// falls inside a batch; every read is then a multi-last direct get with
// up_to_seq S (ADR-31). Writes are buffered. At commit every written key
// carries Nats-Expected-Last-Subject-Sequence: the revision read at S, or
// for a key written without being read the latest revision, fetched at
// commit (so every message also records, in Flowscript-Prev, exactly
// which revision it replaced). A transaction that writes one key and
// reads no other is one plain publish; any other is one atomic batch (ADR-50, through
// orbit.go's jetstreamext), which JetStream applies whole or not at all.
// Every key the transaction read (Get, Scan, Guard) and did not write is
// checked too: a marker message on fs.<name>.x.r.<n>, with a ten-second
// TTL, expects its revision at S for it
// (Nats-Expected-Last-Subject-Sequence-Subject). When the markers do not
// fit in the batch beside the writes, the first message expects instead
// the stream's last sequence to be S (Nats-Expected-Last-Sequence):
// nothing at all committed since the snapshot, a stronger check that
// conflicts more often. A refused expectation ("wrong last sequence")
// makes Update run fn again, up to Options.MaxUpdateAttempts. Phantoms
// (keys inserted into a scanned range) are not detected.
//
// On a replicated stream the replica that answers a read may be behind
// the leader. A Store never reads older than the highest sequence it
// knows committed: its own commits and snapshots, and, from Open, the
// stream's last sequence as the stream's leader reports it. So a process
// reads what it committed, and what any process committed before it
// opened the Store (`flowscript show` after `flowscript run` ended); an
// older answer, from a replica behind, is asked again.
//
// Prefetch(keys), a method beyond store.Tx, reads many keys at S in one
// request per 1,024 and keeps them for the Gets that follow; the
// journal's committer calls it with the records its ops check, which
// would otherwise cost one request per key.
//
// Guard(key, want) reads key at S and compares; the read is checked at
// commit as every read is. When a commit is refused, the guarded keys'
// revisions are read again: if one moved, the error wraps ErrGuardFailed
// and is not retried.
//
// The stream keeps History revisions of each key (MaxMsgsPerSubject). A
// read at S of a key that has changed History times since S finds no
// revision at or before S; Flowscript-Prev of the key's first later
// message then tells "absent at S" from "pushed out", and the read fails
// with ErrSnapshotTooOld (retried as a conflict inside Update).
//
// Scan lists the subjects under the narrowest token-aligned filter for
// its prefix (stream info with a subject filter), reads their values at S
// (at most 1,024 subjects per request), lays the transaction's own
// writes over them and sorts the decoded keys. It costs O(keys under the
// filter) per call; there is no server-side order.
//
// # Watches
//
// Watch reads S, then runs an ordered consumer on the prefix's filter
// from S+1: nothing committed before the call is delivered, everything
// after Ready is. Messages of one atomic batch have contiguous sequences
// and the same Nats-Batch-Id; they are handed to fn in one call. When the
// consumer runs dry in the middle of a batch, the rest of the batch is
// read with a direct get that starts at the message just delivered: a
// replica stores a batch whole under the lock direct gets take, so an
// answer holding anything is from a replica with all of the batch, and
// an empty one (a replica behind) is asked again. A transaction is never
// split across calls, and none is skipped.
//
// The consumer runs with the ordered consumer's Consume: a pull sent
// before a new consumer's interest has reached this connection's server
// (it lives on one replica, maybe on another server) is answered "no
// responders", and Consume then makes a new consumer at once.
//
// # Limits
//
// JetStream takes at most 1,000 messages in one atomic batch unless the
// server sets jetstream max_batch_size (Options.MaxBatch must then say
// the same); Limits reserves 16 of them for read markers. One message
// holds at most the server's max_payload (1 MiB by default; a server
// started for Options.Dir takes 8 MiB), and a transaction at most 8 MiB
// of keys and values. At most 32 batches are in flight per Store (the
// server allows 50 per stream).
//
// # Durability
//
// Durable (the default) means synced before acknowledged: a server
// started for Options.Dir runs with sync_always; an Options.Server must
// have it, unless Replicas >= 3; over a URL it cannot be checked, so the
// server must run with sync_always (or the stream be replicated). Fast
// relies on the file store's default sync interval of two minutes: a
// commit survives the process dying, not the machine losing power.
//
// # What is missing
//
// Ownership of a database by one process at a time (a lease every commit
// is fenced on, through Guard), takeover after a crash, the CLI's
// --store flag and an embedded cluster node are the next steps; so are
// purging tombstones and more than one stream (partition) per database.
//
// A commit whose answer is lost (a timeout, a broken connection) is
// looked up: each write carries the transaction's id (Flowscript-Txn),
// so the first message after the revision its first write expected tells
// "landed" (Update returns nil) from "refused" (run again); when there is
// none yet, Update returns an error saying the outcome is unknown.
//
// Cost: an R1 file stream stages each atomic batch in a temporary file
// store before applying it, so one batch costs milliseconds whatever its
// size; a caller that wants throughput commits many changes per Update.
package natsstore
