// Package dag holds a declared workflow as plain data: its steps, the edges
// between them with their conditions, the references that step inputs make
// into upstream outputs, params and secrets, and the script position of every
// declaration.
//
// It owns the checks that need only one workflow (unique ids, known
// references, step cycles), topological order, and the text, Graphviz dot,
// Mermaid and JSON renderings of a workflow.
//
// dag must not import Starlark, touch files, or know about stores and runs:
// it is data plus pure functions, so that every other layer can depend on it.
package dag
