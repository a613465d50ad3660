package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// DefinitionTimeStubs returns sh, http, sleep and time as they are while a
// workflow is declared: each call fails saying it belongs in a step body.
// Nothing here touches files, the network or the clock.
func DefinitionTimeStubs() starlark.StringDict {
	return starlark.StringDict{
		"sh":    runTimeOnly("sh", "declare a shell() step, or call sh() inside a task body"),
		"sleep": runTimeOnly("sleep", "call it inside a task body"),
		"http": &starlarkstruct.Module{Name: "http", Members: starlark.StringDict{
			"get":    runTimeOnly("http.get", "call it inside a task body"),
			"post":   runTimeOnly("http.post", "call it inside a task body"),
			"put":    runTimeOnly("http.put", "call it inside a task body"),
			"delete": runTimeOnly("http.delete", "call it inside a task body"),
		}},
		"time": &starlarkstruct.Module{Name: "time", Members: starlark.StringDict{
			"now": runTimeOnly("time.now", "call it inside a task body"),
		}},
	}
}

func runTimeOnly(name, hint string) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return nil, fmt.Errorf("%s() is only available inside a step body, at run time, not while the workflow is declared: %s", name, hint)
	})
}
