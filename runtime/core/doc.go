// Package core decides what happens next in a run. Given a run's state and
// one event — the run starts, a step ended, a retry timer fired, a cancel
// was requested, the process restarted — Apply moves the state forward and
// returns what must be persisted and what must be done: start a step, arm
// a timer, stop a running step, end the run.
//
// core is pure: no I/O, no clock (the time comes in with each event), no
// goroutines, no Starlark. The engine around it performs the actions and
// commits the changes, and tests drive it with transcripts of events. The
// rules are those of SPEC §4 and §7 "Declaring": after= conditions, skipped
// steps, optional and handled failures, retries, cancel.
package core
