package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/flowscript/flowscript"
	"github.com/hashicorp/go-hclog"
)

// progress prints one line per step transition on stderr. Until follow
// names the run to show, events are held back; then only that run's tree
// is shown. all shows every run (resume, serve).
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	all     bool
	root    string
	pending []observed
	// log, when set, gets each line as a structured record instead (serve
	// with --log-format json, for log collectors).
	log hclog.Logger
	// hidden maps the runs whose lines a fan-out's count replaces to the
	// "run/step" they count for ("": below such a child); fans holds the
	// counts (progress_fan.go)
	hidden map[string]string
	fans   map[string]*fanProgress
}

type observed struct {
	run flowscript.RunRecord
	ev  flowscript.HistoryEvent
}

func (p *progress) observe(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.all || (p.root != "" && run.RootRunID == p.root):
		p.print(run, ev)
	case p.root == "":
		p.pending = append(p.pending, observed{*run, ev})
	}
}

// structured makes the lines records of log.
func (p *progress) structured(log hclog.Logger) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = log
}

// mute stops the lines: another display shows the progress.
func (p *progress) mute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w = io.Discard
}

// follow shows the run tree rooted at id, with what happened before.
func (p *progress) follow(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.root = id
	for _, o := range p.pending {
		if o.run.RootRunID == id {
			p.print(&o.run, o.ev)
		}
	}
	p.pending = nil
}

func (p *progress) print(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
	if p.fanEvent(run, ev, func(parent *flowscript.RunRecord, text string) { p.emit(parent, ev, text) }) {
		return
	}
	var line string
	switch ev.Type {
	case "run_started":
		line = fmt.Sprintf("run %s: %s started", run.ID, run.Workflow)
	case "step_started":
		if ev.Attempt > 1 {
			line = fmt.Sprintf("  %s started (attempt %d)", ev.Step, ev.Attempt)
		} else {
			line = fmt.Sprintf("  %s started", ev.Step)
		}
	case "step_ended":
		line = fmt.Sprintf("  %s %s", ev.Step, ev.Status) + p.fanEnded(run, ev.Step)
		if ev.Error != "" {
			line += ": " + firstLine(ev.Error)
		}
	case "retry_scheduled":
		line = fmt.Sprintf("  %s will be retried", ev.Step)
	case "run_resumed":
		line = fmt.Sprintf("run %s: %s resumed", run.ID, run.Workflow)
	case "cancel_requested":
		line = fmt.Sprintf("run %s: cancel requested", run.ID)
		if run.TimedOut {
			line = fmt.Sprintf("run %s: %s timed out (its workflow timeout passed); stopping its steps", run.ID, run.Workflow)
		}
	case "run_ended":
		line = fmt.Sprintf("run %s: %s %s", run.ID, run.Workflow, ev.Status)
		if ev.Error != "" {
			line += ": " + firstLine(ev.Error)
		}
	default:
		return
	}
	p.emit(run, ev, line)
}

// emit writes one progress line of run.
func (p *progress) emit(run *flowscript.RunRecord, ev flowscript.HistoryEvent, line string) {
	if p.log != nil {
		args := []any{"run", run.ID, "workflow", run.Workflow, "event", ev.Type}
		if ev.Step != "" {
			args = append(args, "step", ev.Step, "attempt", ev.Attempt)
		}
		if ev.Status != "" {
			args = append(args, "status", string(ev.Status))
		}
		if ev.Error != "" {
			args = append(args, "error", ev.Error)
		}
		p.log.Info(strings.TrimSpace(line), args...)
		return
	}
	// a child's lines are indented by its depth in the tree
	fmt.Fprintf(p.w, "%s %s%s\n", ev.Time.Local().Format("15:04:05"), strings.Repeat("  ", max(run.Depth-1, 0)), line)
}

// firstLine is the line of an error that says what went wrong: its first,
// or, for an error with a call chain ("file:line:col: in function" lines
// first), the innermost position's line, after what came before the chain
// (a run error's "<step>: "); " …" marks what was left out.
func firstLine(s string) string {
	lines := strings.Split(s, "\n")
	prefix := ""
	i := 0
	for ; i < len(lines)-1; i++ {
		m := chainLineRE.FindStringSubmatch(lines[i])
		if m == nil {
			break
		}
		if i == 0 {
			prefix = m[1]
		}
	}
	line := prefix + lines[i]
	if len(lines) > 1 {
		line += " …"
	}
	return line
}

// chainLineRE matches a line of a call chain, with what precedes it.
var chainLineRE = regexp.MustCompile(`^(.*?)\S+:\d+:\d+: in \S+$`)
