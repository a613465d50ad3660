package main

import (
	"context"
	"fmt"
	"os"

	"github.com/flowscript/flowscript"
	"github.com/urfave/cli/v2"
)

// session is a command that holds the database while it works (run,
// resume, serve, rerun): its engine, its progress display on stderr, and a
// context that ends on Ctrl-C (or when a forwarded command's client goes
// away).
type session struct {
	eng      *flowscript.Engine
	env      *appEnv
	progress *progress
	secrets  map[string]string
	ctx      context.Context
	release  func()
	close    func()
}

// holdDatabase opens a session; all shows the progress of every run, else
// only of the tree that progress.follow names.
func holdDatabase(c *cli.Context, all, existing bool) (*session, error) {
	return openSession(c, all, engineConfig{existing: existing})
}

// openSession opens a session on an engine configured by cfg (its secrets
// come from --secrets-file).
func openSession(c *cli.Context, all bool, cfg engineConfig) (*session, error) {
	env := envOf(c)
	secrets, err := readSecretsFile(env.path(c.String("secrets-file")))
	if err != nil {
		return nil, err
	}
	cfg.secrets, cfg.hold = secrets, true
	eng, release, err := openEngine(c, cfg)
	if err != nil {
		return nil, err
	}
	prog := &progress{w: c.App.ErrWriter, all: all}
	unsubscribe := eng.Observe(prog.observe)
	ctx, stop := commandContext(c)
	s := &session{eng: eng, env: env, progress: prog, secrets: secrets, ctx: ctx, release: release}
	s.close = func() {
		stop()
		unsubscribe()
		release()
	}
	return s, nil
}

// interrupted ends a command whose wait was cut short by Ctrl-C: the
// runs stay unfinished (a forwarded command's runs go on in the holder).
func (s *session) interrupted(c *cli.Context, what string) error {
	if s.env.shared == nil {
		s.release()
		fmt.Fprintf(c.App.ErrWriter, "interrupted: %s unfinished; continue with: flowscript resume\n", what)
	}
	return interruptedExit(c, what+" unfinished")
}

// interruptedExit ends a command whose context ended: Ctrl-C (the client
// of a forwarded command says what goes on), or the holder stopping, which
// the forwarded command's terminal is told, with what stays unfinished.
func interruptedExit(c *cli.Context, unfinished string) error {
	if env := envOf(c); env.holderStopping != nil && env.holderStopping() {
		fmt.Fprintf(c.App.ErrWriter, "flowscript: the process holding the database (pid %d) is stopping; %s; the next flowscript serve or resume continues it\n", os.Getpid(), unfinished)
	}
	return silentExit(exitInterrupt)
}

// openOnRun starts a command on one run: its RUN argument, an engine (the
// holder's when forwarded), and a context that ends on Ctrl-C; done gives
// them back.
func openOnRun(c *cli.Context, cfg engineConfig) (string, *flowscript.Engine, context.Context, func(), error) {
	id, err := oneRunArg(c)
	if err != nil {
		return "", nil, nil, nil, err
	}
	eng, release, err := openEngine(c, cfg)
	if err != nil {
		return "", nil, nil, nil, err
	}
	ctx, stop := commandContext(c)
	return id, eng, ctx, func() {
		stop()
		release()
	}, nil
}
