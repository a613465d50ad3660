package flowscript

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// This file: what `flowscript logs` shows, in one place for the CLI's
// own command and for the answers of an engine that serves the CLI
// (Engine.Serve), so that both print the same bytes.

// LogScope is what `flowscript logs RUN [--step S] [--tree]` shows: the
// logs of a run's steps (or of one step), and with Tree those of every
// run below it. A sub_workflow step logs nothing itself: asking for it
// shows its child run's logs (and, with Tree, its child's tree).
type LogScope struct {
	// Root is the run shown, whose end also ends a follow: the run asked
	// for, or the child of the sub_workflow step asked for.
	Root string
	// Step narrows Root's own logs to one step ("": every step).
	Step string
	// Tree includes the logs of every run below Root.
	Tree bool
	// Prefixed says lines carry their run and step, as more than one
	// run's logs may show.
	Prefixed bool
}

// RunLog is one step attempt's log as of now, with the run it belongs
// to.
type RunLog struct {
	RunID string `json:"run_id"`
	LiveLogEntry
}

// LogScopeOf resolves what `flowscript logs id --step step [--tree]`
// shows. A sub_workflow step that has no child yet is an error saying
// so.
func (e *Engine) LogScopeOf(ctx context.Context, id, step string, tree bool) (*LogScope, error) {
	rec, err := e.declared(ctx, id) // the sub_workflow steps are declared ones
	if err != nil {
		return nil, err
	}
	s := &LogScope{Root: rec.ID, Step: step, Tree: tree, Prefixed: tree}
	if step == "" {
		return s, nil
	}
	for _, st := range rec.Steps {
		if st.ID != step || st.Kind != "sub_workflow" {
			continue
		}
		if st.ChildRunID == nil {
			return nil, fmt.Errorf("step %q of run %s has no child run yet (it is %s)", step, rec.ID, st.Status)
		}
		s.Root, s.Step, s.Prefixed = *st.ChildRunID, "", true
	}
	return s, nil
}

// ScopeLogs returns the scope's logs as of now (LogsNow), runs in tree
// order: a run before the runs below it, children in creation order.
func (e *Engine) ScopeLogs(ctx context.Context, s *LogScope) ([]RunLog, error) {
	ids := []string{s.Root}
	if s.Tree {
		node, err := e.Tree(ctx, s.Root)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		node.Walk(func(n *TreeNode, _ int) error {
			ids = append(ids, n.Run.ID)
			return nil
		})
	}
	var out []RunLog
	for _, id := range ids {
		step := ""
		if id == s.Root {
			step = s.Step
		}
		logs, err := e.LogsNow(ctx, id, step)
		if err != nil {
			return nil, err
		}
		for _, l := range logs {
			out = append(out, RunLog{id, l})
		}
	}
	return out, nil
}

// WriteLogs writes whole logs as `flowscript logs` prints them: each
// attempt under a header, or, prefixed, every line after its run and
// step.
func WriteLogs(w io.Writer, logs []RunLog, prefixed bool) {
	for _, l := range logs {
		if prefixed {
			text := l.Text
			if text != "" && !strings.HasSuffix(text, "\n") {
				text += "\n"
			}
			io.WriteString(w, prefixLines(text, l.linePrefix(true)))
			continue
		}
		state := ""
		if l.Running {
			state = ", running"
		}
		fmt.Fprintf(w, "== %s (attempt %d%s) ==\n%s", l.Step, l.Attempt, state, l.Text)
		if !strings.HasSuffix(l.Text, "\n") {
			fmt.Fprintln(w)
		}
	}
}

// LogTail writes, round after round, what a scope's logs gained since
// the round before, as `flowscript logs --follow` prints it: whole lines
// only while a step runs, each after its step (and run, when prefixed).
type LogTail struct {
	prefixed bool
	printed  map[logAttempt]int
}

type logAttempt struct {
	run, step string
	attempt   int
}

// Tail starts following the scope's logs.
func (s *LogScope) Tail() *LogTail {
	return &LogTail{prefixed: s.Prefixed, printed: map[logAttempt]int{}}
}

// Write writes what logs (read after the round before) hold that it has
// not written yet.
func (t *LogTail) Write(w io.Writer, logs []RunLog) {
	for _, l := range logs {
		k := logAttempt{l.RunID, l.Step, l.Attempt}
		text := l.Text[min(t.printed[k], len(l.Text)):]
		if l.Running {
			// whole lines only while it runs
			text = text[:strings.LastIndexByte(text, '\n')+1]
		} else if text != "" && !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		if text == "" {
			continue
		}
		t.printed[k] += len(text)
		io.WriteString(w, prefixLines(text, l.linePrefix(t.prefixed)))
	}
}

// linePrefix is what goes before each line: the step (with its attempt
// past the first), after the run when withRun.
func (l RunLog) linePrefix(withRun bool) string {
	step := l.Step
	if l.Attempt > 1 {
		step = fmt.Sprintf("%s#%d", l.Step, l.Attempt)
	}
	if withRun {
		return l.RunID + " " + step + ": "
	}
	return step + ": "
}

// prefixLines puts prefix before every line of text (whole lines).
func prefixLines(text, prefix string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		if line != "" {
			b.WriteString(prefix)
			b.WriteString(line)
		}
	}
	return b.String()
}
