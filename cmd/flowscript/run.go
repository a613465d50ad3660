package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "register a workflow and run it to the end, showing step progress",
		ArgsUsage: "FILE",
		Description: "Validates FILE, registers its workflow, starts a run and shows each step's\n" +
			"progress on stderr. Prints \"<run-id> <status>\" on stdout at the end (or the\n" +
			"run record with --json). Exit 0 if the run succeeded, 1 if it failed or was\n" +
			"cancelled, 2 for invalid input. Ctrl-C leaves the run unfinished:\n" +
			"flowscript resume continues it.",
		Flags: append(append(scriptFlags(), engineFlags()...),
			&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "set a param: `name=value` (value is JSON where it parses, else a string); repeatable"},
			&cli.StringFlag{Name: "params-file", Usage: "read params from a JSON object in `FILE`; --param overrides"},
			&cli.IntFlag{Name: "priority", Usage: "run priority 0–99, higher first"},
			&cli.BoolFlag{Name: "json", Usage: "print the run record as JSON on stdout"},
			&cli.StringFlag{Name: "idempotency-key", Usage: "bind the run to `KEY`: another run of this workflow with the same key follows --idempotency-strategy"},
			&cli.StringFlag{Name: "idempotency-strategy", Usage: "return_existing (default: wait for the bound run and report it) or fail (exit 2 naming it)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("flowscript run: name exactly one FILE (see flowscript run --help)")
			}
			env := envOf(c)
			paramIn, err := parseParams(env.path(c.String("params-file")), c.StringSlice("param"))
			if err != nil {
				return err
			}
			if p := c.Int("priority"); p < 0 || p > 99 {
				return usageErrorf("flowscript run: --priority must be between 0 and 99, got %d", p)
			}
			strategy := c.String("idempotency-strategy")
			switch strategy {
			case "", "return_existing", "fail", "fail_on_running":
			default:
				return usageErrorf("flowscript run: --idempotency-strategy %q is not return_existing or fail", strategy)
			}
			if strategy != "" && c.String("idempotency-key") == "" {
				return usageErrorf("flowscript run: --idempotency-strategy needs --idempotency-key")
			}
			file := c.Args().First()
			if _, err := os.Stat(env.path(file)); err != nil {
				return usageErrorf("flowscript: %v", unwrapPath(err))
			}
			s, err := holdDatabase(c, false, false)
			if err != nil {
				return err
			}
			defer s.close()
			p, err := s.eng.LoadFile(s.ctx, file, flowscript.LoadOptions{Workspace: c.String("workspace"), BaseDir: env.cwd})
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			params, err := paramIn.typed(p.Workflow())
			if err != nil {
				return err
			}
			lookup := func(name string) (string, bool) {
				if v, ok := s.secrets[name]; ok {
					return v, true
				}
				return env.lookupEnv(name)
			}
			id, err := s.eng.Start(s.ctx, p, flowscript.RunOptions{
				Params: params, Priority: c.Int("priority"), Secrets: flowscript.SecretFunc(lookup),
				IdempotencyKey: c.String("idempotency-key"), IdempotencyStrategy: flowscript.IdempotencyStrategy(strategy),
			})
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			s.progress.follow(id)
			// detached descendants too: run returns when the whole tree is done
			rec, err := s.eng.WaitTree(s.ctx, id)
			if s.ctx.Err() != nil {
				return s.interrupted(c, "run "+id+" is")
			}
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			return printOutcome(c.App.Writer, rec, c.Bool("json"))
		},
	}
}

// printOutcome prints a finished run and picks the exit code.
func printOutcome(w io.Writer, rec *flowscript.RunRecord, asJSON bool) error {
	if asJSON {
		if err := writeJSON(w, rec); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "%s %s\n", rec.ID, rec.Status)
	}
	if rec.Status != "succeeded" {
		return silentExit(exitFailed)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// commandContext ends on Ctrl-C or SIGTERM, or, for a forwarded command,
// when its client goes away.
func commandContext(c *cli.Context) (context.Context, context.CancelFunc) {
	if env := envOf(c); env.ctx != nil {
		return context.WithCancel(env.ctx)
	}
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
