package builtins

import (
	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
)

// Builder collects the declarations of one workflow while its script runs.
type Builder struct {
	Workflow *dag.Workflow
	Errors   dag.ErrorList
	// Bodies maps a task step's id to its Starlark body function.
	Bodies map[string]starlark.Callable
	// RootFile is the root script's name as it appears in positions;
	// workflow() may only be called from it.
	RootFile string
	// Planner, when set, is the id of the planner step whose body is
	// declaring steps at run time: workflow() and output() are refused.
	Planner string

	workflowPos *dag.Pos
	outputSet   bool
	steps       map[string]*dag.Step
	thread      *starlark.Thread    // the thread declaring: errors carry its call chain
	chains      map[string][]string // each step's call chain, by id
}

// NewBuilder returns an empty builder for the script rootFile.
func NewBuilder(rootFile string) *Builder {
	return &Builder{
		Workflow: &dag.Workflow{File: rootFile, Pos: dag.Pos{File: rootFile, Line: 1, Col: 1}},
		Bodies:   make(map[string]starlark.Callable),
		RootFile: rootFile,
		steps:    make(map[string]*dag.Step),
	}
}

// WorkflowDeclared reports whether the script called workflow().
func (b *Builder) WorkflowDeclared() bool { return b.workflowPos != nil }

func (b *Builder) errorf(pos dag.Pos, format string, args ...any) {
	e := dag.Errorf(pos, format, args...)
	if b.thread != nil && b.thread.CallStackDepth() > 0 && callerPos(b.thread) == pos {
		e.Chain = chainOf(b.thread) // raised by the call running now
	}
	b.Errors = append(b.Errors, e)
}

const builderKey = "flowscript.builder"

// SetBuilder makes the definition builtins called on thread record into b.
func SetBuilder(thread *starlark.Thread, b *Builder) {
	thread.SetLocal(builderKey, b)
	b.thread = thread
}

// BuilderOf returns the builder set on thread, or nil.
func BuilderOf(thread *starlark.Thread) *Builder {
	b, _ := thread.Local(builderKey).(*Builder)
	return b
}

// callerPos is the position of the script call that invoked the builtin
// now running on thread.
func callerPos(thread *starlark.Thread) dag.Pos {
	if thread.CallStackDepth() < 2 {
		return dag.Pos{}
	}
	p := thread.CallFrame(1).Pos
	return dag.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}
