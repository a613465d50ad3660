package main

import (
	"context"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript/dag"
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
			if !contains(dag.Formats, format) {
				return usageErrorf("flowscript graph: --format %q is not one of %s", format, strings.Join(dag.Formats, ", "))
			}
			langOpts, release, err := scriptOptions(c)
			if err != nil {
				return err
			}
			defer release()
			prog, errs, err := loadChecked(c, c.Args().First(), langOpts)
			if err != nil {
				return err
			}
			if len(errs) > 0 {
				return printErrors(c.App.ErrWriter, errs)
			}
			var opts dag.RenderOptions
			if c.Bool("expand") {
				limit := prog.Workflow.EffectiveMaxDepth()
				ws := prog.Workspace
				opts.Expand = func(s *dag.Step, depth int) *dag.Workflow {
					if depth > limit {
						return nil
					}
					child, err := ws.Resolve(context.Background(), s.Child.Name, s.Child.Version)
					if err != nil {
						return nil
					}
					return child.Workflow
				}
			}
			return dag.RenderFormat(c.App.Writer, prog.Workflow, format, opts)
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
