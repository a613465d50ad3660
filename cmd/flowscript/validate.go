package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// scriptFlags are the flags of every command that evaluates scripts.
func scriptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "workspace", Usage: "the workspace directory (default: the directory of the root file)"},
		&cli.Uint64Flag{Name: "max-steps", Usage: "the execution-step limit for declaring a workflow", Value: lang.DefaultMaxSteps},
	}
}

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check workflow scripts without running them",
		ArgsUsage: "FILE...",
		Description: "Evaluates each FILE, checks its steps, references and cycles, resolves every\n" +
			"child workflow it names and checks nesting depth, workflow cycles and child\n" +
			"params. Prints every error as file:line:col: message and exits 2 if any.",
		Flags: scriptFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageErrorf("flowscript validate: name at least one FILE (see flowscript validate --help)")
			}
			opts, release, err := scriptOptions(c)
			if err != nil {
				return err
			}
			defer release()
			var all dag.ErrorList
			var inputErrs []string // files that could not be read at all
			var summaries []string
			for _, file := range c.Args().Slice() {
				prog, errs, err := loadChecked(c, file, opts)
				if err != nil {
					// go on: one missing file must not hide the others' errors
					inputErrs = append(inputErrs, err.Error())
					continue
				}
				if len(errs) > 0 {
					all = append(all, errs...)
					continue
				}
				w := prog.Workflow
				summaries = append(summaries, fmt.Sprintf("%s: ok (workflow %q, %s)", file, w.Name, plural(len(w.Steps), "step")))
			}
			if len(all) > 0 || len(inputErrs) > 0 {
				all.Sort()
				for _, e := range all {
					fmt.Fprintln(c.App.ErrWriter, e.Error())
				}
				for _, msg := range inputErrs {
					fmt.Fprintln(c.App.ErrWriter, msg)
				}
				return silentExit(exitUsage)
			}
			for _, s := range summaries {
				fmt.Fprintln(c.App.Writer, s)
			}
			return nil
		},
	}
}

// loadChecked evaluates a root file in its workspace and runs every check
// of SPEC §3. Script problems come back as errs; err is for problems that
// end the command (a missing file, a workspace that cannot be opened).
func loadChecked(c *cli.Context, file string, opts lang.Options) (*lang.Program, dag.ErrorList, error) {
	ws, rel, err := openWorkspace(c, file, opts)
	if err != nil {
		return nil, nil, err
	}
	ctx := context.Background()
	prog, err := ws.Load(ctx, rel)
	if err != nil {
		if list, ok := err.(dag.ErrorList); ok {
			return nil, list, nil
		}
		return nil, nil, usageErrorf("flowscript: %v", err)
	}
	return prog, ws.Check(ctx, prog), nil
}

// scriptOptions are the evaluation options of validate and graph. When
// the database exists, child names also resolve to the definitions
// registered in it (through the process holding it, if another does).
func scriptOptions(c *cli.Context) (lang.Options, func(), error) {
	opts := lang.Options{MaxSteps: c.Uint64("max-steps")}
	env := envOf(c)
	if env.shared == nil {
		if fi, err := os.Stat(env.path(dbDir(c))); err != nil || !fi.IsDir() {
			return opts, func() {}, nil
		}
	}
	eng, release, err := openEngine(c, engineConfig{})
	if err != nil {
		return opts, nil, err
	}
	withDB := eng.LangOptions()
	withDB.MaxSteps = opts.MaxSteps
	return withDB, release, nil
}

func openWorkspace(c *cli.Context, file string, opts lang.Options) (*lang.Workspace, string, error) {
	env := envOf(c)
	dir := c.String("workspace")
	if dir == "" {
		dir = filepath.Dir(file)
		// a file in a directory that does not exist is a missing file, not
		// a missing workspace
		if _, err := os.Stat(env.path(dir)); err != nil && errors.Is(err, fs.ErrNotExist) {
			return nil, "", usageErrorf("flowscript: file %s not found", file)
		}
	} else if fi, err := os.Stat(env.path(dir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", usageErrorf("flowscript: workspace %s does not exist", dir)
		}
		return nil, "", usageErrorf("flowscript: cannot open workspace %s: %v", dir, err)
	} else if !fi.IsDir() {
		return nil, "", usageErrorf("flowscript: workspace %s is not a directory", dir)
	}
	rel, err := lang.Rel(env.path(dir), env.path(file))
	if err != nil {
		return nil, "", usageErrorf("flowscript: %s is outside the workspace %s", file, dir)
	}
	ws, err := lang.OpenWorkspaceAs(env.path(dir), dir, opts)
	if err != nil {
		return nil, "", usageErrorf("flowscript: %v", err)
	}
	return ws, rel, nil
}

// printErrors prints script errors one per line, sorted, and ends the
// command with exit code 2.
func printErrors(w io.Writer, errs dag.ErrorList) error {
	errs.Sort()
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
	}
	return silentExit(exitUsage)
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
