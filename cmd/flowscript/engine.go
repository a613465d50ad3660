package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// engineFlags are the flags of commands that run workflows.
func engineFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "secrets-file", Usage: "read secrets from `FILE` (NAME=value lines); others come from the environment"},
		&cli.StringFlag{Name: "durability", Usage: "durable (sync every commit) or fast (no sync: a machine crash may lose the last transitions)", Value: "durable"},
		&cli.IntFlag{Name: "workers", Usage: "step attempts that may execute at once", Value: 32},
		&cli.IntFlag{Name: "max-children", Usage: "child runs one run may have in all (for_each, loop and sub_workflow children)", Value: flowscript.DefaultMaxChildren},
	}
}

type engineConfig struct {
	secrets map[string]string
	// hold: this command keeps the database while it works (run, resume,
	// serve), so it answers other commands over the socket meanwhile.
	hold bool
	// existing: the command only reads or changes what is stored, so a
	// database that does not exist is an error, not one to create (a
	// mistyped --db must not leave a database behind).
	existing bool
	// serving: the command is flowscript serve, which keeps the runs that
	// forwarded commands start; stopping, it ends those commands.
	serving bool
}

// dbDir is the database directory: --db, else $FLOWSCRIPT_DB, else
// ./.flowscript (an empty value counts as unset).
func dbDir(c *cli.Context) string {
	if d := c.String("db"); d != "" {
		return d
	}
	return ".flowscript"
}

// dbMissing reports that the database directory does not exist (and no
// engine is shared with this command).
func dbMissing(c *cli.Context) bool {
	env := envOf(c)
	if env.shared != nil || storeURL(c) != "" {
		return false
	}
	_, err := os.Stat(env.path(dbDir(c)))
	return errors.Is(err, os.ErrNotExist)
}

// openEngine gives the command an engine: the holding process's own when
// the command was forwarded to it, else one on the database --db names.
// release gives it back.
// noDatabase says that the database directory does not exist, with its
// path and how to name another.
func noDatabase(c *cli.Context) string {
	dir := envOf(c).path(dbDir(c))
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return fmt.Sprintf("no database at %s (set --db or $FLOWSCRIPT_DB)", dir)
}

func openEngine(c *cli.Context, cfg engineConfig) (*flowscript.Engine, func(), error) {
	env := envOf(c)
	if c.IsSet("workers") && c.Int("workers") < 1 {
		return nil, nil, usageErrorf("flowscript: --workers %d: at least one worker is needed to run a step", c.Int("workers"))
	}
	if env.shared != nil {
		return env.shared, func() {}, nil
	}
	logger, err := newLogger(c, c.App.ErrWriter)
	if err != nil {
		return nil, nil, err
	}
	secrets := cfg.secrets
	opts := flowscript.Options{
		Logger:  logger,
		Secrets: secrets,
		Workers: c.Int("workers"), // 0 where the command has no such flag: the default
	}
	if c.IsSet("max-children") {
		if opts.MaxChildren = c.Int("max-children"); opts.MaxChildren < 1 {
			return nil, nil, usageErrorf("flowscript: --max-children %d: it must be 1 or more", opts.MaxChildren)
		}
	}
	if c.IsSet("max-steps") {
		opts.MaxSteps = c.Uint64("max-steps")
	}
	switch d := c.String("durability"); d {
	case "", "durable":
	case "fast":
		opts.Durability = flowscript.Fast
		fmt.Fprintln(c.App.ErrWriter, "flowscript: --durability fast: commits are not synced to disk; a machine crash may lose the last transitions")
	default:
		return nil, nil, usageErrorf("flowscript: --durability %q is not durable or fast", d)
	}
	if storeURL(c) != "" {
		return openNATS(c, cfg, opts)
	}
	dir := env.path(dbDir(c))
	if cfg.existing && dbMissing(c) {
		return nil, nil, usageErrorf("flowscript: %s", noDatabase(c))
	}
	eng, err := flowscript.Open(dir, opts)
	if err != nil {
		var locked *flowscript.LockedError
		if errors.As(err, &locked) {
			return nil, nil, &forwardError{dir: dir, locked: locked}
		}
		return nil, nil, storeError(err)
	}
	release := func() { eng.Close() }
	if cfg.hold {
		srv, err := listen(eng, logger, cfg.serving)
		if err != nil {
			eng.Close()
			return nil, nil, &exitError{code: exitUsage, msg: "flowscript: " + err.Error()}
		}
		release = func() {
			srv.close(c.App.ErrWriter, cfg.serving)
			eng.Close()
		}
	}
	return eng, release, nil
}
