package builtins

// This file: the run-time modules (sh, http, sleep, time), which act only
// inside a step body.

import (
	"fmt"

	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// RunTimeBuiltins returns sh, http, sleep and time. Each decides per call by
// the thread's step context (SetStepContext): without one, as while a
// workflow is declared, sh, http.*, sleep and time.now fail saying they
// belong in a step body, and nothing touches files, the network or the
// clock; with one they do the real thing for that step. The pure members of
// time (parse_duration, parse_time, from_timestamp, time, the duration
// constants) work everywhere.
//
// One dict serves both phases: the body functions a script defines capture
// the predeclared values they were declared with, so at run time a body
// calling sh() calls these very builtins.
func RunTimeBuiltins() starlark.StringDict {
	timeMembers := starlark.StringDict{}
	for k, v := range libtime.Module.Members {
		timeMembers[k] = v
	}
	timeMembers["now"] = runTime("time.now", "call it inside a task body", timeNow)
	return starlark.StringDict{
		"sh":    runTime("sh", "declare a shell() step, or call sh() inside a task body", shFn),
		"sleep": runTime("sleep", "call it inside a task body", sleepFn),
		"http": &starlarkstruct.Module{Name: "http", Members: starlark.StringDict{
			"get":    runTime("http.get", "call it inside a task body", httpFn("GET")),
			"post":   runTime("http.post", "call it inside a task body", httpFn("POST")),
			"put":    runTime("http.put", "call it inside a task body", httpFn("PUT")),
			"delete": runTime("http.delete", "call it inside a task body", httpFn("DELETE")),
		}},
		"time": &starlarkstruct.Module{Name: "time", Members: timeMembers},
	}
}

// DefinitionTimeStubs is the old name of RunTimeBuiltins.
//
// Deprecated: use RunTimeBuiltins.
func DefinitionTimeStubs() starlark.StringDict { return RunTimeBuiltins() }

// runTimeFunc is a run-time builtin's implementation, called only with a
// step context.
type runTimeFunc func(thread *starlark.Thread, sc *StepContext, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)

func runTime(name, hint string, impl runTimeFunc) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		sc := StepContextOf(thread)
		if sc == nil {
			return nil, fmt.Errorf("%s() is only available inside a step body, at run time, not while the workflow is declared: %s", name, hint)
		}
		return impl(thread, sc, name, args, kwargs)
	})
}
