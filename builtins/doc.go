// Package builtins is the Starlark surface of flowscript.
//
// The definition builtins (workflow, task, shell, sub_workflow, param,
// secret, output) record what a script declares into a Builder kept in the
// evaluating thread; step values, conditions and references are the Starlark
// values they hand back. While a workflow is declared the run-time builtins
// (sh, http, sleep, time) exist only to say that they belong in a step body.
//
// builtins must not read files, evaluate scripts or resolve other
// workflows: that is the lang package's work. It must not run anything.
package builtins
