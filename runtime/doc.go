// Package runtime owns runs: it starts them, executes their steps on a
// bounded worker pool, persists every transition, and continues unfinished
// runs after a restart.
//
// The decisions are made by runtime/core, a pure state machine. This
// package is the shell around it: it applies events under a per-run lock,
// offering each decision the free workers it may need, queues the
// resulting changes with the committer, which writes the transitions of
// many runs in one synced store transaction (the first goroutine to wait
// writes for everybody queued), and only after that commit performs the
// actions (start a step, arm a timer, stop a step, end a run). The worker
// that ends a step runs the step this starts itself, unless a queued step
// comes first. A step body is found by evaluating the source snapshot
// stored with the workflow's definition, never the file on disk.
//
// # Files
//
//	start.go     a run in memory and its creation (Start)
//	decide.go    an event applied under the run's lock, with the spawns it
//	             starts, queued for commit as a list of commits in order
//	encode.go    a decision's result as the journal ops that persist it
//	perform.go   carrying out a committed decision's actions
//	spawn.go     a sub_workflow step's child: requested, read, planned
//	exec.go      the workers that run task and shell attempts
//	notice.go    the ends of runs that steps wait for, from the journal
//	journal.go   the records (aliases of runtime/journal's) and the
//	             committer as this package uses it
//	cancel.go, rerun.go, resume.go, load.go, query.go, tree.go, defs.go
//
// # Spawns read before deciding
//
// A decision that starts a sub_workflow step takes a spawnRequest from
// the core's result (the attempt and its StartedAt, the values resolved
// then): the spawn acts on that, never on the machine's later state.
// Definitions are read before a run's first decision (prefetchChildren)
// and kept per version, so most spawns are planned and applied inside the
// decision, in memory, under the run's lock, and land in its commits (one
// transaction when they fit). A spawn that must read the store (an
// idempotency binding, a script child, a child that may exist after a
// crash, a definition not kept) is left to spawnLater: after the
// decision's commit it reads with no lock held, then applies the spawn
// under the lock; a run cancelled meanwhile spawns nothing.
//
// What the engine keeps in the store, and how, is runtime/journal's: the
// key layout, the record encodings, the committer, and the rules of what
// shares a transaction and what may be split (its package comment). No
// file of this package calls the store. State only moves forward, and that
// is checked inside the transaction that writes it.
//
// runtime must not print or parse command lines; the CLI and the root
// package are layers above it.
package runtime
