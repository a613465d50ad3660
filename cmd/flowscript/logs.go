package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flowscript/flowscript"
)

// followPoll is how often logs --follow and watch look for news (they
// also wake on every committed event).
const followPoll = 200 * time.Millisecond

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the logs and shell output of a run's steps",
		ArgsUsage: "RUN",
		Description: "Prints each step attempt's log: what its body logged and, for shell steps,\n" +
			"its output, stdout lines marked \"out| \" and stderr lines \"err| \", in the\n" +
			"order written. A running step's output so far is included. --follow prints\n" +
			"new output as it is written, until the run ends. --tree includes the logs of\n" +
			"every run below RUN, each line prefixed by its run and step. --step on a\n" +
			"sub_workflow step shows its child run's logs.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "step", Usage: "only the logs of step `ID` (of a sub_workflow step: its child's)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "print new output as it is written, until the run ends"},
			&cli.BoolFlag{Name: "tree", Usage: "include the logs of every run below RUN, lines prefixed by run and step"},
		},
		Action: func(c *cli.Context) error {
			id, eng, ctx, done, err := openOnRun(c, engineConfig{existing: true})
			if err != nil {
				return err
			}
			defer done()
			src, err := newLogSource(ctx, eng, id, c.String("step"), c.Bool("tree"))
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			if !c.Bool("follow") {
				logs, err := src.collect(ctx)
				if err != nil {
					return engineError(c.App.ErrWriter, err)
				}
				printLogs(c.App.Writer, logs, src.prefixed)
				return nil
			}
			envOf(c).announce(src.root)
			return followLogs(c, ctx, eng, src)
		},
	}
}

// logSource says which runs' logs a logs command shows.
type logSource struct {
	eng  *flowscript.Engine
	root string // the run whose end ends --follow
	step string // only this step of root ("" all)
	tree bool   // root's descendants too
	// prefixed: lines carry their run and step (more than one run)
	prefixed bool
}

func newLogSource(ctx context.Context, eng *flowscript.Engine, id, step string, tree bool) (*logSource, error) {
	rec, err := eng.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	src := &logSource{eng: eng, root: rec.ID, step: step, tree: tree, prefixed: tree}
	if step == "" {
		return src, nil
	}
	for _, s := range rec.Steps {
		if s.ID != step || s.Kind != "sub_workflow" {
			continue
		}
		// a sub_workflow step logs nothing itself: its child's logs
		if s.ChildRunID == nil {
			return nil, fmt.Errorf("step %q of run %s has no child run yet (it is %s)", step, rec.ID, s.Status)
		}
		src.root, src.step = *s.ChildRunID, ""
		src.prefixed = true
	}
	return src, nil
}

// runLog is one attempt's log, with the run it belongs to.
type runLog struct {
	run string
	flowscript.LiveLogEntry
}

// collect gets the logs as of now, runs in tree order.
func (s *logSource) collect(ctx context.Context) ([]runLog, error) {
	ids := []string{s.root}
	if s.tree {
		node, err := s.eng.Tree(ctx, s.root)
		if err != nil {
			return nil, err
		}
		ids = ids[:0]
		var walk func(n *flowscript.TreeNode)
		walk = func(n *flowscript.TreeNode) {
			ids = append(ids, n.Run.ID)
			for _, c := range n.Children {
				walk(c)
			}
		}
		walk(node)
	}
	var out []runLog
	for _, id := range ids {
		step := ""
		if id == s.root {
			step = s.step
		}
		logs, err := s.eng.LogsNow(ctx, id, step)
		if err != nil {
			return nil, err
		}
		for _, l := range logs {
			out = append(out, runLog{id, l})
		}
	}
	return out, nil
}

// printLogs prints whole logs: under a header per attempt, or with every
// line prefixed by run and step.
func printLogs(w io.Writer, logs []runLog, prefixed bool) {
	for _, l := range logs {
		if prefixed {
			text := l.Text
			if text != "" && !strings.HasSuffix(text, "\n") {
				text += "\n"
			}
			io.WriteString(w, prefixLines(text, logPrefix(l, true)))
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

func logPrefix(l runLog, withRun bool) string {
	step := l.Step
	if l.Attempt > 1 {
		step = fmt.Sprintf("%s#%d", l.Step, l.Attempt)
	}
	if withRun {
		return l.run + " " + step + ": "
	}
	return step + ": "
}

// prefixLines puts prefix before every line of text (whole lines).
func prefixLines(text, prefix string) string {
	if text == "" {
		return ""
	}
	lines := strings.SplitAfter(text, "\n")
	var b strings.Builder
	for _, line := range lines {
		if line != "" {
			b.WriteString(prefix)
			b.WriteString(line)
		}
	}
	return b.String()
}

// followLogs prints the logs so far, then new output as it is written,
// whole lines prefixed by step (and run), until the run ends.
func followLogs(c *cli.Context, ctx context.Context, eng *flowscript.Engine, src *logSource) error {
	w := c.App.Writer
	type key struct {
		run, step string
		attempt   int
	}
	printed := map[key]int{}
	wake, unsubscribe := wakeOnEvents(eng)
	defer unsubscribe()
	for {
		// the run's state first: output written before it ended is then
		// printed by this round's collect (and whether a process runs it
		// before that: a run leaves the engine only after its end commits)
		active := envOf(c).shared != nil && eng.IsActive(src.root)
		rec, err := eng.Get(ctx, src.root)
		if err != nil {
			return engineError(c.App.ErrWriter, err)
		}
		logs, err := src.collect(ctx)
		if err != nil {
			return engineError(c.App.ErrWriter, err)
		}
		for _, l := range logs {
			k := key{l.run, l.Step, l.Attempt}
			text := l.Text[min(printed[k], len(l.Text)):]
			if l.Running {
				// whole lines only while it runs
				text = text[:strings.LastIndexByte(text, '\n')+1]
			} else if text != "" && !strings.HasSuffix(text, "\n") {
				text += "\n"
			}
			if text == "" {
				continue
			}
			printed[k] += len(text)
			io.WriteString(w, prefixLines(text, logPrefix(l, src.prefixed)))
		}
		if rec.Status.Terminal() {
			return nil
		}
		if !active {
			fmt.Fprintf(c.App.ErrWriter, "flowscript logs: run %s is %s but no process runs it (interrupted): continue it with flowscript resume %s\n", rec.ID, rec.Status, rec.ID)
			return silentExit(exitUsage)
		}
		select {
		case <-ctx.Done():
			return interruptedExit(c, "run "+rec.ID+" stays unfinished")
		case <-wake:
		case <-time.After(followPoll):
		}
	}
}

// wakeOnEvents gives a channel that receives when the engine commits an
// event.
func wakeOnEvents(eng *flowscript.Engine) (<-chan struct{}, func()) {
	wake := make(chan struct{}, 1)
	unsubscribe := eng.Observe(func(*flowscript.RunRecord, flowscript.HistoryEvent) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	return wake, unsubscribe
}
