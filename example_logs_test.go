package flowscript_test

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/flowscript/flowscript"
)

// The logs of a run as `flowscript logs` prints them: LogScopeOf says
// what is shown (a run, one step, or with tree the runs below it too; a
// sub_workflow step shows its child's logs), ScopeLogs reads them as of
// now, WriteLogs prints whole attempts under their headers or, prefixed,
// every line after its run and step. A follow (`logs --follow`) is
// Tail's Write, round after round.
func ExampleEngine_LogScopeOf() {
	ctx := context.Background()
	eng, err := flowscript.OpenInMemory(flowscript.Options{})
	if err != nil {
		panic(err)
	}
	defer eng.Close()
	prog, err := eng.Load(ctx, flowscript.Script("build.star", `
workflow(name = "build")
a = shell("compile", "echo compiling; echo linking")
shell("test", "echo 3 tests passed", after = [a])
`), flowscript.LoadOptions{})
	if err != nil {
		panic(err)
	}
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{Workspace: os.TempDir()})
	if err != nil {
		panic(err)
	}
	for _, ask := range []struct {
		step string
		tree bool
	}{{"", false}, {"test", false}, {"test", true}} {
		scope, err := eng.LogScopeOf(ctx, rec.ID, ask.step, ask.tree)
		if err != nil {
			panic(err)
		}
		logs, err := eng.ScopeLogs(ctx, scope)
		if err != nil {
			panic(err)
		}
		fmt.Printf("-- step %q, tree %v\n", ask.step, ask.tree)
		var out strings.Builder
		flowscript.WriteLogs(&out, logs, scope.Prefixed)
		fmt.Print(strings.ReplaceAll(out.String(), rec.ID, "RUN"))
	}
	// Output:
	// -- step "", tree false
	// == compile (attempt 1) ==
	// out| compiling
	// out| linking
	// == test (attempt 1) ==
	// out| 3 tests passed
	// -- step "test", tree false
	// == test (attempt 1) ==
	// out| 3 tests passed
	// -- step "test", tree true
	// RUN test: out| 3 tests passed
}
