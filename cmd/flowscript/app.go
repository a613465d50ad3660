package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK        = 0
	exitFailed    = 1 // a run failed or was cancelled
	exitUsage     = 2 // usage, validation or input error
	exitInterrupt = 130
)

// exitError carries an exit code and an optional message for stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// silentExit ends a command with a code after it printed what it had to.
func silentExit(code int) error { return &exitError{code: code} }

// Main runs the CLI with args (args[0] is the program name) and returns the
// exit code.
func Main(args []string) int {
	return run(args, os.Stdin, os.Stdout, os.Stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.Run(reorderArgs(app, args))
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	// anything urfave/cli itself reports is a usage problem
	fmt.Fprintf(stderr, "flowscript: %v\n", err)
	return exitUsage
}

// globalFlags are accepted before or after the command name.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "db", Usage: "the database directory", EnvVars: []string{"FLOWSCRIPT_DB"}, Value: ".flowscript"},
		&cli.StringFlag{Name: "log-level", Usage: "trace, debug, info, warn, error or off", Value: "warn"},
		&cli.StringFlag{Name: "log-format", Usage: "text or json", Value: "text"},
	}
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
			return usageErrorf("flowscript: %v (see flowscript %s --help)", err, strings.TrimPrefix(c.Command.FullName(), "flowscript "))
		},
		Before: func(c *cli.Context) error {
			_, err := newLogger(c, stderr)
			return err
		},
		Commands: []*cli.Command{
			validateCommand(),
			graphCommand(),
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(stderr, "flowscript: unknown command %q (see flowscript --help)\n", name)
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
	}
	return app
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
