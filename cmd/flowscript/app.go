package main

import (
	"errors"
	"fmt"
	"github.com/flowscript/flowscript"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"
)

// Main runs the CLI with args (args[0] is the program name) and returns the
// exit code.
func Main(args []string) int {
	return run(args, os.Stdin, os.Stdout, os.Stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWithEnv(args, stdin, stdout, stderr, &appEnv{})
}

// runWithEnv runs one command. When the database is held by another
// process, the command is sent to that process, which runs it and sends
// the output back; if the holder does not answer within 5 s, the command
// exits 2 naming it.
func runWithEnv(args []string, stdin io.Reader, stdout, stderr io.Writer, env *appEnv) int {
	deadline := time.Now().Add(forwardTimeout)
	for {
		err := runApp(args, stdin, stdout, stderr, env)
		var nf *natsForwardError
		if errors.As(err, &nf) {
			return nf.forward(args, stdout, stderr)
		}
		var fe *forwardError
		if !errors.As(err, &fe) {
			return exitAfter(err, stderr)
		}
		conn, dialErr := dialHolder(fe.dir)
		if dialErr == nil {
			code, err := converse(conn, args, stdout, stderr)
			if err == nil {
				return code
			}
			if err != errNoAnswer {
				fmt.Fprintf(stderr, "flowscript: %v\n", err)
				return code
			}
			dialErr = err
		}
		// the holder may be a short-lived command, or still starting: try
		// the database again until the deadline
		if time.Now().After(deadline) {
			who := "another process"
			if fe.locked.PID > 0 {
				who = fmt.Sprintf("process %d", fe.locked.PID)
			}
			fmt.Fprintf(stderr, "flowscript: the database %s is held by %s, which did not answer within %s: %v\n", fe.dir, who, forwardTimeout, dialErr)
			return exitUsage
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// parseMu serializes urfave/cli's parsing: it writes into package-level
// values (its help flag and help command) as it sets up a command, and
// the holder of a database runs the commands forwarded to it at once.
var parseMu sync.Mutex

func runApp(args []string, stdin io.Reader, stdout, stderr io.Writer, env *appEnv) error {
	app := newApp(stdin, stdout, stderr)
	app.Metadata = map[string]any{envKey: env}
	// a command's action runs after parsing, outside parseMu
	var action func() error
	for _, cmd := range app.Commands {
		if act := cmd.Action; act != nil {
			cmd.Action = func(c *cli.Context) error {
				action = func() error { return act(c) }
				return nil
			}
		}
	}
	parseMu.Lock()
	args, err := reorderArgs(app, args)
	if err == nil {
		err = checkHelpTopic(app, args)
	}
	if err == nil {
		err = app.Run(args)
	}
	parseMu.Unlock()
	if err == nil && action != nil {
		err = action()
	}
	return err
}

// globalFlags are accepted before or after the command name.
func globalFlags() []cli.Flag {
	return append(storeFlags(),
		&cli.StringFlag{Name: "db", Usage: "the database directory", EnvVars: []string{"FLOWSCRIPT_DB"}, Value: ".flowscript"},
		&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn, error or off", Value: "warn"},
		&cli.StringFlag{Name: "log-format", Usage: "text or json", Value: "text"},
		&cli.BoolFlag{Name: "version", Usage: "print the version and exit (as flowscript version)"},
	)
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                      "flowscript",
		Usage:                     "durable workflows written as Starlark scripts",
		Description:               "A workflow is a .star file whose top level declares a DAG of steps.\nSee the README for the language and the commands.",
		Reader:                    stdin,
		Writer:                    stdout,
		ErrWriter:                 stderr,
		Flags:                     globalFlags(),
		DisableSliceFlagSeparator: true,
		HideVersion:               true,
		ExitErrHandler:            func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageErrorf("flowscript: %s (see %s)", flagErrorText(err), helpHint(c))
		},
		// reached only when no command, or an unknown one, is named: the
		// commands have actions of their own, and --help is answered first
		Action: func(c *cli.Context) error {
			if c.Bool("version") && c.NArg() == 0 {
				printVersion(c.App.Writer)
				return nil
			}
			if c.NArg() == 0 {
				cli.HelpPrinter(c.App.ErrWriter, cli.AppHelpTemplate, c.App)
				return usageErrorf("flowscript: name a command (see flowscript --help)")
			}
			return unknownCommand(c.App, c.Args().First())
		},
		Before: func(c *cli.Context) error {
			_, err := newLogger(c, stderr)
			return err
		},
		Commands: []*cli.Command{
			validateCommand(),
			graphCommand(),
			runCommand(),
			startCommand(),
			watchCommand(),
			resumeCommand(),
			showCommand(),
			runsCommand(),
			historyCommand(),
			logsCommand(),
			serveCommand(),
			registerCommand(),
			defsCommand(),
			treeCommand(),
			cancelCommand(),
			rerunCommand(),
			versionCommand(),
			testCommand(),
			replCommand(),
			checkCommand(),
			natsCommand(),
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
		if act := cmd.Action; cmd.ArgsUsage == "" && act != nil {
			// a command that names no arguments refuses stray ones
			name := cmd.Name
			cmd.Action = func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageErrorf("flowscript %s: takes no arguments (see flowscript %s --help)", name, name)
				}
				return act(c)
			}
		}
	}
	return app
}

// helpHint names the help that goes with a usage error: the command's, or
// the app's.
func helpHint(c *cli.Context) string {
	if c.Command == nil || c.Command.Name == "" || c.Command.Name == c.App.Name {
		return "flowscript --help"
	}
	return "flowscript " + c.Command.Name + " --help"
}

// checkHelpTopic refuses "flowscript help NAME" for an unknown NAME the way
// an unknown command is refused (urfave/cli's own message names no
// commands).
func checkHelpTopic(app *cli.App, args []string) error {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if isFlag(a) {
			if takesValue(flagArity(app.Flags), a) {
				i++
			}
			continue
		}
		if (a == "help" || a == "h") && i+1 < len(args) && !isFlag(args[i+1]) && app.Command(args[i+1]) == nil {
			return unknownCommand(app, args[i+1])
		}
		return nil
	}
	return nil
}

func unknownCommand(app *cli.App, name string) error {
	var names []string
	for _, cmd := range app.Commands {
		if !cmd.Hidden && cmd.Name != "help" {
			names = append(names, cmd.Name)
		}
	}
	return usageErrorf("flowscript: unknown command %q%s (commands: %s; see flowscript --help)",
		name, flowscript.DidYouMean(name, names), strings.Join(names, ", "))
}

func newLogger(c *cli.Context, stderr io.Writer) (hclog.Logger, error) {
	level := hclog.LevelFromString(c.String("log-level"))
	if level == hclog.NoLevel {
		return nil, usageErrorf("flowscript: --log-level %q is not one of trace, debug, info, warn, error, off", c.String("log-level"))
	}
	format := c.String("log-format")
	if format != "text" && format != "json" {
		return nil, usageErrorf("flowscript: --log-format %q is not text or json", format)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "flowscript",
		Level:      level,
		Output:     stderr,
		JSONFormat: format == "json",
	}), nil
}
