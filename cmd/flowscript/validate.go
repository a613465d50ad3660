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

	"github.com/flowscript/flowscript"
)

// scriptFlags are the flags of every command that evaluates scripts.
func scriptFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "workspace", Usage: "the workspace directory (default: the directory of the root file)"},
		&cli.Uint64Flag{Name: "max-steps", Usage: "the execution-step limit for declaring a workflow", Value: flowscript.DefaultMaxSteps},
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
			load, release, err := scriptLoader(c)
			if err != nil {
				return err
			}
			defer release()
			var found []*flowscript.ScriptErrors
			var inputErrs []string // files that could not be read at all
			var summaries []string
			for _, file := range c.Args().Slice() {
				prog, errs, err := loadChecked(c, load, file)
				if err != nil {
					// go on: one missing file must not hide the others' errors
					inputErrs = append(inputErrs, err.Error())
					continue
				}
				if errs != nil {
					found = append(found, errs)
					continue
				}
				summaries = append(summaries, fmt.Sprintf("%s: ok (workflow %q, %s)", file, prog.Name(), plural(len(prog.Steps()), "step")))
			}
			if all := flowscript.JoinScriptErrors(found...); all != nil || len(inputErrs) > 0 {
				if all != nil {
					for _, e := range all.List {
						fmt.Fprintln(c.App.ErrWriter, e.Error())
					}
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

// loader loads and validates a script: flowscript.Load, or an engine's
// Load when the database exists (child names then resolve to registered
// definitions too).
type loader func(ctx context.Context, src flowscript.Source, opts flowscript.LoadOptions) (*flowscript.Program, error)

// loadChecked evaluates a root file in its workspace and runs every check
// of SPEC §3. Script problems come back as errs; err is for problems that
// end the command (a missing file, a workspace that cannot be opened).
func loadChecked(c *cli.Context, load loader, file string) (*flowscript.Program, *flowscript.ScriptErrors, error) {
	if err := checkWorkspace(c, file); err != nil {
		return nil, nil, err
	}
	prog, err := load(context.Background(), flowscript.File(file), flowscript.LoadOptions{
		Workspace: c.String("workspace"), BaseDir: envOf(c).cwd, MaxSteps: c.Uint64("max-steps"),
	})
	var errs *flowscript.ScriptErrors
	switch {
	case errors.As(err, &errs):
		return nil, errs, nil
	case err != nil:
		return nil, nil, usageErrorf("flowscript: %v", err)
	}
	return prog, nil, nil
}

// scriptLoader is the loader of validate and graph. When the database
// exists, child names also resolve to the definitions registered in it
// (through the process holding it, if another does).
func scriptLoader(c *cli.Context) (loader, func(), error) {
	env := envOf(c)
	if env.shared == nil {
		if fi, err := os.Stat(env.path(dbDir(c))); err != nil || !fi.IsDir() {
			return flowscript.Load, func() {}, nil
		}
	}
	eng, release, err := openEngine(c, engineConfig{})
	if err != nil {
		return nil, nil, err
	}
	return eng.Load, release, nil
}

// checkWorkspace says in the user's words what is wrong with the file's
// directory or --workspace before anything is evaluated.
func checkWorkspace(c *cli.Context, file string) error {
	env := envOf(c)
	dir := c.String("workspace")
	if dir == "" {
		// a file in a directory that does not exist is a missing file, not
		// a missing workspace
		if _, err := os.Stat(env.path(filepath.Dir(file))); err != nil && errors.Is(err, fs.ErrNotExist) {
			return usageErrorf("flowscript: file %s not found", file)
		}
		return nil
	}
	fi, err := os.Stat(env.path(dir))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageErrorf("flowscript: workspace %s does not exist", dir)
	case err != nil:
		return usageErrorf("flowscript: cannot open workspace %s: %v", dir, err)
	case !fi.IsDir():
		return usageErrorf("flowscript: workspace %s is not a directory", dir)
	}
	return nil
}

// printErrors prints script errors one per line, sorted, and ends the
// command with exit code 2.
func printErrors(w io.Writer, errs []flowscript.ScriptError) error {
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
	}
	return silentExit(exitUsage)
}
