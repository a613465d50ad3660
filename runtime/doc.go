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
// What the engine keeps in the store, and how, is runtime/journal's: the
// key layout, the record encodings, the committer, and the rules of what
// shares a transaction and what may be split (its package comment). No
// file of this package calls the store. State only moves forward, and that
// is checked inside the transaction that writes it.
//
// runtime must not print or parse command lines; the CLI and the root
// package are layers above it.
package runtime
