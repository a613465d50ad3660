package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/muesli/termenv"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/flowscript/flowscript"
)

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "show a live view of a run tree until its root ends",
		ArgsUsage: "RUN",
		Description: "Shows RUN and every run below it with each step's status, attempt and\n" +
			"duration, and what is running now, until RUN ends. On a terminal the view is\n" +
			"redrawn in place; otherwise each change is printed as a line. Works from any\n" +
			"terminal: the process holding the database answers. Exit 0 if RUN succeeded,\n" +
			"1 if it failed or was cancelled (as run's).",
		Action: func(c *cli.Context) error {
			id, eng, ctx, done, err := openOnRun(c, engineConfig{existing: true})
			if err != nil {
				return err
			}
			defer done()
			rec, err := eng.Get(ctx, id)
			if err != nil {
				return engineError(c.App.ErrWriter, err)
			}
			env := envOf(c)
			env.announce(rec.ID)
			tty, size := env.tty, env.size
			if env.shared == nil {
				tty, size = terminalOf(c.App.Writer)
			}
			var out viewWriter = &lineView{w: c.App.Writer, seen: map[string]string{}}
			if tty {
				out = &redrawView{out: c.App.Writer, size: size}
			}
			root, err := watchTree(ctx, c, eng, rec.ID, out, tty)
			if err != nil {
				return err
			}
			return outcomeExit(root)
		},
	}
}

// watchTree shows the tree under id on out until id ends, and returns its
// record then.
func watchTree(ctx context.Context, c *cli.Context, eng *flowscript.Engine, id string, out viewWriter, tty bool) (*flowscript.RunRecord, error) {
	wake, unsubscribe := wakeOnEvents(eng)
	defer unsubscribe()
	for {
		// a run leaves the engine only after its end commits
		active := eng.IsActive(id)
		view, root, err := buildView(ctx, eng, id, func(id string) bool { return !eng.IsActive(id) })
		if err != nil {
			return nil, engineError(c.App.ErrWriter, err)
		}
		if root.Status.Terminal() {
			// the tree was read before the root's record: read it again
			// now that the root has ended, so that the last view shows
			// every child that ended before it as ended
			if view, root, err = buildView(ctx, eng, id, func(id string) bool { return !eng.IsActive(id) }); err != nil {
				return nil, engineError(c.App.ErrWriter, err)
			}
		}
		out.show(view)
		if root.Status.Terminal() {
			out.end(view)
			return root, nil
		}
		if !active {
			fmt.Fprintf(c.App.ErrWriter, "flowscript watch: run %s is %s but no process runs it (interrupted): continue it with flowscript resume %s\n", root.ID, root.Status, root.ID)
			return nil, silentExit(exitUsage)
		}
		select {
		case <-ctx.Done():
			return nil, interruptedExit(c, "run "+root.ID+" stays unfinished")
		case <-wake:
		case <-time.After(watchRefresh(tty)):
		}
	}
}

// watchRefresh: a terminal's view is redrawn often enough for durations to
// move; appended lines are printed only when something changes.
func watchRefresh(tty bool) time.Duration {
	if tty {
		return 250 * time.Millisecond
	}
	return followPoll
}

// termSize is a terminal's size; zero where unknown.
type termSize = flowscript.TermSize

// terminalOf reports whether w is a terminal, and its size.
func terminalOf(w io.Writer) (bool, termSize) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false, termSize{}
	}
	cols, rows, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return true, termSize{}
	}
	return true, termSize{Cols: cols, Rows: rows}
}

// viewLine is one line of the view: key names the run or step it shows,
// state what changes about it (not its duration), text what is shown.
type viewLine struct {
	key, state, text string
	ended            bool // a run line of a run that ended
}

type view struct {
	lines   []viewLine
	running []string // steps running now, "run-step (duration)"
}

// buildView reads the tree under id: each run, and below it its steps,
// with each sub_workflow step's children nested under it.
func buildView(ctx context.Context, eng *flowscript.Engine, id string, interrupted func(string) bool) (*view, *flowscript.RunRecord, error) {
	tree, err := eng.Tree(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	v := &view{}
	var root *flowscript.RunRecord
	now := time.Now()
	var add func(n *flowscript.TreeNode, indent string, superseded bool) error
	add = func(n *flowscript.TreeNode, indent string, superseded bool) error {
		rec, err := eng.Get(ctx, n.Run.ID)
		if err != nil {
			return err
		}
		if root == nil {
			root = rec
		}
		status := string(rec.Status)
		if !rec.Status.Terminal() && interrupted(rec.ID) {
			status += " (interrupted)"
		}
		if superseded {
			status += " (superseded)"
		}
		v.lines = append(v.lines, viewLine{
			key:   rec.ID,
			state: fmt.Sprintf("run %s %s v%d %s", rec.ID, rec.Workflow, rec.Version, status),
			ended: rec.Status.Terminal(),
			text:  fmt.Sprintf("%s%s\t%s v%d\t%s\t%s", indent, rec.ID, rec.Workflow, rec.Version, status, runDuration(rec, now)),
		})
		placed := map[string]bool{}
		many := len(n.Children) > maxListedChildren
		current := map[string]bool{} // the children the steps point at now
		for _, s := range rec.Steps {
			if s.ChildRunID != nil {
				current[*s.ChildRunID] = true
			}
		}
		for _, s := range rec.Steps {
			attempt := "-"
			if s.Attempt > 0 {
				attempt = fmt.Sprintf("attempt %d", s.Attempt)
			}
			detail := ""
			if s.Error != nil {
				detail = firstLine(*s.Error)
			}
			v.lines = append(v.lines, viewLine{
				key:   rec.ID + "/" + s.ID,
				state: strings.TrimSpace(fmt.Sprintf("%s %s: %s %s %s", rec.Workflow, s.ID, s.Status, attempt, detail)),
				text:  fmt.Sprintf("%s  %s\t%s\t%s\t%s\t%s\t%s", indent, s.ID, s.Kind, s.Status, attempt, stepDuration(s.StartedAt, s.EndedAt, now), detail),
			})
			if s.Status == "running" && s.Kind != "sub_workflow" {
				v.running = append(v.running, fmt.Sprintf("%s/%s (%s)", rec.Workflow, s.ID, stepDuration(s.StartedAt, nil, now)))
			}
			if many {
				continue // summed up below
			}
			for _, kid := range n.Children {
				if kid.Run.ParentStepID != nil && *kid.Run.ParentStepID == s.ID {
					placed[kid.Run.ID] = true
					if err := add(kid, indent+"    ", s.ChildRunID == nil || *s.ChildRunID != kid.Run.ID); err != nil {
						return err
					}
				}
			}
		}
		if many {
			// a fan-out: a bar and counts, and only the children that did
			// not succeed
			v.lines = append(v.lines, fanOutLine(rec.ID, indent+"  ", n.Children))
			shown := 0
			for _, kid := range n.Children {
				if kid.Run.Status == "succeeded" || shown == maxListedChildren {
					continue
				}
				shown++
				if err := add(kid, indent+"    ", !current[kid.Run.ID]); err != nil {
					return err
				}
			}
			return nil
		}
		for _, kid := range n.Children {
			if !placed[kid.Run.ID] {
				if err := add(kid, indent+"    ", false); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := add(tree, "", false); err != nil {
		return nil, nil, err
	}
	return v, root, nil
}

// maxListedChildren is how many child runs of one run the view lists; a
// run with more gets a bar and counts instead, and only the children that
// did not succeed are listed (as many).
const maxListedChildren = 8

// fanOutLine sums up the child runs of one run: a bar of how many ended,
// and the count of each status.
func fanOutLine(key, indent string, kids []*flowscript.TreeNode) viewLine {
	counts := map[string]int{}
	ended := 0
	for _, k := range kids {
		counts[string(k.Run.Status)]++
		if k.Run.Status.Terminal() {
			ended++
		}
	}
	var parts []string
	for _, st := range []string{"pending", "running", "succeeded", "failed", "cancelled"} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	const width = 20
	filled := ended * width / len(kids)
	bar := "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
	summary := fmt.Sprintf("%s: %s", plural(len(kids), "child run"), strings.Join(parts, ", "))
	return viewLine{
		key:   key + "/children",
		state: summary,
		text:  fmt.Sprintf("%s%s %d/%d ended\t%s", indent, bar, ended, len(kids), summary),
	}
}

// runDuration is how long a run has taken: since its last rerun when it
// was rerun (the time between is not its work).
func runDuration(r *flowscript.RunRecord, now time.Time) string {
	start := r.StartedAt
	if r.RerunAt != nil {
		start = r.RerunAt
	}
	d := stepDuration(start, r.EndedAt, now)
	if r.RerunAt != nil && d != "-" {
		d += " since rerun"
	}
	return d
}

func stepDuration(start, end *time.Time, now time.Time) string {
	if start == nil {
		return "-"
	}
	e := now
	if end != nil {
		e = *end
	}
	d := e.Sub(*start)
	if end == nil {
		return d.Round(100*time.Millisecond).String() + "…"
	}
	return d.Round(time.Millisecond).String()
}

// format aligns the view's columns.
func (v *view) format() []string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, l := range v.lines {
		fmt.Fprintln(tw, l.text)
	}
	tw.Flush()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(v.running) > 0 {
		lines = append(lines, "running now: "+strings.Join(v.running, ", "))
	}
	return lines
}

type viewWriter interface {
	show(v *view)
	end(v *view)
}

// redrawView redraws the whole view in place on a terminal.
type redrawView struct {
	out   io.Writer
	size  termSize
	drawn int // lines of the last frame
}

func (r *redrawView) show(v *view) {
	var b bytes.Buffer
	o := termenv.NewOutput(&b)
	if r.drawn > 0 {
		// to the start of the last frame, clearing it
		o.ClearLines(r.drawn)
		o.ClearLine()
	}
	lines := v.format()
	if r.size.Rows > 2 && len(lines) >= r.size.Rows {
		// a frame taller than the screen cannot be redrawn in place
		n := len(lines) - (r.size.Rows - 2)
		lines = append(lines[:r.size.Rows-2], fmt.Sprintf("… %s more (flowscript tree shows them all)", plural(n, "line")))
	}
	for _, l := range lines {
		if r.size.Cols > 0 && len([]rune(l)) >= r.size.Cols {
			l = string([]rune(l)[:r.size.Cols-1]) // a wrapped line would break the redraw
		}
		b.WriteString(l + "\n")
	}
	r.drawn = len(lines)
	r.out.Write(b.Bytes())
}

func (r *redrawView) end(*view) {}

// lineView prints, when stdout is not a terminal, a line for each run or
// step whose state changed, then the whole tree at the end.
type lineView struct {
	w    io.Writer
	seen map[string]string
}

func (l *lineView) show(v *view) {
	stamp := time.Now().Format("15:04:05")
	var ended []string // after the steps, innermost run first
	for _, line := range v.lines {
		if l.seen[line.key] == line.state {
			continue
		}
		l.seen[line.key] = line.state
		if line.ended {
			ended = append([]string{line.state}, ended...)
			continue
		}
		fmt.Fprintf(l.w, "%s %s\n", stamp, line.state)
	}
	for _, state := range ended {
		fmt.Fprintf(l.w, "%s %s\n", stamp, state)
	}
}

func (l *lineView) end(v *view) {
	fmt.Fprintln(l.w, "--")
	for _, line := range v.format() {
		fmt.Fprintln(l.w, line)
	}
}
