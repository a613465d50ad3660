// Package lang turns scripts into workflows. It evaluates a .star file and
// everything it loads inside a workspace, with the definition builtins of
// package builtins, under a sandbox (an execution-step limit, recursion off,
// no file, network or clock access), and returns a Program: the declared
// dag.Workflow, the step bodies, and the source snapshot with its hash.
//
// It also owns what needs more than one workflow: finding a child workflow
// by name in the workspace (or through a Registry of stored definitions),
// and the cross-workflow checks of SPEC §3 — workflow cycles, nesting depth,
// unknown children, inputs that name undeclared params, secrets passed to
// children.
//
// lang must not run steps, open the store or print: errors come back as a
// dag.ErrorList whose entries carry file:line:col.
package lang
