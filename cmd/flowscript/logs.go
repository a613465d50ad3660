package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// followPoll is how often logs --follow and watch look for news (they
// also wake on every committed event).
const followPoll = 200 * time.Millisecond

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the logs and shell output of a run's steps",
		ArgsUsage: "RUN",
		Description: "Prints each step attempt's log: what its body logged and, for shell steps,\n" +
			"its output, stdout lines marked \"out| \" and stderr lines \"err| \", in the\n" +
			"order written. A running step's output so far is included. --follow prints\n" +
			"new output as it is written, until the run ends. --tree includes the logs of\n" +
			"every run below RUN, each line prefixed by its run and step. --step on a\n" +
			"sub_workflow step shows its child run's logs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "step", Usage: "only the logs of step `ID` (of a sub_workflow step: its child's)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "print new output as it is written, until the run ends"},
			&cli.BoolFlag{Name: "tree", Usage: "include the logs of every run below RUN, lines prefixed by run and step"},
		},
		Action: func(c *cli.Context) error {
			id, eng, ctx, done, err := openOnRun(c, engineConfig{existing: true})
			if err != nil {
				return err
			}
			defer done()
			scope, err := eng.LogScopeOf(ctx, id, c.String("step"), c.Bool("tree"))
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			if !c.Bool("follow") {
				logs, err := eng.ScopeLogs(ctx, scope)
				if err != nil {
					return engineError(c.App.ErrWriter, err)
				}
				flowscript.WriteLogs(c.App.Writer, logs, scope.Prefixed)
				return nil
			}
			envOf(c).announce(scope.Root)
			return followLogs(c, ctx, eng, scope)
		},
	}
}

// followLogs prints the logs so far, then new output as it is written,
// whole lines prefixed by step (and run), until the run ends.
func followLogs(c *cli.Context, ctx context.Context, eng *flowscript.Engine, scope *flowscript.LogScope) error {
	tail := scope.Tail()
	wake, unsubscribe := wakeOnEvents(eng)
	defer unsubscribe()
	for {
		// the run's state first: output written before it ended is then
		// printed by this round's read (and whether a process runs it
		// before that: a run leaves the engine only after its end commits)
		active := envOf(c).shared != nil && eng.IsActive(scope.Root)
		status, err := eng.Status(ctx, scope.Root)
		if err != nil {
			return engineError(c.App.ErrWriter, err)
		}
		logs, err := eng.ScopeLogs(ctx, scope)
		if err != nil {
			return engineError(c.App.ErrWriter, err)
		}
		tail.Write(c.App.Writer, logs)
		if status.Terminal() {
			return nil
		}
		if !active {
			fmt.Fprintf(c.App.ErrWriter, "flowscript logs: run %s is %s but no process runs it (interrupted): continue it with flowscript resume %s\n", scope.Root, status, scope.Root)
			return silentExit(exitUsage)
		}
		select {
		case <-ctx.Done():
			return interruptedExit(c, "run "+scope.Root+" stays unfinished")
		case <-wake:
		case <-time.After(followPoll):
		}
	}
}

// wakeOnEvents gives a channel that receives when the engine commits an
// event.
func wakeOnEvents(eng *flowscript.Engine) (<-chan struct{}, func()) {
	wake := make(chan struct{}, 1)
	unsubscribe := eng.Observe(func(*flowscript.RunRecord, flowscript.HistoryEvent) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	return wake, unsubscribe
}
