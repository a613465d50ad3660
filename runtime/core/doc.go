// Package core decides what happens next in a run. Given a run's state and
// one event — the run starts, a step ended, a retry timer fired, a cancel
// was requested, the process restarted — Apply moves the state forward and
// returns what must be persisted and what must be done: start a step, arm
// a timer, stop a running step, end the run.
//
// core is pure: no I/O, no clock (the time comes in with each event), no
// goroutines, no Starlark. The engine around it performs the actions and
// commits the changes. The rules are those of SPEC §4 and §7 "Declaring":
// after= conditions, skipped steps, optional and handled failures,
// retries, cancel.
//
// # Usage
//
// A Machine is made from a declared workflow and a run's state: a new
// run, all steps pending, or a run loaded from the store.
//
//	m := core.New(workflow, &core.Run{ID: id, Params: params})
//
// Everything that happens to the run reaches it as an Event, with the time
// it happened at:
//
//	res := m.Apply(core.Start{At: now}, core.Inputs{Free: free})
//
// # The loop
//
// The engine that owns a machine runs one loop, under the run's lock:
//
//  1. Apply one event, with its inputs (the free workers it may take).
//     The machine's state (m.Run) moves forward in
//     memory; res says what changed (res.Changed steps, res.RunChanged),
//     the history it recorded (res.History), and what must be done
//     (res.Actions).
//  2. Persist. Write the changed step and run records and the history
//     events, in one commit, before anything else can see them. Nothing in
//     res is done before it is durable: an action performed and then lost
//     in a crash would happen twice.
//  3. Act, once the commit is durable: StartStep runs an attempt (or, for a
//     sub_workflow step, spawns its child, whose creation shares the
//     commit of the ChildSpawned it leads to); AwaitWorker queues a step
//     for a worker; ArmTimer arms a timer that comes back as RetryDue;
//     StopStep stops an attempt; ReattachChild waits again for a child;
//     EndRun tells whoever waits.
//  4. What the actions produce comes back as events (StepEnded,
//     ChildSpawned, ChildEnded, RetryDue, Dispatch, EndWithChild, ...):
//     back to 1.
//
// If a commit fails, the state in memory is ahead of the store: the engine
// stops that run, and Resume rebuilds a machine from what was committed.
//
// # Events that do not fit
//
// Events may arrive late or twice: a step ended by a cancel reports its
// end again, a notice is delivered by the watch and by a resume. Every
// event names the attempt it is about, and an event about an attempt that
// is no longer current, or a step not in the state the event expects,
// changes nothing and returns an empty Result. The engine relies on that:
// it never needs to know whether an event is stale before applying it.
//
// # Restarts
//
// A machine loaded from the store after a crash gets Resume first: running
// task and shell steps start again as new attempts (steps are at least
// once); a running sub_workflow step re-attaches to its child, or, if its
// spawn had not committed (ReattachChild with no child id), the engine
// spawns it, under the id derived from (run, step, attempt), so no second
// child can appear. Everything that must survive a restart is in the step
// and run records: a sub_workflow step's pending end error (EndWithChild)
// included.
//
// # Workers
//
// With Pooled set, a task or shell step needs one of the engine's workers
// to start. The workers are an input, not a callback: the engine offers a
// decision the free workers it may need (Demand, reserved from its pool),
// passes their number in Inputs.Free, and takes back those the Result did
// not use (Result.Took). The steps one event lets start get them by
// priority (StepPriority: the step's own, else the run's); those left
// without one stay pending, Ready, and AwaitWorker is returned, until a
// Dispatch — which brings the worker the engine kept for the step — starts
// it.
//
// # Tests
//
// testdata/*.txt are transcripts: a workflow, a sequence of events, and
// after each what Apply printed, with a fake clock and a fake pool of
// workers (see TestTranscripts; FLOWSCRIPT_UPDATE=1 rewrites them).
package core
