package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary stand in for the flowscript command: the
// scripts in testdata/script run "flowscript ..." (or "exec flowscript ...")
// as a subprocess that calls Main, so every exit code and every byte on
// stdout and stderr is the real CLI's.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"flowscript":      func() { os.Exit(Main(os.Args)) },
		"flowscript-host": func() { os.Exit(embedHost(os.Args[1:])) }, // embedhost_test.go
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script/*.txtar.
// Each script starts in $WORK with its archive's files; $EXAMPLES names
// the repository's examples directory, for scripts that copy from it.
// FLOWSCRIPT_UPDATE=1 rewrites the expected files that cmp compares with.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                "testdata/script",
		UpdateScripts:      os.Getenv("FLOWSCRIPT_UPDATE") == "1",
		RequireUniqueNames: true,
		Cmds:               scriptCmds,
		Condition:          scriptCondition(false),
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			return nil
		},
	})
}
