package dag

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem found in a script, at a position.
type Error struct {
	Pos Pos
	Msg string
	// Chain is the call chain of an error raised inside a function, as
	// Starlark's backtrace gives it: "file:line:col: in function" lines,
	// outermost first; Error prints them before the error's own line.
	Chain []string
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Pos.File != "" {
		msg = e.Pos.String() + ": " + e.Msg
	}
	if len(e.Chain) == 0 {
		return msg
	}
	return strings.Join(e.Chain, "\n") + "\n" + msg
}

// Errorf builds an *Error.
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Msg: sprintf(format, args...)}
}

// ErrorList is every problem found in one or more scripts. Its Error method
// prints one problem per line, sorted by path and position.
type ErrorList []*Error

// Add appends an error.
func (l *ErrorList) Add(pos Pos, format string, args ...any) {
	*l = append(*l, Errorf(pos, format, args...))
}

// Sort orders the list by path and position, then by message, and drops
// exact repeats.
func (l *ErrorList) Sort() {
	list := *l
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].Pos != list[j].Pos {
			return list[i].Pos.Less(list[j].Pos)
		}
		return list[i].Msg < list[j].Msg
	})
	out := list[:0]
	for i, e := range list {
		if i > 0 && e.Pos == list[i-1].Pos && e.Msg == list[i-1].Msg {
			continue
		}
		out = append(out, e)
	}
	*l = out
}

// Err returns the list as an error, or nil when it is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// sprintf is fmt.Sprintf, except that a format given no arguments is
// the message itself (a "%" in it stays as it is).
func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}
