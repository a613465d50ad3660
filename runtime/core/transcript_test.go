package core_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// TestTranscripts replays testdata/*.txt: each file declares a workflow
// and a sequence of events, and holds, after each event, what applying it
// printed: the steps it changed, the history it recorded, the actions it
// asked for, the run's state. FLOWSCRIPT_UPDATE=1 rewrites the files with
// what the machine prints now.
//
// The clock is fake: it starts at t0 and moves one second before each
// event, or by "tick DURATION". A fake pool of workers admits steps:
// "workers N" at the top sets its size (without it, every step starts at
// once); "free" gives the worker of a step that ended back to the pool.
// A dispatch hands a ready step the worker that a step which ended kept
// for it, as the engine's queue does, so it takes none from the pool.
//
// A file:
//
//	# comment
//	workers 1
//	workflow:
//	  a = task("a", f)
//	  task("b", f, after = [a])
//	> start
//	  changed a=running/1 b=pending/0
//	  ...
//
// Events: start; ended STEP [error=TEXT] [output=JSON]; retry-due STEP;
// dispatch STEP; spawned STEP CHILD [detached]; child-ended STEP CHILD
// STATUS [error=TEXT] [output=JSON]; end-with-child STEP [TEXT];
// cancel; timed-out; resume; rerun [reset=STEP,...] [reopen=STEP,...];
// tick DURATION; free. Views, which change
// nothing: view STEP[#ATTEMPT]; drive STEP[#ATTEMPT]; current STEP;
// run-view (view_test.go).
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			got := replay(t, string(data))
			if os.Getenv("FLOWSCRIPT_UPDATE") == "1" {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != string(data) {
				t.Errorf("%s differs from what the machine prints now (FLOWSCRIPT_UPDATE=1 rewrites it):\n%s", file, diffLines(string(data), got))
			}
		})
	}
}

// replay runs a transcript's events and returns the transcript with the
// output of each event written under it.
func replay(t *testing.T, text string) string {
	t.Helper()
	var out strings.Builder
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var src []string
	workers := -1
	i := 0
	// the header: comments, workers, the workflow
	for ; i < len(lines) && !strings.HasPrefix(lines[i], ">"); i++ {
		l := lines[i]
		out.WriteString(l + "\n")
		switch {
		case strings.HasPrefix(l, "workers "):
			fmt.Sscanf(l, "workers %d", &workers)
		case strings.HasPrefix(l, "  ") && src != nil:
			src = append(src, strings.TrimPrefix(l, "  "))
		case l == "workflow:":
			src = []string{}
		}
	}
	if src == nil {
		t.Fatal("the transcript declares no workflow")
	}
	m := core.New(declare(t, strings.Join(src, "\n")+"\n"), &core.Run{ID: "r1"})
	now := t0
	busy := 0
	m.Pooled = workers >= 0
	for ; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, ">") {
			continue // the output of the last replay: written anew below
		}
		out.WriteString(l + "\n")
		cmd := strings.TrimSpace(strings.TrimPrefix(l, ">"))
		word, rest, _ := strings.Cut(cmd, " ")
		switch word {
		case "tick":
			d, err := time.ParseDuration(rest)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			now = now.Add(d)
			out.WriteString("  now +" + now.Sub(t0).String() + "\n")
			continue
		case "free":
			busy--
			out.WriteString(fmt.Sprintf("  workers busy %d of %d\n", busy, workers))
			continue
		case "view", "drive", "current", "run-view":
			out.WriteString(printView(t, m, word, rest)) // view_test.go
			continue
		}
		now = now.Add(time.Second)
		ev := parseEvent(t, m, word, rest, now)
		// offered the free workers it may need, as the engine does
		offered := 0
		if m.Pooled {
			offered = max(min(m.Demand(ev), workers-busy), 0)
		}
		res := m.Apply(ev, core.Inputs{Free: offered})
		busy += res.Took
		out.WriteString(printResult(m, res))
		if res.Took > 0 {
			out.WriteString(fmt.Sprintf("  workers took %d of %d offered, busy %d of %d\n", res.Took, offered, busy, workers))
		}
	}
	return out.String()
}

// parseEvent reads one event line.
func parseEvent(t *testing.T, m *core.Machine, word, rest string, at time.Time) core.Event {
	t.Helper()
	args, opts := splitArgs(rest)
	attempt := func(step string) int {
		if st := m.StepState(step); st != nil {
			return st.Attempt
		}
		return 0
	}
	need := func(n int) {
		if len(args) < n {
			t.Fatalf("%s %s: want %d arguments", word, rest, n)
		}
	}
	var output any
	if o, ok := opts["output"]; ok {
		if err := json.Unmarshal([]byte(o), &output); err != nil {
			t.Fatalf("%s %s: output: %v", word, rest, err)
		}
	}
	switch word {
	case "start":
		return core.Start{At: at}
	case "ended":
		need(1)
		return core.StepEnded{Step: args[0], Attempt: attempt(args[0]), Output: output, Error: opts["error"], At: at}
	case "retry-due":
		need(1)
		return core.RetryDue{Step: args[0], Attempt: attempt(args[0]), At: at}
	case "dispatch":
		need(1)
		return core.Dispatch{Step: args[0], At: at}
	case "spawned":
		need(2)
		return core.ChildSpawned{Step: args[0], Attempt: attempt(args[0]), ChildRunID: args[1], Detached: len(args) > 2 && args[2] == "detached", At: at}
	case "child-ended":
		need(3)
		return core.ChildEnded{Step: args[0], Attempt: attempt(args[0]), ChildRunID: args[1], Status: core.RunStatus(args[2]), Output: output, Error: opts["error"], At: at}
	case "end-with-child":
		need(1)
		return core.EndWithChild{Step: args[0], Attempt: attempt(args[0]), Error: strings.Join(args[1:], " "), At: at}
	case "cancel":
		return core.Cancel{At: at}
	case "timed-out":
		return core.TimedOut{At: at}
	case "resume":
		return core.Resume{At: at}
	case "rerun":
		ev := core.Rerun{At: at}
		if v := opts["reset"]; v != "" {
			ev.Reset = strings.Split(v, ",")
		}
		if v := opts["reopen"]; v != "" {
			ev.Reopen = strings.Split(v, ",")
		}
		return ev
	}
	t.Fatalf("unknown event %q", word)
	return nil
}

// splitArgs splits "a b key=value error=free text": error= takes the
// rest of the line, any other key=value one word.
func splitArgs(s string) ([]string, map[string]string) {
	opts := map[string]string{}
	var args []string
	fields := strings.Fields(s)
	for i, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			args = append(args, f)
		case k == "error":
			opts[k] = strings.Join(append([]string{v}, fields[i+1:]...), " ")
			return args, opts
		default:
			opts[k] = v
		}
	}
	return args, opts
}

// printResult renders a result and the state it left, one fact a line.
func printResult(m *core.Machine, res core.Result) string {
	var b strings.Builder
	if len(res.Changed) > 0 {
		var parts []string
		for _, id := range res.Changed {
			st := m.StepState(id)
			s := id + "=" + string(st.Status) + "/" + itoa(st.Attempt)
			if st.Ready {
				s += " (ready)"
			}
			parts = append(parts, s)
		}
		b.WriteString("  changed " + strings.Join(parts, " ") + "\n")
	}
	for _, h := range res.History {
		s := "  history " + string(h.Type)
		for _, kv := range [][2]string{{"step", h.Step}, {"child", h.Child}, {"status", h.Status}, {"error", h.Error}, {"detail", h.Detail}} {
			if kv[1] != "" {
				s += " " + kv[0] + "=" + kv[1]
			}
		}
		if h.Attempt > 0 {
			s += " attempt=" + itoa(h.Attempt)
		}
		b.WriteString(s + "\n")
	}
	for _, a := range res.Actions {
		var s string
		switch a := a.(type) {
		case core.StartStep:
			s = fmt.Sprintf("start %s#%d", a.Step, a.Attempt)
		case core.AwaitWorker:
			s = "await-worker " + a.Step
		case core.ArmTimer:
			s = fmt.Sprintf("arm-timer %s#%d at +%s", a.Step, a.Attempt, a.At.Sub(t0))
		case core.StopStep:
			s = fmt.Sprintf("stop %s#%d", a.Step, a.Attempt)
			if a.ChildRunID != "" {
				s += fmt.Sprintf(" child=%q", a.ChildRunID)
			}
		case core.ReattachChild:
			s = fmt.Sprintf("reattach %s#%d child=%q", a.Step, a.Attempt, a.ChildRunID)
		case core.EndRun:
			s = "end-run " + string(a.Status)
		default:
			s = fmt.Sprintf("%T", a)
		}
		b.WriteString("  action " + s + "\n")
	}
	run := m.Run
	s := "  run " + string(run.Status)
	if run.Error != "" {
		s += " error=" + run.Error
	}
	if run.Status.Terminal() && run.Output != nil {
		data, _ := json.Marshal(run.Output) // map keys sorted
		s += " output=" + string(data)
	}
	b.WriteString(s + "\n")
	return b.String()
}

// diffLines shows the first lines where want and got differ.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n want %q\n got  %q", i+1, wl, gl)
		}
	}
	return ""
}
