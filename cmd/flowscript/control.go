package main

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

func cancelCommand() *cli.Command {
	return &cli.Command{
		Name:      "cancel",
		Usage:     "cancel a run and every non-detached run below it",
		ArgsUsage: "RUN",
		Description: "Writes the cancel first, then carries it out: running step bodies stop, shell\n" +
			"process groups get SIGTERM and then SIGKILL, nothing starts afterwards, and\n" +
			"the runs end cancelled. Detached children and their subtrees run on.\n" +
			"Cancelling a run that already ended changes nothing and exits 0.",
		Action: func(c *cli.Context) error {
			id, eng, ctx, done, err := openOnRun(c, engineConfig{hold: true, existing: true})
			if err != nil {
				return err
			}
			defer done()
			rec, err := eng.Cancel(ctx, id)
			if errors.Is(err, flowscript.ErrAlreadyEnded) {
				fmt.Fprintf(c.App.Writer, "run %s already ended (%s); nothing to cancel\n", rec.ID, rec.Status)
				return nil
			}
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			final, err := eng.Wait(ctx, rec.ID)
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			fmt.Fprintf(c.App.Writer, "%s %s\n", final.ID, final.Status)
			return nil
		},
	}
}

func rerunCommand() *cli.Command {
	return &cli.Command{
		Name:      "rerun",
		Usage:     "rerun a run from steps, or its failed steps, keeping what ran before",
		ArgsUsage: "RUN (--from STEP... | --failed)",
		Description: "Resets each --from STEP (repeatable) and every step downstream of it in RUN\n" +
			"(each reset step's next attempt is its highest so far + 1), keeps the outputs\n" +
			"upstream, and runs to the end. --failed resets every step that ended failed,\n" +
			"cancelled or skipped instead; a failed sub_workflow step whose child failed\n" +
			"waits again for that child, which is rerun with --failed in place, down the\n" +
			"tree. A reset sub_workflow step gets a new child, unless its idempotency key\n" +
			"binds it to a run, which it waits for again. When RUN is a blocking child,\n" +
			"its parent continues from the sub_workflow step with the new outcome, up to\n" +
			"the root; the command returns when the root ends.\n\n" +
			"Without --latest the stored snapshot of the version each run ran runs again,\n" +
			"and children get the versions they ran. --latest resolves the run's own\n" +
			"workflow anew (the workspace file it came from when it still exists, else the\n" +
			"latest registered version) and the children anew: \"fix the body, rerun from\n" +
			"the failed step\". Every step the rerun keeps must exist in the new version with\n" +
			"the same id and kind.\n\n" +
			"--dry-run prints which steps of which runs would run again, and changes\n" +
			"nothing. Refused (exit 2) while the tree's root is active.",
		Flags: append(engineFlags(),
			&cli.StringSliceFlag{Name: "from", Usage: "a `STEP` to run again, with everything downstream of it; repeatable"},
			&cli.BoolFlag{Name: "failed", Usage: "rerun every failed, cancelled or skipped step, down the tree"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing"},
			&cli.BoolFlag{Name: "latest", Usage: "resolve the run's workflow and its children anew (default: the stored snapshot and the versions they ran)"},
			jsonFlag(),
		),
		Action: func(c *cli.Context) error {
			id, err := oneRunArg(c)
			if err != nil {
				return err
			}
			from := c.StringSlice("from")
			if len(from) == 0 && !c.Bool("failed") {
				return usageErrorf("flowscript rerun: say what to rerun: --from STEP (repeatable) or --failed")
			}
			s, err := holdDatabase(c, false, true)
			if err != nil {
				return err
			}
			defer s.close()
			plan, err := s.eng.Rerun(s.ctx, id, "", flowscript.RerunOptions{DryRun: c.Bool("dry-run"), Latest: c.Bool("latest"), From: from, Failed: c.Bool("failed")})
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			if c.Bool("dry-run") {
				if c.Bool("json") {
					return writeJSON(c.App.Writer, plan)
				}
				printRerunPlan(c.App.Writer, plan)
				return nil
			}
			s.env.announce(plan.Root)
			s.progress.follow(plan.Root)
			rec, err := s.eng.WaitTree(s.ctx, plan.Root)
			if s.ctx.Err() != nil {
				return s.interrupted(c, "run "+plan.Root+" is")
			}
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			return printOutcome(c.App.Writer, rec, c.Bool("json"))
		},
	}
}

// printRerunPlan says, run by run from the root down, what a rerun would
// do.
func printRerunPlan(w io.Writer, plan *flowscript.RerunPlan) {
	for _, r := range plan.Runs {
		var parts []string
		switch len(r.Reopen) {
		case 0:
		case 1:
			parts = append(parts, r.Reopen[0]+" waits again for its child")
		default:
			parts = append(parts, strings.Join(r.Reopen, ", ")+" wait again for their children")
		}
		if len(r.Steps) > 0 {
			steps := strings.Join(r.Steps, ", ")
			if len(parts) > 0 {
				steps = "then " + steps
			}
			parts = append(parts, steps)
		}
		line := fmt.Sprintf("run %s (%s): %s", r.RunID, r.Workflow, strings.Join(parts, "; "))
		switch {
		case r.NewVersion > 0:
			line += fmt.Sprintf(" [version %d -> %d]", r.Version, r.NewVersion)
		case r.Snapshot:
			line += fmt.Sprintf(" [the stored snapshot of version %d]", r.Version)
		default:
			line += fmt.Sprintf(" [version %d, unchanged]", r.Version)
		}
		fmt.Fprintln(w, line)
		names := make([]string, 0, len(r.Reattach))
		for step := range r.Reattach {
			names = append(names, step)
		}
		sort.Strings(names)
		for _, step := range names {
			fmt.Fprintf(w, "  %s re-attaches to run %s, which its idempotency key binds it to (no new child)\n", step, r.Reattach[step])
		}
		for _, step := range r.KeepIterations {
			kept, ok := r.KeptIterations[step]
			if !ok {
				continue
			}
			line := fmt.Sprintf("  %s keeps the children of %s that succeeded", step, countIterations(kept))
			if len(kept) == 0 {
				line = fmt.Sprintf("  %s keeps no child: none succeeded", step)
			}
			if fresh, ok := r.NewIterations[step]; ok {
				line += fmt.Sprintf("; new children for %s", countIterations(fresh))
			} else {
				line += "; new children for the other items"
			}
			fmt.Fprintln(w, line)
		}
	}
}

// countIterations is "3 iterations (0-2)": how many, and which, as
// ranges (at most 20, then how many more).
func countIterations(idx []int) string {
	if len(idx) == 0 {
		return "no iteration"
	}
	var ranges []string
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if j == i {
			ranges = append(ranges, fmt.Sprint(idx[i]))
		} else {
			ranges = append(ranges, fmt.Sprintf("%d-%d", idx[i], idx[j]))
		}
		i = j + 1
	}
	if len(ranges) > 20 {
		ranges = append(ranges[:20], "and "+plural(len(ranges)-20, "more range"))
	}
	return fmt.Sprintf("%s (%s)", plural(len(idx), "iteration"), strings.Join(ranges, ", "))
}
