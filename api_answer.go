package flowscript

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// answer runs the commands an embedding program serves by default
// (ServeOptions with no Commands): show, runs, tree, history, logs, watch
// and cancel, with their --json, --status, --workflow and --step flags,
// and logs --follow (-f) and --tree.
func (e *Engine) answer(ctx context.Context, call *Call) int {
	stdout, stderr := call.Stdout, call.Stderr
	cmd, args, flags, err := parseInvocation(call.Args)
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		return 2
	}
	if !served(cmd) {
		fmt.Fprintf(stderr, "flowscript: %q is not available while this program holds the database; it answers %s\n", cmd, strings.Join(servedCommands, ", "))
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		if errors.Is(err, ErrInput) {
			return 2
		}
		return 1
	}
	asJSON := flags["json"] == "true"
	if cmd == "runs" {
		return e.answerRuns(ctx, stdout, stderr, flags)
	}
	if len(args) != 1 {
		fmt.Fprintf(stderr, "flowscript %s: name exactly one RUN\n", cmd)
		return 2
	}
	id := args[0]
	switch cmd {
	case "show":
		rec, err := e.Get(ctx, id)
		if err != nil {
			return fail(err)
		}
		if asJSON {
			writeJSON(stdout, rec)
			return 0
		}
		fmt.Fprintf(stdout, "run %s\n  workflow: %s version %d\n  status: %s\n", rec.ID, rec.Workflow, rec.Version, rec.Status)
		if rec.Error != nil {
			fmt.Fprintf(stdout, "  error: %s\n", *rec.Error)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tKIND\tSTATUS\tATTEMPT")
		for _, st := range rec.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\n", st.ID, st.Kind, st.Status, st.Attempt)
		}
		tw.Flush()
	case "tree":
		n, err := e.Tree(ctx, id)
		if err != nil {
			return fail(err)
		}
		writeTree(stdout, n, "")
	case "history":
		evs, err := e.History(ctx, id)
		if err != nil {
			return fail(err)
		}
		if asJSON {
			writeJSON(stdout, evs)
			return 0
		}
		for _, ev := range evs {
			fmt.Fprintf(stdout, "%d %s %s %s %s\n", ev.Seq, ev.Time.UTC().Format(TimeFormat), ev.Type, ev.Step, ev.Status)
		}
	case "logs":
		// as the CLI's own logs command (api_logs.go)
		scope, err := e.LogScopeOf(ctx, id, flags["step"], flags["tree"] == "true")
		if err != nil {
			return fail(err)
		}
		if flags["follow"] == "true" {
			return e.answerFollow(ctx, call, scope)
		}
		logs, err := e.ScopeLogs(ctx, scope)
		if err != nil {
			return fail(err)
		}
		WriteLogs(stdout, logs, scope.Prefixed)
	case "watch":
		return e.answerWatch(ctx, call, id)
	case "cancel":
		rec, err := e.Cancel(ctx, id)
		if errors.Is(err, ErrAlreadyEnded) {
			fmt.Fprintf(stdout, "run %s already ended\n", id)
			return 0
		}
		if err != nil {
			return fail(err)
		}
		final, err := e.Wait(ctx, rec.ID)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s %s\n", final.ID, final.Status)
	}
	return 0
}

// answerRuns lists runs newest first, as `flowscript runs`: --status,
// --workflow, --since, --limit (default 50 for the table, all with --json
// or --quiet), --quiet (ids only).
func (e *Engine) answerRuns(ctx context.Context, stdout, stderr io.Writer, flags map[string]string) int {
	quiet, asJSON := flags["quiet"] == "true", flags["json"] == "true"
	limit := 50
	if asJSON || quiet {
		limit = 0
	}
	if v, ok := flags["limit"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(stderr, "flowscript runs: --limit must be 0 (all) or more, got %s\n", v)
			return 2
		}
		limit = n
	}
	var cutoff time.Time
	if v, ok := flags["since"]; ok {
		d, err := ParseAge(v)
		if err != nil {
			fmt.Fprintf(stderr, "flowscript runs: --since %q is not a duration such as 30m, 2h or 7d\n", v)
			return 2
		}
		cutoff = time.Now().Add(-d)
	}
	all, err := e.List(ctx, ListFilter{Status: RunStatus(flags["status"]), Workflow: flags["workflow"]})
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		if errors.Is(err, ErrInput) {
			return 2
		}
		return 1
	}
	runs := make([]RunRecord, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- { // newest first
		if !all[i].CreatedAt.Before(cutoff) {
			runs = append(runs, all[i])
		}
	}
	left := 0
	if limit > 0 && len(runs) > limit {
		left, runs = len(runs)-limit, runs[:limit]
	}
	switch {
	case asJSON:
		writeJSON(stdout, runs)
	case quiet:
		for _, r := range runs {
			fmt.Fprintln(stdout, r.ID)
		}
	default:
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tWORKFLOW\tVERSION\tSTATUS")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.ID, r.Workflow, r.Version, r.Status)
		}
		tw.Flush()
		if left > 0 {
			fmt.Fprintf(stderr, "(%d older not shown; --limit 0 shows all)\n", left)
		}
	}
	return 0
}

// ParseAge reads an age as `runs --since` takes it: a Go duration
// ("90m", "2h") or a number of days ("7d", "1.5d").
func ParseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, errors.New("bad duration")
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, errors.New("bad duration")
	}
	return d, nil
}

func writeTree(w io.Writer, n *TreeNode, indent string) {
	fmt.Fprintf(w, "%s%s  %s v%d  %s\n", indent, n.Run.ID, n.Run.Workflow, n.Run.Version, n.Run.Status)
	for _, c := range n.Children {
		writeTree(w, c, indent+"  ")
	}
}

// answerWatch prints the run tree's events as lines until its root ends
// (the events committed so far first), then the tree; exit 0 if the root
// succeeded, 1 if it failed or was cancelled, as `flowscript watch`.
// The sender is told which run it follows.
func (e *Engine) answerWatch(ctx context.Context, call *Call, id string) int {
	stdout, stderr := call.Stdout, call.Stderr
	rec, err := e.Get(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		if errors.Is(err, ErrInput) {
			return 2
		}
		return 1
	}
	call.Follow(rec.ID)
	if !rec.Status.Terminal() && !e.IsActive(rec.ID) {
		fmt.Fprintf(stderr, "flowscript watch: run %s is %s but this program does not run it (interrupted): it continues when the program resumes it\n", rec.ID, rec.Status)
		return 2
	}
	sub, err := e.Subscribe(ctx, rec.ID)
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		return 1
	}
	defer sub.Close()
	for ev := range sub.Events() {
		what := ev.Type
		if ev.Step != "" {
			what += " " + ev.Step
		}
		if ev.Status != "" {
			what += " " + ev.Status
		}
		fmt.Fprintf(stdout, "%s %s  %s: %s\n", ev.Time.UTC().Format(TimeFormat), ev.Run.ID, ev.Run.Workflow, what)
	}
	if ctx.Err() != nil {
		if call.Stopping() {
			fmt.Fprintf(stderr, "flowscript: the program holding the database is stopping; run %s stays unfinished\n", rec.ID)
		}
		return 130
	}
	final, err := e.Get(context.Background(), rec.ID)
	if err != nil {
		fmt.Fprintf(stderr, "flowscript: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s %s\n", final.ID, final.Status)
	if final.Status != RunSucceeded {
		return 1
	}
	return 0
}

// answerFollow is `logs --follow`: the logs so far, then the output of
// the steps as it is written, until the scope's run ends; the sender is
// told which run it follows.
func (e *Engine) answerFollow(ctx context.Context, call *Call, scope *LogScope) int {
	call.Follow(scope.Root)
	wake := make(chan struct{}, 1)
	stop := e.Observe(func(*RunRecord, HistoryEvent) {
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	defer stop()
	tail := scope.Tail()
	for {
		// the run's state first: what it wrote before it ended is then
		// in the logs read after
		status, err := e.Status(ctx, scope.Root)
		var logs []RunLog
		if err == nil {
			logs, err = e.ScopeLogs(ctx, scope)
		}
		if err != nil {
			if ctx.Err() != nil {
				return 130
			}
			fmt.Fprintf(call.Stderr, "flowscript: %v\n", err)
			return 1
		}
		tail.Write(call.Stdout, logs)
		if status.Terminal() {
			return 0
		}
		if !e.IsActive(scope.Root) {
			fmt.Fprintf(call.Stderr, "flowscript logs: run %s is %s but this program does not run it (interrupted)\n", scope.Root, status)
			return 2
		}
		select {
		case <-ctx.Done():
			if call.Stopping() {
				fmt.Fprintf(call.Stderr, "flowscript: the program holding the database is stopping; run %s stays unfinished\n", scope.Root)
			}
			return 130
		case <-wake:
		case <-time.After(followPoll):
		}
	}
}

// followPoll is how often logs --follow looks for new output of running
// steps (it also wakes on every committed event).
const followPoll = 200 * time.Millisecond

var servedCommands = []string{"show", "runs", "tree", "history", "logs", "watch", "cancel"}

func served(cmd string) bool {
	for _, c := range servedCommands {
		if c == cmd {
			return true
		}
	}
	return false
}

// parseInvocation splits a command line into the command, its
// positional arguments and its flags (the global flags are dropped: the
// database is this engine's).
func parseInvocation(argv []string) (cmd string, args []string, flags map[string]string, err error) {
	flags = map[string]string{}
	var unknown error
	withValue := map[string]bool{"db": true, "log-level": true, "log-format": true, "step": true, "status": true, "workflow": true, "limit": true, "since": true}
	bools := map[string]bool{"json": true, "quiet": true, "follow": true, "tree": true}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			if cmd == "" {
				cmd = a
			} else {
				args = append(args, a)
			}
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "q":
			name = "quiet"
		case "f":
			name = "follow"
		}
		switch {
		case bools[name]:
			if !hasValue {
				value = "true"
			}
		case withValue[name]:
			if !hasValue {
				if i+1 >= len(argv) {
					return "", nil, nil, fmt.Errorf("flag needs an argument: --%s", name)
				}
				i++
				value = argv[i]
			}
		default:
			// said once the command is known: a command this engine does
			// not serve is refused as such, whatever its flags
			if unknown == nil {
				unknown = fmt.Errorf("unknown flag --%s", name)
			}
			continue
		}
		flags[name] = value
	}
	if cmd == "" {
		return "", nil, nil, errors.New("name a command")
	}
	if unknown != nil && served(cmd) {
		return "", nil, nil, unknown
	}
	return cmd, args, flags, nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
