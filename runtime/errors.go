package runtime

import (
	"errors"
	"fmt"

	"github.com/flowscript/flowscript/runtime/journal"
)

var (
	// ErrUnknownRun: no run has that id or id prefix.
	ErrUnknownRun = errors.New("unknown run")
	// ErrInput marks errors in what the caller asked for (params, secrets,
	// handlers, an ambiguous id): the CLI exits 2 on them.
	ErrInput = errors.New("input error")

	errEngineClosed = journal.ErrClosed
	// errRunStopped refuses the commits of a run after one of its commits
	// failed.
	errRunStopped = journal.ErrStopped
)

// InputError is a problem with what the caller asked for.
type InputError struct{ Msg string }

func (e *InputError) Error() string        { return e.Msg }
func (e *InputError) Is(target error) bool { return target == ErrInput }

func inputErrorf(format string, args ...any) error {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// UnknownRunError names the id nobody has.
type UnknownRunError struct{ ID string }

func (e *UnknownRunError) Error() string        { return fmt.Sprintf("unknown run %q", e.ID) }
func (e *UnknownRunError) Is(target error) bool { return target == ErrUnknownRun || target == ErrInput }
