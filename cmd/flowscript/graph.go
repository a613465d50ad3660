package main

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

func graphCommand() *cli.Command {
	return &cli.Command{
		Name:      "graph",
		Usage:     "print a workflow's DAG as text, Graphviz dot, Mermaid or JSON",
		ArgsUsage: "FILE",
		Description: "Validates FILE and prints its steps in topological order with their\n" +
			"dependencies. --expand nests each statically known child workflow's DAG,\n" +
			"up to the nesting limit; script= children stay opaque.",
		Flags: append(scriptFlags(),
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Usage: "text, dot, mermaid or json", Value: "text"},
			&cli.BoolFlag{Name: "expand", Usage: "nest the DAGs of child workflows"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("flowscript graph: name exactly one FILE (see flowscript graph --help)")
			}
			format := c.String("format")
			if !contains(flowscript.GraphFormats, format) {
				return usageErrorf("flowscript graph: --format %q is not one of %s", format, strings.Join(flowscript.GraphFormats, ", "))
			}
			load, release, err := scriptLoader(c)
			if err != nil {
				return err
			}
			defer release()
			prog, errs, err := loadChecked(c, load, c.Args().First())
			if err != nil {
				return err
			}
			if errs != nil {
				return printErrors(c.App.ErrWriter, errs.List)
			}
			return prog.WriteGraph(c.App.Writer, format, flowscript.GraphOptions{Expand: c.Bool("expand")})
		},
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
