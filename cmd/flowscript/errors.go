package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"syscall"

	"github.com/flowscript/flowscript"
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

// Go's flag package words its errors with one dash and its own terms.
var (
	undefinedFlagRE = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	badValueRE      = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]+): .*$`)
	needsArgRE      = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
)

// flagErrorText says a flag parsing error in the CLI's own words.
func flagErrorText(err error) string {
	msg := err.Error()
	if m := undefinedFlagRE.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := badValueRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s %q is not a valid value", m[2], m[1])
	}
	if m := needsArgRE.FindStringSubmatch(msg); m != nil {
		return "flag needs an argument: --" + m[1]
	}
	return msg
}

func exitCode(err error, stderr io.Writer) int {
	if ownershipLost.Load() {
		// another process took the database: the lost handler ends
		// the process with exitLost once the engine is closed (its
		// error, if any, comes from that close)
		select {}
	}
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

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// forwardError says that another process holds the database: the whole
// command is sent to it.
type forwardError struct {
	dir    string
	locked *flowscript.LockedError
}

func (e *forwardError) Error() string { return e.locked.Error() }

// storeError gives store problems their exit code and a clear message.
func storeError(err error) error {
	var locked *flowscript.LockedError
	var corrupt *flowscript.CorruptError
	switch {
	case errors.As(err, &locked):
		return usageErrorf("flowscript: %v", locked)
	case errors.As(err, &corrupt):
		return usageErrorf("flowscript: %v", corrupt)
	}
	return &exitError{code: exitUsage, msg: "flowscript: " + err.Error()}
}

// engineError maps an engine error to an exit: problems with what was
// asked exit 2, script errors are printed one per line.
func engineError(w io.Writer, err error) error {
	var list *flowscript.ScriptErrors
	if errors.As(err, &list) {
		return printErrors(w, list.List)
	}
	if errors.Is(err, flowscript.ErrInput) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, flowscript.ErrCorrupt) {
		return usageErrorf("flowscript: %v", err) // a full disk, a damaged database: exit 2
	}
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitFailed, msg: "flowscript: " + err.Error()}
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errorsAs(err, &pe) {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}
