package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

func testCommand() *cli.Command {
	return &cli.Command{
		Name:      "test",
		Usage:     "run the test_* functions of workflow test scripts (*_test.star)",
		ArgsUsage: "[FILE_test.star...]",
		Description: "Each test_NAME(t) function runs workflows on a fresh in-memory database with\n" +
			"t.run(script, params=, secrets=, stub_tasks=, stub_workflows=), checks values\n" +
			"with t.eq and t.true, and compares a run's records (ids and times normalised)\n" +
			"with a golden file with t.golden(r): testdata/STEM/TEST.golden beside the test\n" +
			"file. Without FILEs, every *_test.star under the current directory runs.\n" +
			"Exit 0 when all pass, 1 when any fails, 2 on bad input.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "update", Usage: "rewrite the golden files with what the runs did"},
			&cli.DurationFlag{Name: "timeout", Usage: "how long one t.run may take", Value: flowscript.DefaultTestTimeout},
		},
		Action: func(c *cli.Context) error {
			env := envOf(c)
			files := c.Args().Slice()
			if len(files) == 0 {
				found, err := findTestFiles(env.path("."))
				if err != nil {
					return usageErrorf("flowscript test: %v", err)
				}
				if len(found) == 0 {
					return usageErrorf("flowscript test: no *_test.star files under the current directory")
				}
				files = found
			} else {
				for i, f := range files {
					files[i] = env.path(f)
				}
			}
			ctx, stop := commandContext(c)
			defer stop()
			rep, err := flowscript.RunTests(ctx, files, flowscript.TestOptions{
				Update: c.Bool("update"), Out: c.App.Writer, Timeout: c.Duration("timeout"),
			})
			if err != nil {
				return usageErrorf("flowscript test: %v", err)
			}
			if ctx.Err() != nil {
				return silentExit(exitInterrupt)
			}
			fmt.Fprintf(c.App.Writer, "%d passed, %d failed\n", rep.Passed, rep.Failed)
			if rep.Failed > 0 {
				return silentExit(exitFailed)
			}
			return nil
		},
	}
}

// findTestFiles lists the *_test.star files under dir, skipping
// dot-directories and testdata, as paths relative to dir.
func findTestFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, "_test.star") {
			files = append(files, path)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	sort.Strings(files)
	return files, err
}
