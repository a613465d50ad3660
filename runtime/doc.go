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
// The key layout lives in keys.go. State only moves forward, and that is
// checked inside the transaction that writes it.
//
// # What shares a transaction, and what may be split
//
// A decision is written as a list of commits, in order (decide.go), each a
// list of ops (ops.go). The committer (committer.go) packs consecutive
// commits, of any runs, into as few transactions as the store's Limits
// allow, and never splits a commit that fits. So these always land
// together, in one commit: a transition's state and its history events; a
// run's end and the notices to the steps waiting for it; a child's
// creation (its record, wait key, place among its parent's children,
// idempotency binding) with its first transition and its parent step's
// ChildSpawned; the removal of a notice with the transition it causes.
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
// runtime must not print or parse command lines; the CLI and the root
// package are layers above it.
package runtime
