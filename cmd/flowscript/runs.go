package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// defaultTextLimit is how many runs the text listing of `runs` shows
// when --limit is not given; --json and --quiet list every match.
const defaultTextLimit = 50

func runsCommand() *cli.Command {
	return &cli.Command{
		Name:  "runs",
		Usage: "list runs, newest first",
		Description: "Lists runs, child runs included, newest first. The text listing shows the\n" +
			fmt.Sprintf("%d newest and says how many it left out; --json and --quiet list every\n", defaultTextLimit) +
			"match. --limit N caps any of them (--limit 0: all). --quiet prints only the\n" +
			"ids, one a line: flowscript tree $(flowscript runs -q --limit 1).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "status", Usage: "only runs with this status: pending, running, succeeded, failed, cancelled"},
			&cli.StringFlag{Name: "workflow", Usage: "only runs of this workflow"},
			&cli.IntFlag{Name: "limit", Usage: fmt.Sprintf("at most `N` runs, the newest (0: all; default %d for the text listing, all with --json or --quiet)", defaultTextLimit)},
			&cli.StringFlag{Name: "since", Usage: "only runs created within `DURATION` of now (30m, 2h, 7d)"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only run ids, one a line"},
			jsonFlag(),
		},
		Action: func(c *cli.Context) error {
			status := flowscript.RunStatus(c.String("status"))
			switch status {
			case "", flowscript.RunPending, flowscript.RunRunning, flowscript.RunSucceeded, flowscript.RunFailed, flowscript.RunCancelled:
			default:
				return usageErrorf("flowscript runs: --status %q is not one of pending, running, succeeded, failed, cancelled", status)
			}
			since := time.Duration(-1)
			if s := c.String("since"); s != "" {
				d, err := flowscript.ParseAge(s)
				if err != nil {
					return usageErrorf("flowscript runs: --since %q is not a duration such as 30m, 2h or 7d", s)
				}
				since = d
			}
			limit := defaultTextLimit
			if c.Bool("json") || c.Bool("quiet") {
				limit = 0 // scripts are never cut short silently
			}
			if c.IsSet("limit") {
				limit = c.Int("limit")
				if limit < 0 {
					return usageErrorf("flowscript runs: --limit must be 0 (all) or more, got %d", limit)
				}
			}
			if dbMissing(c) {
				// nothing has run here: no runs, and no database made
				fmt.Fprintf(c.App.ErrWriter, "no runs: %s\n", noDatabase(c))
				if c.Bool("json") {
					return writeJSON(c.App.Writer, []any{})
				}
				return nil
			}
			return withEngine(c, func(ctx context.Context, eng *flowscript.Engine) error {
				runs, err := eng.List(ctx, flowscript.ListFilter{Status: status, Workflow: c.String("workflow")})
				if err != nil {
					return err
				}
				slices.Reverse(runs) // ids sort by creation time
				if since >= 0 {
					cutoff := time.Now().Add(-since)
					n := 0
					for _, r := range runs {
						if !r.CreatedAt.Before(cutoff) {
							runs[n] = r
							n++
						}
					}
					runs = runs[:n]
				}
				left := 0
				if limit > 0 && len(runs) > limit {
					left = len(runs) - limit
					runs = runs[:limit]
				}
				if err := printRuns(c, runs, statusOf(c, eng)); err != nil {
					return err
				}
				if left > 0 && !c.Bool("json") && !c.Bool("quiet") {
					fmt.Fprintf(c.App.ErrWriter, "(%s not shown; --limit 0 shows all)\n", plural(left, "older run"))
				}
				return nil
			})
		},
	}
}

// printRuns prints the runs of `runs`: ids only with --quiet, JSON with
// --json, else a table.
func printRuns(c *cli.Context, runs []flowscript.RunRecord, status func(*flowscript.RunRecord) string) error {
	if c.Bool("quiet") && !c.Bool("json") {
		for _, r := range runs {
			fmt.Fprintln(c.App.Writer, r.ID)
		}
		return nil
	}
	return printList(c, runs, "no runs", "ID\tWORKFLOW\tVERSION\tSTATUS\tCREATED\tPARENT", func(r flowscript.RunRecord) string {
		parent := "-"
		if run, step := r.Parent(); run != "" {
			parent = run + "/" + step
		}
		return fmt.Sprintf("%s\t%s\t%d\t%s\t%s\t%s", r.ID, r.Workflow, r.Version, status(&r), r.CreatedAt.Local().Format(time.RFC3339), parent)
	})
}

// statusOf gives the status to show for a run: an unfinished run that no
// process is running says so, and how to continue it.
func statusOf(c *cli.Context, eng *flowscript.Engine) func(*flowscript.RunRecord) string {
	forwarded := envOf(c).shared != nil
	return func(r *flowscript.RunRecord) string {
		if r.Status.Terminal() {
			return string(r.Status)
		}
		// a command that opened the database itself holds it alone: no
		// other process runs anything in it
		if !forwarded || !eng.IsActive(r.ID) {
			return string(r.Status) + " (interrupted: flowscript resume)"
		}
		return string(r.Status)
	}
}
