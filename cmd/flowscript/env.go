package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// appEnv is what a command runs in: the terminal of the process itself,
// or, inside the process that holds the database, the terminal of the
// command forwarded to it.
type appEnv struct {
	// shared is the engine of the holding process; nil when the command
	// opens the database itself.
	shared *flowscript.Engine
	// ctx ends when the forwarded client goes away (or on Ctrl-C locally).
	ctx context.Context
	// cwd and environ are the client's, for a forwarded command.
	cwd     string
	environ map[string]string
	// serving: the holder is flowscript serve, which keeps runs going
	// after the command that started them returns (start needs it).
	serving bool
	// tty: the forwarded command's stdout is a terminal (watch redraws),
	// of this size.
	tty  bool
	size termSize
	// onRun tells the forwarded command's client which run it follows, so
	// that its Ctrl-C can say where the run goes on.
	onRun func(id string)
	// holderStopping reports that the holder is stopping (serve got
	// SIGTERM): the forwarded command ends with it.
	holderStopping func() bool
}

// announce tells the client of a forwarded command which run it follows.
func (env *appEnv) announce(id string) {
	if env.onRun != nil {
		env.onRun(id)
	}
}

const envKey = "flowscript.env"

func envOf(c *cli.Context) *appEnv {
	if env, ok := c.App.Metadata[envKey].(*appEnv); ok {
		return env
	}
	return &appEnv{}
}

// path resolves a path the user gave against their working directory.
func (env *appEnv) path(p string) string {
	if p == "" || env.cwd == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(env.cwd, p)
}

// lookupEnv reads the user's environment: the client's when forwarded.
func (env *appEnv) lookupEnv(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	if env.environ != nil {
		v, ok = env.environ[name]
	}
	// an empty variable is as good as none: there is nothing to mask
	return v, ok && v != ""
}
