package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "hold the database: continue unfinished runs and answer other commands until stopped",
		Description: "Opens the database, continues every unfinished run, and answers the commands\n" +
			"other terminals run on this database (run, show, runs, history, logs, ...)\n" +
			"over a socket in the database directory, until Ctrl-C or SIGTERM. Runs still\n" +
			"going then stay unfinished; the next serve or resume continues them.",
		Flags: append(engineFlags(), &cli.Uint64Flag{Name: "max-steps", Usage: "the execution-step limit for declaring a workflow", Value: flowscript.DefaultMaxSteps}),
		Action: func(c *cli.Context) error {
			env := envOf(c)
			if env.shared != nil {
				return usageErrorf("flowscript serve: this database is already held by a flowscript process, which answers commands")
			}
			s, err := openSession(c, true, engineConfig{serving: true})
			if err != nil {
				return err
			}
			defer s.close()
			// what it runs, as lines, or with --log-format json as records a
			// log collector reads
			say := func(msg string, args ...any) { fmt.Fprintln(c.App.ErrWriter, msg) }
			if c.String("log-format") == "json" {
				log := hclog.New(&hclog.LoggerOptions{Name: "flowscript", Level: hclog.Info, Output: c.App.ErrWriter, JSONFormat: true})
				s.progress.structured(log)
				say = func(msg string, args ...any) { log.Info(msg, args...) }
			}
			ids, err := s.eng.Resume(s.ctx)
			var left *flowscript.HandlersMissingError
			if errors.As(err, &left) {
				fmt.Fprintf(c.App.ErrWriter, "flowscript: %v\n", left)
			} else if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			say(fmt.Sprintf("serving database %s (continued %s); Ctrl-C to stop", dbLabel(c), plural(len(ids), "unfinished run")), "db", dbLabel(c), "continued", len(ids))
			<-s.ctx.Done()
			say("stopping: runs still going stay unfinished; serve or resume continues them")
			return nil
		},
	}
}
