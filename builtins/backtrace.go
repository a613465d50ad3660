package builtins

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
)

// CallChain is the call chain of an error raised in stack, as Starlark's
// backtrace gives it, outermost first, without the innermost script frame
// (the error's own position): one "file:line:col: in function" line per
// frame. It is nil unless the error is raised inside a function (an error
// at a file's top level, also of a loaded file, reads as before).
func CallChain(stack starlark.CallStack) []string {
	var frames []string
	inner := ""
	for _, f := range stack {
		if f.Pos.Filename() == "<builtin>" || f.Pos.Line == 0 {
			continue
		}
		p := dag.Pos{File: f.Pos.Filename(), Line: int(f.Pos.Line), Col: int(f.Pos.Col)}
		frames = append(frames, fmt.Sprintf("%s: in %s", p, f.Name))
		inner = f.Name
	}
	if len(frames) < 2 || inner == "<toplevel>" {
		return nil
	}
	return frames[:len(frames)-1]
}

// chainOf is the call chain of the builtin running now on thread.
func chainOf(thread *starlark.Thread) []string {
	if thread == nil || thread.CallStackDepth() == 0 {
		return nil
	}
	return CallChain(thread.CallStack())
}

// calledFrom says where the innermost function of chain was called from:
// ", called from file:line:col", or "" for an empty chain.
func calledFrom(chain []string) string {
	if len(chain) == 0 {
		return ""
	}
	last := chain[len(chain)-1]
	if i := strings.LastIndex(last, ": in "); i >= 0 {
		last = last[:i]
	}
	return ", called from " + last
}
