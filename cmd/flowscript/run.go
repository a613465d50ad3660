package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// startFlags are the flags of run and start.
func startFlags() []cli.Flag {
	return append(append(scriptFlags(), engineFlags()...),
		&cli.StringSliceFlag{Name: "param", Aliases: []string{"p"}, Usage: "set a param: `name=value`, read by the type of the param's default (a string default keeps value as written; None: JSON where it parses, else a string); repeatable"},
		&cli.StringFlag{Name: "params-file", Usage: "read params from a JSON object in `FILE` (at most 16 MiB); --param overrides"},
		&cli.IntFlag{Name: "priority", Usage: fmt.Sprintf("run priority %d–%d, higher first", flowscript.MinPriority, flowscript.MaxPriority)},
		&cli.BoolFlag{Name: "json", Usage: "print the run record as JSON on stdout"},
		&cli.StringFlag{Name: "idempotency-key", Usage: "bind the run to `KEY`: another run of this workflow with the same key follows --idempotency-strategy"},
		&cli.StringFlag{Name: "idempotency-strategy", Usage: strategyUsage()},
	)
}

// strategyUsage is the usage of --idempotency-strategy, made from the
// strategies the engine has (flowscript.IdempotencyStrategies).
func strategyUsage() string {
	var parts []string
	for i, s := range flowscript.IdempotencyStrategies() {
		m := s.Meaning()
		if i == 0 {
			m = "the default: " + m + "; run waits for it and reports it"
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", s, m))
	}
	return "what to do when the key is already bound: " + strings.Join(parts, ", ") + "; a refusal exits 2"
}

// strategyNames is the strategies as an error names them.
func strategyNames() string {
	var names []string
	for _, s := range flowscript.IdempotencyStrategies() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

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
		Flags: startFlags(),
		Action: func(c *cli.Context) error {
			s, id, err := launch(c, nil)
			if err != nil {
				return err
			}
			defer s.close()
			s.env.announce(id)
			if tty, size := terminalOf(c.App.ErrWriter); tty {
				// on a terminal, the live view of watch instead of lines
				s.progress.mute()
				if _, err := watchTree(s.ctx, c, s.eng, id, &redrawView{out: c.App.ErrWriter, size: size}, true); err != nil && s.ctx.Err() == nil {
					return err
				}
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

func startCommand() *cli.Command {
	return &cli.Command{
		Name:      "start",
		Usage:     "hand a run to the flowscript serve holding the database and print its id at once",
		ArgsUsage: "FILE",
		Description: "Like run, but returns as soon as the run is stored, printing its id (or its\n" +
			"record with --json). The run goes on in the flowscript serve process that\n" +
			"holds the database; without one, start exits 2. Follow the run with\n" +
			"flowscript watch RUN and flowscript logs RUN --follow.",
		Flags: startFlags(),
		Action: func(c *cli.Context) error {
			s, id, err := launch(c, needServe)
			if err != nil {
				return err
			}
			defer s.close()
			if c.Bool("json") {
				rec, err := s.eng.Get(s.ctx, id)
				if err != nil {
					return engineError(c.App.ErrWriter, err)
				}
				return writeJSON(c.App.Writer, rec)
			}
			fmt.Fprintln(c.App.Writer, id)
			return nil
		},
	}
}

// needServe lets start go on only in a flowscript serve holding the
// database; the start of a process that holds none is forwarded to the
// serve that does, if any.
func needServe(c *cli.Context) error {
	env := envOf(c)
	if env.shared != nil {
		if !env.serving {
			return noServe(c)
		}
		return nil
	}
	if storeURL(c) != "" {
		return natsNeedServe(c)
	}
	if dbMissing(c) {
		return noServe(c)
	}
	_, release, err := openEngine(c, engineConfig{existing: true})
	if err != nil {
		return err // held: the start is forwarded
	}
	release()
	return noServe(c)
}

// launch reads run's flags, checks what check checks (when not nil),
// opens a session and starts the run. The caller closes the session.
func launch(c *cli.Context, check func(*cli.Context) error) (*session, string, error) {
	in, err := readStartInput(c)
	if err != nil {
		return nil, "", err
	}
	if check != nil {
		if err := check(c); err != nil {
			return nil, "", err
		}
	}
	s, err := holdDatabase(c, false, false)
	if err != nil {
		return nil, "", err
	}
	id, err := startRun(c, s, in)
	if err != nil {
		s.close()
		return nil, "", err
	}
	return s, id, nil
}

// noServe refuses start when no flowscript serve holds the database: a run
// handed to this process, or to a run that ends soon, would stop with it.
func noServe(c *cli.Context) error {
	if envOf(c).shared != nil {
		return usageErrorf("flowscript start: the database %s is held by a flowscript command that is not serve; start needs flowscript serve (run it in another terminal, or as a service), or use flowscript run", dbDir(c))
	}
	return usageErrorf("flowscript start: no flowscript serve holds the database %s; start one first (flowscript serve --db %s, in another terminal or as a service), or use flowscript run", dbDir(c), dbDir(c))
}

// startInput is what run and start read from their flags before they open
// the database.
type startInput struct {
	file   string
	params *paramInput
}

func readStartInput(c *cli.Context) (*startInput, error) {
	name := c.Command.Name
	if c.NArg() != 1 {
		return nil, usageErrorf("flowscript %s: name exactly one FILE (see flowscript %s --help)", name, name)
	}
	env := envOf(c)
	params, err := parseParams(env.path(c.String("params-file")), c.StringSlice("param"))
	if err != nil {
		return nil, err
	}
	if p := c.Int("priority"); p < flowscript.MinPriority || p > flowscript.MaxPriority {
		return nil, usageErrorf("flowscript %s: --priority must be between %d and %d, got %d", name, flowscript.MinPriority, flowscript.MaxPriority, p)
	}
	strategy := c.String("idempotency-strategy")
	if strategy != "" && !flowscript.IdempotencyStrategy(strategy).Valid() {
		return nil, usageErrorf("flowscript %s: --idempotency-strategy %q is not one of %s", name, strategy, strategyNames())
	}
	if strategy != "" && c.String("idempotency-key") == "" {
		return nil, usageErrorf("flowscript %s: --idempotency-strategy needs --idempotency-key", name)
	}
	file := c.Args().First()
	if _, err := os.Stat(env.path(file)); err != nil {
		return nil, usageErrorf("flowscript: %v", unwrapPath(err))
	}
	return &startInput{file: file, params: params}, nil
}

// startRun loads the file, reads the params by their declared types and
// starts the run.
func startRun(c *cli.Context, s *session, in *startInput) (string, error) {
	env := s.env
	p, err := s.eng.Load(s.ctx, flowscript.File(in.file), flowscript.LoadOptions{Workspace: c.String("workspace"), BaseDir: env.cwd})
	if err != nil {
		return "", engineError(c.App.ErrWriter, err)
	}
	params, err := in.params.typed(p.Params())
	if err != nil {
		return "", err
	}
	lookup := func(name string) (string, bool) {
		if v, ok := s.secrets[name]; ok {
			return v, true
		}
		return env.lookupEnv(name)
	}
	id, err := s.eng.Start(s.ctx, p, flowscript.RunOptions{
		Params: params, Priority: c.Int("priority"), Secrets: flowscript.SecretFunc(lookup),
		IdempotencyKey: c.String("idempotency-key"), IdempotencyStrategy: flowscript.IdempotencyStrategy(c.String("idempotency-strategy")),
	})
	if err != nil {
		return "", engineError(c.App.ErrWriter, err)
	}
	return id, nil
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
	return outcomeExit(rec)
}

// outcomeExit is run's exit code for an ended run: 0 if it succeeded, 1
// if it failed or was cancelled.
func outcomeExit(rec *flowscript.RunRecord) error {
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
