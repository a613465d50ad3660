package flowscript

import (
	"context"
	"errors"

	"github.com/flowscript/flowscript/runtime"
)

// LiveLogEntry is one step attempt's log as of now; Running is set while
// the attempt still runs in this engine (its text grows).
type LiveLogEntry struct {
	LogEntry
	Running bool `json:"running"`
}

// LogsNow returns the logs of a run's step attempts as of now: those that
// ended, as Logs does, and the output so far (masked) of those that this
// engine runs now, in step order, then attempt order; a non-empty step
// narrows them to that step. Reading them writes nothing.
func (e *Engine) LogsNow(ctx context.Context, id, step string) ([]LiveLogEntry, error) {
	logs, err := e.rt.LogsNow(ctx, id, step)
	out := make([]LiveLogEntry, len(logs))
	for i, l := range logs {
		out[i] = LiveLogEntry{LogEntry: LogEntry(l.LogEntry), Running: l.Running}
	}
	return out, err
}

// IsActive reports whether this engine runs the run now. An unfinished
// run that no engine runs was interrupted and waits for a resume.
func (e *Engine) IsActive(id string) bool { return e.rt.IsActive(id) }

// ResumeTrees is Resume of only the trees that the named runs (ids or
// unique prefixes) belong to.
func (e *Engine) ResumeTrees(ctx context.Context, ids []string) ([]string, error) {
	resumed, err := e.rt.ResumeTrees(ctx, ids)
	var left *runtime.HandlersMissingError
	if errors.As(err, &left) {
		err = handlersMissingOf(left)
	}
	return resumed, err
}
