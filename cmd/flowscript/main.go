// Command flowscript runs durable workflows written as Starlark scripts.
//
// This package is a thin urfave/cli layer: each command parses its flags,
// calls the packages that do the work, prints, and maps the outcome to an
// exit code (0 success, 1 a run failed or was cancelled, 2 usage,
// validation or input error). Main returns the exit code instead of
// exiting, so tests run the CLI in-process.
package main

import (
	"os"
)

func main() {
	os.Exit(Main(os.Args))
}
