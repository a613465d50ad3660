package main

import (
	"fmt"
	"io"
	goruntime "runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version of flowscript, of Go and of the Starlark and Badger modules",
		Action: func(c *cli.Context) error {
			printVersion(c.App.Writer)
			return nil
		},
	}
}

// printVersion prints what the binary was built from, as its build
// information records it.
func printVersion(w io.Writer) {
	version, starlark, badger := "(devel)", "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if v := info.Main.Version; v != "" {
			version = v
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && version == "(devel)" {
				version += " " + s.Value
			}
		}
		for _, m := range info.Deps {
			if m.Replace != nil {
				m = m.Replace
			}
			switch m.Path {
			case "go.starlark.net":
				starlark = m.Version
			case "github.com/dgraph-io/badger/v4":
				badger = m.Version
			}
		}
	}
	fmt.Fprintf(w, "flowscript %s\n", version)
	fmt.Fprintf(w, "go         %s\n", goruntime.Version())
	fmt.Fprintf(w, "starlark   go.starlark.net %s\n", starlark)
	fmt.Fprintf(w, "badger     github.com/dgraph-io/badger/v4 %s\n", badger)
}
