package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// checkCommand verifies a database without changing it: every table's
// checksums, every value, every run's history and links. Exit 0 whole, 2
// damaged (or not a flowscript database, or in use).
func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "verify the database without changing it",
		Description: "Opens the database read-only and verifies every table's checksums, reads every\n" +
			"value, and checks every run's records: history seq from 1 without gaps, records\n" +
			"that decode, parent and child links that agree. Prints what it found; exit 0\n" +
			"if the database is whole, 2 if it is damaged.",
		Action: func(c *cli.Context) error {
			env := envOf(c)
			if env.shared != nil {
				return usageErrorf("flowscript check: the database is held by flowscript serve; stop it, then check")
			}
			dir := env.path(dbDir(c))
			if dbMissing(c) {
				return usageErrorf("flowscript: no database at %s (nothing has run with this --db or $FLOWSCRIPT_DB yet)", dbDir(c))
			}
			w := c.App.Writer
			rep, err := flowscript.Check(c.Context, dir)
			if err != nil {
				var locked *flowscript.LockedError
				if errors.As(err, &locked) {
					return usageErrorf("flowscript check: %v", locked)
				}
				fmt.Fprintf(w, "database %s: damaged\n  %v\n", dir, cleanCorrupt(err))
				return silentExit(exitUsage)
			}
			fmt.Fprintf(w, "database %s\n", dir)
			fmt.Fprintf(w, "  tables:  %d, checksums verified\n", rep.Tables)
			fmt.Fprintf(w, "  values:  %s read, %s\n", plural(rep.Keys, "key"), plural(int(rep.ValueBytes), "byte"))
			if rep.StoreDamage != nil {
				fmt.Fprintf(w, "  damage:  %v\n", cleanCorrupt(rep.StoreDamage))
			}
			if rep.RunsUnreadable != nil {
				fmt.Fprintf(w, "  runs:    cannot be read: %v\n", cleanCorrupt(rep.RunsUnreadable))
			} else {
				fmt.Fprintf(w, "  runs:    %d, %s, %s, %s\n", rep.Runs, plural(rep.Steps, "step"), plural(rep.Events, "history event"), plural(rep.Children, "child"))
				for _, p := range rep.Problems {
					fmt.Fprintf(w, "  damage:  %s\n", p)
				}
			}
			if !rep.Whole() {
				fmt.Fprintln(w, "damaged")
				return silentExit(exitUsage)
			}
			fmt.Fprintln(w, "whole")
			return nil
		},
	}
}

// cleanCorrupt gives a store error's cause, without the advice that
// CorruptError adds for commands that refuse to open.
func cleanCorrupt(err error) error {
	var ce *flowscript.CorruptError
	if errors.As(err, &ce) && ce.Err != nil {
		return ce.Err
	}
	return err
}
