package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync"

	"github.com/chzyer/readline"
	"github.com/urfave/cli/v2"
	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript"
)

func replCommand() *cli.Command {
	return &cli.Command{
		Name:  "repl",
		Usage: "an interactive session to declare, graph, validate and run workflows",
		Description: "Reads Starlark with the definition builtins, one statement at a time (a blank\n" +
			"line ends a multi-line one), and keeps what ran as the session's script.\n" +
			"graph(), validate() and run() use that script; runs(), show(id), tree(id),\n" +
			"history(id), logs(id) and cancel(id) look at the database (--db), which is\n" +
			"opened at the first of them; help() lists them all. Ctrl-C cancels the\n" +
			"current input or stops what is running; Ctrl-D (or the end of piped input)\n" +
			"exits. History is kept in $FLOWSCRIPT_HISTORY (default ~/.flowscript_history).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "workspace", Usage: "the directory child workflows and shell steps resolve in (default: the current one)"},
		},
		Action: func(c *cli.Context) error {
			env := envOf(c)
			ws := env.path(c.String("workspace"))
			if ws == "" {
				ws = env.path(".")
			}
			abs, err := filepath.Abs(ws)
			if err != nil {
				return usageErrorf("flowscript repl: %v", err)
			}
			logger, err := newLogger(c, c.App.ErrWriter)
			if err != nil {
				return err
			}
			sess := flowscript.NewSession(flowscript.SessionOptions{
				Workspace: abs,
				Out:       c.App.Writer,
				Engine: func() (*flowscript.Engine, error) {
					eng, err := flowscript.Open(env.path(dbDir(c)), flowscript.Options{Logger: logger})
					if err != nil {
						return nil, fmt.Errorf("cannot open the database %s: %v", dbDir(c), err)
					}
					return eng, nil
				},
			})
			defer sess.Close()
			r := &repl{sess: sess, out: c.App.Writer, errOut: c.App.ErrWriter}
			if in, ok := c.App.Reader.(*os.File); ok && readline.IsTerminal(int(in.Fd())) {
				return r.interactive(in)
			}
			return r.piped(c.App.Reader)
		},
	}
}

type repl struct {
	sess        *flowscript.Session
	out, errOut io.Writer

	mu     sync.Mutex
	cancel context.CancelFunc // stops the chunk running, on Ctrl-C
}

// piped reads chunks from input that is not a terminal: no prompts, and
// the end of the input ends the session with exit 0.
func (r *repl) piped(in io.Reader) error {
	br := bufio.NewReader(in)
	readLine := func() ([]byte, error) {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) > 0 {
			return append(line, '\n'), nil
		}
		return line, err
	}
	r.watchInterrupts()
	for {
		text, err := readChunk(readLine)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			fmt.Fprintln(r.errOut, err)
			continue
		}
		r.exec(text)
	}
}

// interactive reads chunks with line editing and history.
func (r *repl) interactive(in *os.File) error {
	history := os.Getenv("FLOWSCRIPT_HISTORY")
	if history == "" {
		if home, err := os.UserHomeDir(); err == nil {
			history = filepath.Join(home, ".flowscript_history")
		}
	}
	rl, err := readline.NewEx(&readline.Config{
		Prompt:          ">>> ",
		HistoryFile:     history,
		InterruptPrompt: "^C",
		Stdin:           in,
		Stdout:          r.out,
		Stderr:          r.errOut,
	})
	if err != nil {
		return usageErrorf("flowscript repl: %v", err)
	}
	defer rl.Close()
	fmt.Fprintln(r.out, "flowscript repl: declare steps as in a .star file; help() lists the commands, Ctrl-D exits")
	r.watchInterrupts()
	for {
		rl.SetPrompt(">>> ")
		interrupted := false
		text, err := readChunk(func() ([]byte, error) {
			line, err := rl.Readline()
			rl.SetPrompt("... ")
			if err == readline.ErrInterrupt {
				interrupted = true
			}
			if err != nil {
				return nil, err
			}
			return []byte(line + "\n"), nil
		})
		switch {
		case interrupted:
			continue // Ctrl-C drops the input being typed
		case err == io.EOF:
			return nil
		case err != nil:
			fmt.Fprintln(r.errOut, err)
			continue
		}
		r.exec(text)
	}
}

// readChunk reads one statement, or one compound statement that a blank
// line ends, and returns its text.
func readChunk(readLine func() ([]byte, error)) (string, error) {
	var buf bytes.Buffer
	eof := false
	_, err := flowscript.FileOptions().ParseCompoundStmt("<stdin>", func() ([]byte, error) {
		line, err := readLine()
		if err == io.EOF {
			eof = true
		}
		buf.Write(line)
		return line, err
	})
	if err != nil {
		if eof && len(bytes.TrimSpace(buf.Bytes())) == 0 {
			return "", io.EOF
		}
		if errors.Is(err, readline.ErrInterrupt) {
			return "", err
		}
		return "", err
	}
	return buf.String(), nil
}

// exec runs a chunk, printing its value or its error.
func (r *repl) exec(text string) {
	if len(bytes.TrimSpace([]byte(text))) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()
	v, err := r.sess.Exec(ctx, text)
	r.mu.Lock()
	r.cancel = nil
	r.mu.Unlock()
	cancel()
	switch {
	case err != nil:
		fmt.Fprintln(r.errOut, err)
	case v != nil && v != starlark.None:
		fmt.Fprintln(r.out, v)
	}
}

// watchInterrupts turns Ctrl-C (SIGINT) while a chunk runs into its
// cancellation, instead of the end of the session.
func (r *repl) watchInterrupts() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	go func() {
		for range sig {
			r.mu.Lock()
			if r.cancel != nil {
				r.cancel()
			}
			r.mu.Unlock()
		}
	}()
}
