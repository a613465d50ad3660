package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

func registerCommand() *cli.Command {
	return &cli.Command{
		Name:      "register",
		Usage:     "store workflow definitions so that other workflows can run them as children",
		ArgsUsage: "FILE...",
		Description: "Validates each FILE and stores its workflow, and every workspace workflow it\n" +
			"uses, as a definition. Content equal to a stored version reuses it; new\n" +
			"content gets the next version. The same name and explicit version with\n" +
			"different content is refused (exit 2) and nothing is stored.",
		Flags: append(scriptFlags(), jsonFlag()),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("flowscript register: name at least one FILE (see flowscript register --help)")
			}
			env := envOf(c)
			for _, f := range c.Args().Slice() {
				if _, err := os.Stat(env.path(f)); err != nil {
					return usageErrorf("flowscript: %v", unwrapPath(err))
				}
			}
			eng, release, err := openEngine(c, engineConfig{})
			if err != nil {
				return err
			}
			defer release()
			ctx := context.Background()
			var progs []*flowscript.Program
			for _, f := range c.Args().Slice() {
				p, err := eng.Load(ctx, flowscript.File(f), flowscript.LoadOptions{Workspace: c.String("workspace"), BaseDir: env.cwd})
				if err != nil {
					return engineError(c.App.ErrWriter, err)
				}
				progs = append(progs, p)
			}
			// every file's tree, all stored or none
			all, err := eng.RegisterTree(ctx, progs...)
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, all)
			}
			for _, r := range all {
				state := "unchanged"
				if r.New {
					state = "new"
				}
				fmt.Fprintf(c.App.Writer, "%s version %d (%s)\n", r.Name, r.Version, state)
			}
			return nil
		},
	}
}

func defsCommand() *cli.Command {
	return &cli.Command{
		Name:  "defs",
		Usage: "list registered workflow definitions with their versions",
		Flags: []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			if dbMissing(c) {
				// nothing was registered here: no definitions, and no database made
				return printDefs(c, nil)
			}
			return withEngine(c, func(ctx context.Context, eng *flowscript.Engine) error {
				defs, err := eng.Definitions(ctx)
				if err != nil {
					return err
				}
				return printDefs(c, defs)
			})
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func treeCommand() *cli.Command {
	return runView("tree", "show a run and every run below it, indented, with statuses",
		func(ctx context.Context, eng *flowscript.Engine, id string) (*treeView, error) {
			root, err := eng.Tree(ctx, id)
			if err != nil {
				return nil, err
			}
			v := &treeView{TreeNode: root, current: map[string]string{}}
			err = root.Walk(func(n *flowscript.TreeNode, _ int) error {
				if len(n.Children) == 0 {
					return nil
				}
				rec, err := eng.Get(ctx, n.Run.ID)
				if err != nil {
					return err
				}
				for _, s := range rec.Steps {
					if s.ChildRunID != nil {
						v.current[rec.ID+"/"+s.ID] = *s.ChildRunID
					}
				}
				return nil
			})
			return v, err
		},
		func(w io.Writer, v *treeView) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			v.print(tw, v.TreeNode, "")
			return tw.Flush()
		})
}

// treeView is a run tree with, for each sub_workflow step, the child it
// points at now: a child a rerun replaced is superseded. Its JSON is the
// tree's.
type treeView struct {
	*flowscript.TreeNode
	current map[string]string // "run/step" -> current child run
}

func (v *treeView) print(w *tabwriter.Writer, n *flowscript.TreeNode, indent string) {
	r := n.Run
	via := ""
	if run, step := r.Parent(); step != "" {
		via = "via " + step
		if r.Detached {
			via += " (detached)"
		}
		if cur, ok := v.current[run+"/"+step]; ok && cur != r.ID {
			via += " (superseded by " + cur + ")"
		}
	}
	dur := "-"
	if r.StartedAt != nil {
		dur = strings.TrimSuffix(runDuration(&r, time.Now()), "…")
	}
	fmt.Fprintf(w, "%s%s\t%s v%d\t%s\t%s\t%s\n", indent, r.ID, r.Workflow, r.Version, r.Status, dur, via)
	groups := fanGroups(n) // a fan-out's many children, grouped (tree_group.go)
	for _, c := range n.Children {
		if step, _, ok := iterationOf(&c.Run); ok && groups[step] != nil {
			if g := groups[step]; g.kids[0] == c {
				g.print(v, w, indent+"  ")
			}
			continue
		}
		v.print(w, c, indent+"  ")
	}
}

// printDefs prints definitions, with their params and secrets.
func printDefs(c *cli.Context, defs []flowscript.Definition) error {
	return printList(c, defs, "no definitions: flowscript register FILE or flowscript run FILE stores them", "NAME\tVERSION\tREGISTERED\tPARAMS\tSECRETS", func(d flowscript.Definition) string {
		names := make([]string, 0, len(d.Params))
		for k := range d.Params {
			names = append(names, k)
		}
		sort.Strings(names)
		parts := make([]string, len(names))
		for i, k := range names {
			parts[i] = k + "=" + flowscript.FormatValue(d.Params[k])
		}
		return fmt.Sprintf("%s\t%d\t%s\t%s\t%s", d.Name, d.Version, d.RegisteredAt, dash(strings.Join(parts, " ")), dash(strings.Join(d.Secrets, ",")))
	})
}
