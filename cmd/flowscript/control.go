package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/runtime"
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
			id, err := oneRunArg(c)
			if err != nil {
				return err
			}
			eng, release, err := openEngine(c, engineConfig{hold: true, existing: true})
			if err != nil {
				return err
			}
			defer release()
			ctx, stop := commandContext(c)
			defer stop()
			rec, err := eng.Cancel(ctx, id)
			if errors.Is(err, runtime.ErrAlreadyEnded) {
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
		Usage:     "rerun a run from a step, keeping what ran before it",
		ArgsUsage: "RUN --from STEP",
		Description: "Resets STEP and every step downstream of it in RUN (each reset step's next\n" +
			"attempt is its highest so far + 1), keeps the outputs upstream, and runs to\n" +
			"the end. A sub_workflow step gets a new child. When RUN is a blocking child,\n" +
			"its parent continues from the sub_workflow step with the new outcome, up to\n" +
			"the root; the command returns when the root ends. --dry-run prints which\n" +
			"steps of which runs would run again and changes nothing. Refused (exit 2)\n" +
			"while the tree's root is active.",
		Flags: append(engineFlags(),
			&cli.StringFlag{Name: "from", Usage: "the `STEP` to run again (with everything downstream of it)", Required: true},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan and change nothing"},
			&cli.BoolFlag{Name: "latest", Usage: "resolve children anew (default: rerun the versions they ran)"},
			jsonFlag(),
		),
		Action: func(c *cli.Context) error {
			id, err := oneRunArg(c)
			if err != nil {
				return err
			}
			s, err := holdDatabase(c, false, true)
			if err != nil {
				return err
			}
			defer s.close()
			plan, err := s.eng.Rerun(s.ctx, id, c.String("from"), flowscript.RerunOptions{DryRun: c.Bool("dry-run"), Latest: c.Bool("latest")})
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			if c.Bool("dry-run") {
				if c.Bool("json") {
					return writeJSON(c.App.Writer, plan)
				}
				for _, r := range plan.Runs {
					line := fmt.Sprintf("run %s (%s): %s", r.RunID, r.Workflow, strings.Join(r.Steps, ", "))
					if r.Reopen != "" {
						line = fmt.Sprintf("run %s (%s): %s waits again for its child", r.RunID, r.Workflow, r.Reopen)
						if len(r.Steps) > 0 {
							line += "; then " + strings.Join(r.Steps, ", ")
						}
					}
					fmt.Fprintln(c.App.Writer, line)
				}
				return nil
			}
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
