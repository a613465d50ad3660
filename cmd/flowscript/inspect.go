package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// withEngine opens the database for a command that only reads.
func withEngine(c *cli.Context, fn func(ctx context.Context, eng *flowscript.Engine) error) error {
	eng, release, err := openEngine(c, engineConfig{existing: true})
	if err != nil {
		return err
	}
	defer release()
	if err := fn(context.Background(), eng); err != nil {
		return engineError(c.App.ErrWriter, err)
	}
	return nil
}

func oneRunArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageErrorf("flowscript %s: name exactly one RUN id (or a unique prefix of one)", c.Command.Name)
	}
	return c.Args().First(), nil
}

// jsonFlag is --json. Each command gets its own flag value: the holder of a
// database parses forwarded commands concurrently, and urfave/cli writes
// into a flag while it parses.
func jsonFlag() cli.Flag { return &cli.BoolFlag{Name: "json", Usage: "print JSON on stdout"} }

// runView makes a command that reads one run (by id or unique prefix)
// and prints what fetch returns, as JSON with --json, else as text.
func runView[T any](name, usage string, fetch func(ctx context.Context, eng *flowscript.Engine, id string) (T, error), text func(w io.Writer, v T) error) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "RUN",
		Flags:     []cli.Flag{jsonFlag()},
		Action: func(c *cli.Context) error {
			id, err := oneRunArg(c)
			if err != nil {
				return err
			}
			return withEngine(c, func(ctx context.Context, eng *flowscript.Engine) error {
				v, err := fetch(ctx, eng, id)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return writeJSON(c.App.Writer, v)
				}
				return text(c.App.Writer, v)
			})
		},
	}
}

func showCommand() *cli.Command {
	return runView("show", "show one run with its steps",
		func(ctx context.Context, eng *flowscript.Engine, id string) (*flowscript.RunRecord, error) {
			return eng.Get(ctx, id)
		},
		func(w io.Writer, rec *flowscript.RunRecord) error {
			printRun(w, rec)
			return nil
		})
}

func printRun(w io.Writer, rec *flowscript.RunRecord) {
	fmt.Fprintf(w, "run %s\n", rec.ID)
	fmt.Fprintf(w, "  workflow  %s version %d\n", rec.Workflow, rec.Version)
	fmt.Fprintf(w, "  status    %s\n", rec.Status)
	if run, step := rec.Parent(); run != "" {
		fmt.Fprintf(w, "  parent    %s (step %s)\n", run, step)
	}
	fmt.Fprintf(w, "  priority  %d\n", rec.Priority)
	fmt.Fprintf(w, "  created   %s\n", rec.CreatedAt.Format(time.RFC3339))
	if rec.StartedAt != nil {
		fmt.Fprintf(w, "  duration  %s\n", duration(rec.StartedAt, rec.EndedAt))
	}
	if len(rec.Params) > 0 {
		fmt.Fprintf(w, "  params    %s\n", flowscript.FormatValue(rec.Params))
	}
	if rec.Error != nil {
		fmt.Fprintf(w, "  error     %s\n", strings.ReplaceAll(*rec.Error, "\n", "\n            "))
	}
	if rec.Output != nil {
		fmt.Fprintf(w, "  output    %s\n", flowscript.FormatValue(rec.Output))
	}
	fmt.Fprintln(w, "steps:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range rec.Steps {
		extra := ""
		if s.Error != nil {
			extra = firstLine(*s.Error)
		}
		if s.ChildRunID != nil {
			extra = strings.TrimSpace("child " + *s.ChildRunID + " " + extra)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\tattempt %d\t%s\t%s\n", s.ID, s.Kind, s.Status, s.Attempt, duration(s.StartedAt, s.EndedAt), extra)
	}
	tw.Flush()
}

func duration(start, end *time.Time) string {
	if start == nil {
		return "-"
	}
	if end == nil {
		return "running for " + time.Since(*start).Round(time.Millisecond).String()
	}
	return end.Sub(*start).Round(time.Microsecond).String()
}

// printList prints items as a JSON array with --json (never null), else
// as a table under header, one row each; with no items, empty goes to
// stderr instead.
func printList[T any](c *cli.Context, items []T, empty, header string, row func(T) string) error {
	if c.Bool("json") {
		if items == nil {
			items = []T{}
		}
		return writeJSON(c.App.Writer, items)
	}
	if len(items) == 0 {
		fmt.Fprintln(c.App.ErrWriter, empty)
		return nil
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

func historyCommand() *cli.Command {
	return runView("history", "show a run's events in order",
		func(ctx context.Context, eng *flowscript.Engine, id string) ([]flowscript.HistoryEvent, error) {
			return eng.History(ctx, id)
		},
		func(w io.Writer, events []flowscript.HistoryEvent) error {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, h := range events {
				detail := h.Status
				if h.Error != "" {
					detail = strings.TrimSpace(detail + " " + firstLine(h.Error))
				}
				step := h.Step
				if h.Attempt > 0 {
					step = fmt.Sprintf("%s#%d", h.Step, h.Attempt)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.Seq, h.Time.UTC().Format("2006-01-02T15:04:05.000000Z"), h.Type, step, detail)
			}
			return tw.Flush()
		})
}

// alreadyRunning lists the unfinished runs that Resume neither continued
// nor left (the process holding the database runs them already), and
// says so.
func alreadyRunning(c *cli.Context, unfinished, resumed []string, left *flowscript.HandlersMissingError) []string {
	skip := map[string]bool{}
	for _, id := range resumed {
		skip[id] = true
	}
	if left != nil {
		for _, r := range left.Runs {
			skip[r.ID] = true
		}
	}
	var out []string
	for _, id := range unfinished {
		if !skip[id] {
			out = append(out, id)
		}
	}
	if len(out) > 0 {
		are, them := "are", "them"
		if len(out) == 1 {
			are, them = "is", "it"
		}
		fmt.Fprintf(c.App.ErrWriter, "%s %s already running in the process that holds the database; waiting for %s\n", plural(len(out), "unfinished run"), are, them)
	}
	return out
}

func resumeCommand() *cli.Command {
	return &cli.Command{
		Name:      "resume",
		Usage:     "continue every unfinished run (or the trees of the runs named) after a crash, kill or Ctrl-C",
		ArgsUsage: "[RUN...]",
		Description: "Continues every unfinished run in the database, or with RUN ids only the\n" +
			"trees those runs belong to: finished steps are kept, steps that were running\n" +
			"start again as a new attempt. Returns when every run it continued has ended;\n" +
			"exit 0 if all succeeded, 1 otherwise. While another process holds the\n" +
			"database, resume is sent to it like every command.",
		Flags: append(engineFlags(), &cli.Uint64Flag{Name: "max-steps", Usage: "the execution-step limit for declaring a workflow", Value: flowscript.DefaultMaxSteps}),
		Action: func(c *cli.Context) error {
			if dbMissing(c) {
				if c.NArg() > 0 {
					return usageErrorf("flowscript: %s", noDatabase(c))
				}
				fmt.Fprintf(c.App.ErrWriter, "nothing to resume: %s\n", noDatabase(c))
				return nil
			}
			s, err := holdDatabase(c, true, true)
			if err != nil {
				return err
			}
			defer s.close()
			// runs this process already runs (it holds the database and
			// this command was forwarded to it) are waited for too
			unfinished, err := s.eng.Unfinished(s.ctx)
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			var ids []string
			if c.NArg() > 0 {
				if unfinished, err = inTrees(s, unfinished, c.Args().Slice()); err != nil {
					return engineError(c.App.ErrWriter, err)
				}
				ids, err = s.eng.ResumeTrees(s.ctx, c.Args().Slice())
			} else {
				ids, err = s.eng.Resume(s.ctx)
			}
			var left *flowscript.HandlersMissingError
			if errors.As(err, &left) {
				// the others are resumed; these stay as they are
				fmt.Fprintf(c.App.ErrWriter, "flowscript: %v\n", left)
			} else if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			ids = append(ids, alreadyRunning(c, unfinished, ids, left)...)
			if len(ids) == 0 {
				if left != nil {
					return silentExit(exitUsage)
				}
				fmt.Fprintln(c.App.ErrWriter, "nothing to resume: every run has ended")
				return nil
			}
			failed := false
			for _, id := range ids {
				rec, err := s.eng.Wait(s.ctx, id)
				if s.ctx.Err() != nil {
					return s.interrupted(c, "the runs are")
				}
				if err != nil {
					return engineError(c.App.ErrWriter, err)
				}
				fmt.Fprintf(c.App.Writer, "%s %s\n", rec.ID, rec.Status)
				failed = failed || rec.Status != flowscript.RunSucceeded
			}
			if left != nil {
				return silentExit(exitUsage)
			}
			if failed {
				return silentExit(exitFailed)
			}
			return nil
		},
	}
}

// inTrees keeps the runs of ids that belong to the trees of the runs
// named.
func inTrees(s *session, ids, named []string) ([]string, error) {
	roots := map[string]bool{}
	for _, n := range named {
		rec, err := s.eng.Get(s.ctx, n)
		if err != nil {
			return nil, err
		}
		roots[rec.RootRunID] = true
	}
	var out []string
	for _, id := range ids {
		rec, err := s.eng.Get(s.ctx, id)
		if err != nil {
			return nil, err
		}
		if roots[rec.RootRunID] {
			out = append(out, id)
		}
	}
	return out, nil
}
