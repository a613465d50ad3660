package flowscript

import (
	"errors"
	"strings"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/store"
)

// Error values to test with errors.Is.
var (
	// ErrInput marks a problem with what was asked (params, secrets,
	// handlers, an unknown or ambiguous run id, a script that does not
	// validate) rather than a failure of the engine. The CLI exits 2 on it.
	ErrInput = runtime.ErrInput
	// ErrUnknownRun: no run has that id or id prefix (it is an ErrInput too).
	ErrUnknownRun = runtime.ErrUnknownRun
	// ErrAlreadyEnded: the run to cancel had already ended; nothing changed.
	ErrAlreadyEnded = runtime.ErrAlreadyEnded
	// ErrVersionConflict: the same workflow name and explicit version was
	// registered before with other content.
	ErrVersionConflict = runtime.ErrVersionConflict
	// ErrScript marks script errors (a ScriptErrors).
	ErrScript = errors.New("script error")
	// ErrCorrupt: the database directory is damaged or is not a
	// flowscript database (a *CorruptError); nothing was changed.
	ErrCorrupt = store.ErrCorrupt
)

// LockedError is what Open returns when another process holds the
// database. While it does, the flowscript command sends its commands to
// that process (see Engine.Serve).
type LockedError struct {
	Dir string
	// PID is the process that holds it, or 0 when it cannot be found.
	PID int
	err *store.LockedError
}

func (e *LockedError) Error() string { return e.err.Error() }

// Unwrap gives the store's error underneath.
func (e *LockedError) Unwrap() error { return e.err }

// CorruptError is what Open returns for a damaged directory, or one that
// is not a flowscript database; errors.Is(err, ErrCorrupt) holds.
type CorruptError struct {
	Dir string
	// Err is what the storage engine reported, without the advice that
	// Error adds.
	Err error
	err *store.CorruptError
}

func (e *CorruptError) Error() string { return e.err.Error() }

// Unwrap gives the store's error underneath.
func (e *CorruptError) Unwrap() error { return e.err }

// openError gives the store's errors of opening a database this
// package's types.
func openError(err error) error {
	var locked *store.LockedError
	var corrupt *store.CorruptError
	switch {
	case errors.As(err, &locked):
		return &LockedError{Dir: locked.Dir, PID: locked.PID, err: locked}
	case errors.As(err, &corrupt):
		return &CorruptError{Dir: corrupt.Dir, Err: corrupt.Err, err: corrupt}
	}
	return err
}

// ScriptError is one problem found in a script, at file:line:col.
type ScriptError struct {
	File      string
	Line, Col int
	Msg       string
	// Chain is the call chain of an error raised inside a function:
	// "file:line:col: in function" lines, outermost first. Error prints
	// them before the error's own line.
	Chain []string
}

func (e ScriptError) Error() string {
	msg := e.Msg
	if e.File != "" {
		msg = e.Pos() + ": " + e.Msg
	}
	if len(e.Chain) == 0 {
		return msg
	}
	return strings.Join(e.Chain, "\n") + "\n" + msg
}

// Pos is "file:line:col".
func (e ScriptError) Pos() string {
	return dag.Pos{File: e.File, Line: e.Line, Col: e.Col}.String()
}

// ScriptErrors is every problem found loading or validating scripts,
// sorted by file and position. Its Error prints one per line.
type ScriptErrors struct {
	List []ScriptError
	list dag.ErrorList
}

func (e *ScriptErrors) Error() string { return e.list.Error() }

// Is makes errors.Is(err, ErrScript) and errors.Is(err, ErrInput) true.
func (e *ScriptErrors) Is(target error) bool { return target == ErrScript || target == ErrInput }

// Unwrap gives the positioned errors of the script packages underneath.
func (e *ScriptErrors) Unwrap() error { return e.list }

// scriptErrorsOf gives the list, sorted (a copy: list stays as it is),
// this package's type.
func scriptErrorsOf(list dag.ErrorList) *ScriptErrors {
	list = append(dag.ErrorList(nil), list...)
	list.Sort()
	out := &ScriptErrors{list: list, List: make([]ScriptError, len(list))}
	for i, e := range list {
		out.List[i] = ScriptError{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Msg: e.Msg, Chain: e.Chain}
	}
	return out
}

// JoinScriptErrors merges the problems found by several loads into one
// ScriptErrors, sorted by file and position with exact repeats dropped
// (what `flowscript validate` prints for many files). It returns nil when
// there are none.
func JoinScriptErrors(errs ...*ScriptErrors) *ScriptErrors {
	var all dag.ErrorList
	for _, e := range errs {
		if e != nil {
			all = append(all, e.list...)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return scriptErrorsOf(all)
}

// apiError turns the errors of the packages underneath into this
// package's: script errors become *ScriptErrors; the rest keep their
// identity (ErrInput, ErrUnknownRun, ... still match).
func apiError(err error) error {
	if err == nil {
		return nil
	}
	var se *ScriptErrors
	if errors.As(err, &se) {
		return err
	}
	var list dag.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		return scriptErrorsOf(list)
	}
	return err
}

// IsInputError reports whether err is a problem with what was asked (bad
// params, missing secrets, unknown run, script errors) rather than a
// failure of the engine.
func IsInputError(err error) bool {
	var list dag.ErrorList
	return errors.Is(err, ErrInput) || errors.As(err, &list)
}

// HandlersMissingError is what Resume returns when it left runs untouched
// that use Go task handlers the engine does not have (runs started by a
// program that embeds flowscript; resume them there).
type HandlersMissingError struct {
	Runs []LeftRun
	err  *runtime.HandlersMissingError
}

// LeftRun is a run Resume left unfinished, and the handlers it lacks.
type LeftRun struct {
	ID       string
	Workflow string
	Handlers []string
}

func (e *HandlersMissingError) Error() string { return e.err.Error() }

// Is makes it an ErrInput.
func (e *HandlersMissingError) Is(target error) bool { return target == ErrInput }

func handlersMissingOf(err *runtime.HandlersMissingError) *HandlersMissingError {
	out := &HandlersMissingError{err: err, Runs: make([]LeftRun, len(err.Runs))}
	for i, r := range err.Runs {
		out.Runs[i] = LeftRun(r)
	}
	return out
}

// DidYouMean is " (did you mean \"x\"?)" for the candidate nearest to
// name (by edit distance, when near enough), else "": how the engine's
// own messages suggest a name, for a host's messages to match them.
func DidYouMean(name string, candidates []string) string { return dag.DidYouMean(name, candidates) }
