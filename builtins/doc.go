// Package builtins is the Starlark surface of flowscript.
//
// The definition builtins (workflow, task, shell, sub_workflow, param,
// secret, output) record what a script declares into a Builder kept in the
// evaluating thread; step values, conditions and references are the Starlark
// values they hand back.
//
// The run-time builtins (sh, http, sleep, time.now; see RunTimeBuiltins) are
// predeclared alongside them, and decide per call by the thread's
// StepContext: while a workflow is declared there is none, and they only say
// that they belong in a step body; inside a body run by CallBody they run
// commands (RunShell: own process group, killed as a group on cancel), make
// HTTP requests and read the step's clock, all under the step's context.
// A body's ctx argument is NewCtx. Masker, MaskString and MaskValue hide
// secret values in logs, outputs and errors.
//
// builtins must not read files, evaluate scripts or resolve other
// workflows: that is the lang package's work. It does not decide when a step
// runs, retry it, or store anything: that is the runtime's.
package builtins
