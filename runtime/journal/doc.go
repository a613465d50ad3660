// Package journal owns what the engine keeps in a store: the key layout
// (keys.go), the encodings of run, step, history, notice and definition
// records (records.go, stepcodec.go), and every read and write the runtime
// makes. The runtime never calls the store itself: it reads through
// Journal.View and a Tx, and writes a transition as a list of Ops
// (PutStep, PutRun, AppendHistory, EndRun, Create, DropNotice, Func)
// submitted to the journal's committer.
//
// journal decides nothing about runs: it does not know what a step or a
// run may do next (runtime/core does), nor when to write (the runtime
// does). It must not import the runtime.
//
// # Commits and transactions
//
// A decision is written as a list of commits, in order, each a list of
// ops. The committer packs consecutive commits, of any runs, into as few
// transactions as the store's Limits allow, and never splits a commit
// that fits: whoever waits for a commit while no transaction is being
// written writes every commit queued so far, so one synced transaction
// acknowledges many transitions of many runs.
//
// # What shares a transaction, and what may be split
//
// These always land together, in one commit: a transition's state and its
// history events; a run's end and the notices to the steps waiting for it
// (EndRun); a child's creation (its record, wait key, place among its
// parent's children, idempotency binding: Create with its with function)
// with its first transition and its parent step's ChildSpawned; the
// removal of a notice with the transition it causes (DropNotice).
//
// What may land in separate transactions: the commits of one large
// decision — its own transition, then one commit per child it spawns,
// then a waiting parent's reaction to the run's end. That is safe because
// every prefix of the list is a state resume carries on from: a step
// started whose spawn did not commit is re-attached with no child, and
// spawned under the id derived from (parent, step, attempt), which
// "create if absent" finds if it exists (no duplicate child, no lost
// one); a run's end writes its waiters' notices itself, so a parent told
// in a later transaction that never came is told by the notice. A single
// commit too large for a transaction (a run of 100,000 steps) is cut
// between ops, whose order is causal: a run's steps before its record, a
// step's end before the starts it causes.
//
// Once a commit of a run fails, the run's later commits are refused
// (ErrStopped), so that nothing lands after a transition that did not.
//
// # History
//
// A run's history is written in order, seq by seq, with the transitions
// that record it. The events one transaction writes for one run share
// one key (up to four kilobytes), the key of the first, written once after
// the transaction's last op (histpack.go): a step costs two store writes
// fewer. Readers take a key holding one event, as
// every key did before, or a pack.
//
// # State only moves forward
//
// PutStep and PutRun check, inside the transaction, that the record they
// replace is not further along: a step by (epoch, attempt, phase), read
// from the stored step's 10-byte header without decoding its JSON; a run
// by (epoch, phase).
package journal
