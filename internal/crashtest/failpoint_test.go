package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/internal/failpoint"
)

// A three-level tree: the root runs a step, a blocking child (which has a
// blocking child of its own), a detached child and a for_each of three
// children, then a last step after the blocking child and the fan-out.
// Every step is a task that appends "<run id>/<step> <attempt> <gen>" to
// the ledger (gen: $CRASHTEST_PROC, a number per flowscript process the
// round starts), so an execution can be told from another by run and by
// process. With $CRASHTEST_STOP set, the grandchild's step kills its
// engine (SIGKILL to $PPID), leaving the whole tree running.
var fpTreeFiles = map[string]string{
	"lib.star": `def mark(ctx):
    sh("echo " + ctx.run_id + "/" + ctx.step_id + " " + str(ctx.attempt) + " $CRASHTEST_PROC >> ledger.txt")
    if ctx.step_id == "y":
        sh("if [ -n \"$CRASHTEST_STOP\" ]; then kill -9 $PPID; sleep 1; fi")
    return {"ok": True}
`,
	"fp.star": `load("lib.star", "mark")
workflow(name = "fp")
a = task("a", mark)
k = sub_workflow("kid", id = "k", after = [a])
d = sub_workflow("det", id = "d", detach = True)
e = for_each("e", items = [0, 1, 2], workflow = "item", inputs = lambda i: {"i": i})
task("z", mark, after = [k, e])
`,
	"kid.star": `load("lib.star", "mark")
workflow(name = "kid")
x = task("x", mark)
sub_workflow("grandkid", id = "g", after = [x])
`,
	"grandkid.star": `load("lib.star", "mark")
workflow(name = "grandkid")
task("y", mark)
`,
	"det.star": `load("lib.star", "mark")
workflow(name = "det")
task("w", mark)
`,
	"item.star": `load("lib.star", "mark")
workflow(name = "item", params = {"i": 0})
task("w", mark)
`,
}

// The runs of one tree, by workflow.
var fpTreeRuns = map[string]int{"fp": 1, "kid": 1, "grandkid": 1, "det": 1, "item": 3}

// failpointPrefixes are the kinds of commit the engine makes, by the keys
// they write: run records, step states, history appends, child spawns,
// notices to a waiting parent, the active and wait markers.
var failpointPrefixes = []string{"run/", "step/", "hist/", "child/", "notice/", "active/", "wait/"}

// The commands a failpoint kills:
//   - run: the first run of the tree;
//   - rerun: `rerun ROOT --from a` of the tree that succeeded (a, the
//     blocking child and z run again: a new kid and grandkid);
//   - cancel: `cancel ROOT` of the tree left running by a kill in the
//     grandchild's step.
var failpointPhases = []string{"run", "rerun", "cancel"}

// TestFailpointKills kills the engine with SIGKILL just before and just
// after the n-th commit that writes each kind of key, during a run, a
// rerun and a cancel of the tree, resumes until a resume ends on its own,
// and checks: every run of the tree exists exactly once (no child spawned
// twice, none lost), every run ended as it should (all succeeded; the
// cancelled root and its blocking children cancelled), no step whose
// success was committed before a kill ran again after it, and
// `flowscript check` finds the database whole.
//
// make test: each point at its first hit (42 rounds). make reliability:
// FLOWSCRIPT_FAILPOINT_ROUNDS rounds (500), sweeping n = 1, 2, … for each
// phase and point until the point is no longer reached, then sweeping
// again.
func TestFailpointKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills hundreds of processes")
	}
	type combo struct{ phase, point string }
	var combos []combo
	for _, phase := range failpointPhases {
		for _, when := range []string{"before-commit:", "after-commit:"} {
			for _, prefix := range failpointPrefixes {
				combos = append(combos, combo{phase, when + prefix})
			}
		}
	}
	total := len(combos)
	long := false
	if s := os.Getenv("FLOWSCRIPT_FAILPOINT_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("FLOWSCRIPT_FAILPOINT_ROUNDS=%q is not a positive number", s)
		}
		total, long = n, true
	}
	var rounds, killed, redone, dupes, lost, reran, refinished, wrongEnd int
	var recovery time.Duration
	next := make([]int, len(combos)) // the next n of each combo
	done := make([]bool, len(combos))
	sweeps := 1
	for i := 0; rounds < total; i++ {
		c := i % len(combos)
		if c == 0 && i > 0 && !long {
			break
		}
		if done[c] {
			if all(done) {
				for j := range done {
					done[j], next[j] = false, 0
				}
				sweeps++
			}
			continue
		}
		next[c]++
		point := fmt.Sprintf("%s:%d", combos[c].point, next[c])
		r := failpointRound(t, combos[c].phase, point)
		rounds++
		if r.killed {
			killed++
		} else {
			done[c] = true // beyond the commits this command makes
		}
		if !long {
			done[c] = true
		}
		if r.redone {
			redone++
		}
		dupes += r.dupes
		lost += r.lost
		reran += r.reran
		refinished += r.refinished
		wrongEnd += r.wrongEnd
		recovery = max(recovery, r.recovery)
		if t.Failed() {
			t.Fatalf("%s %s failed", combos[c].phase, point)
		}
	}
	sec := "kill -9 at failpoints"
	figure(sec, "rounds (killed at the point; sweeps)", "%d (%d; %d)", rounds, killed, sweeps)
	figure(sec, "killed before the command took effect, redone", "%d", redone)
	figure(sec, "duplicate runs", "%d", dupes)
	figure(sec, "lost runs", "%d", lost)
	figure(sec, "runs ended otherwise than expected", "%d", wrongEnd)
	figure(sec, "finished steps run again", "%d", refinished)
	figure(sec, "unfinished steps run again (at least once)", "%d", reran)
	figure(sec, "longest recovery (resume to all ended)", "%s", recovery.Round(time.Millisecond))
}

func all(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}

type failpointResult struct {
	killed, redone                 bool
	dupes, lost, reran, refinished int
	wrongEnd                       int
	recovery                       time.Duration
}

type fpRun struct {
	ID       string `json:"id"`
	Workflow string `json:"workflow"`
	Status   string `json:"status"`
	Steps    []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"steps"`
}

func failpointRound(t *testing.T, phase, point string) failpointResult {
	t.Helper()
	what := phase + " " + point
	dir := t.TempDir()
	for name, text := range fpTreeFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "db")
	gen := 0
	cli := func(env []string, args ...string) (*exec.Cmd, []byte, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"--db", db}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("CRASHTEST_PROC=%d", gen))...)
		gen++
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("%s: flowscript %s did not end within a minute\n%s", what, strings.Join(args, " "), out.Bytes())
		}
		return cmd, out.Bytes(), err
	}
	mustRun := func(env []string, args ...string) []byte {
		t.Helper()
		_, out, err := cli(env, args...)
		if err != nil {
			t.Fatalf("%s: flowscript %s: %v\n%s", what, strings.Join(args, " "), err, out)
		}
		return out
	}
	listRuns := func() []fpRun {
		t.Helper()
		var runs []fpRun
		if err := json.Unmarshal(mustRun(nil, "runs", "--json"), &runs); err != nil {
			t.Fatalf("%s: runs --json: %v", what, err)
		}
		return runs
	}
	rootID := func() string {
		for _, r := range listRuns() {
			if r.Workflow == "fp" {
				return r.ID
			}
		}
		return ""
	}
	hasEvent := func(run, typ string) bool {
		return bytes.Contains(mustRun(nil, "history", run, "--json"), []byte(`"type": "`+typ+`"`))
	}
	// finished: the steps whose success was committed when a process died,
	// with the generation of the first process started after that
	finished := map[string]int{}
	snapshot := func() {
		t.Helper()
		after := gen
		for _, listed := range listRuns() {
			var run fpRun
			if err := json.Unmarshal(mustRun(nil, "show", listed.ID, "--json"), &run); err != nil {
				t.Fatalf("%s: show --json: %v", what, err)
			}
			for _, s := range run.Steps {
				key := run.ID + "/" + s.ID
				if _, ok := finished[key]; !ok && s.Status == "succeeded" {
					finished[key] = after
				}
			}
		}
	}
	var res failpointResult
	arm := []string{failpoint.EnvVar + "=" + point}
	var cmd *exec.Cmd
	var out []byte
	var err error
	switch phase {
	case "run":
		cmd, out, err = cli(arm, "run", "fp.star")
	case "rerun":
		mustRun(nil, "run", "fp.star")
		cmd, out, err = cli(arm, "rerun", rootID(), "--from", "a")
	case "cancel":
		c, o, _ := cli([]string{"CRASHTEST_STOP=1"}, "run", "fp.star")
		if !isKilled(c.ProcessState) {
			t.Fatalf("%s: the grandchild did not stop its engine\n%s", what, o)
		}
		snapshot()
		cmd, out, err = cli(arm, "cancel", rootID())
	}
	res.killed = isKilled(cmd.ProcessState)
	if err != nil && !res.killed {
		t.Fatalf("%s: %s: %v\n%s", what, phase, err, out)
	}
	if res.killed {
		snapshot()
		// a kill before the command's first commit: nothing was
		// acknowledged, so the command is given again
		root := rootID()
		switch {
		case phase == "run" && root == "":
			res.redone = true
			mustRun(nil, "run", "fp.star")
		case phase == "rerun" && !hasEvent(root, "rerun"):
			res.redone = true
			for _, step := range []string{"a", "k", "z"} {
				delete(finished, root+"/"+step) // run again by the rerun
			}
			mustRun(nil, "rerun", root, "--from", "a")
		case phase == "cancel" && !hasEvent(root, "cancel_requested") && !hasEvent(root, "run_ended"):
			res.redone = true
			mustRun(nil, "cancel", root)
		}
	}
	began := time.Now()
	for i := 0; ; i++ {
		c, out, err := cli(nil, "resume")
		if err == nil {
			break
		}
		if isKilled(c.ProcessState) || i == 3 {
			t.Fatalf("%s: resume: %v\n%s", what, err, out)
		}
	}
	res.recovery = time.Since(began)

	want := map[string]int{}
	for w, n := range fpTreeRuns {
		want[w] = n
	}
	if phase == "rerun" {
		want["kid"], want["grandkid"] = 2, 2
	}
	count := map[string]int{}
	var root fpRun
	for _, r := range listRuns() {
		count[r.Workflow]++
		ok := r.Status == "succeeded"
		if phase == "cancel" {
			switch r.Workflow {
			case "fp", "kid", "grandkid":
				ok = r.Status == "cancelled"
			default: // may have ended before the cancel, or been cancelled
				ok = r.Status == "succeeded" || r.Status == "cancelled"
			}
		}
		if !ok {
			res.wrongEnd++
			t.Errorf("%s: a %s run ended %s", what, r.Workflow, r.Status)
		}
		if r.Workflow == "fp" {
			root = r
		}
	}
	for w, n := range want {
		switch c := count[w]; {
		case c > n:
			res.dupes += c - n
			t.Errorf("%s: %d runs of %s, want %d", what, c, w, n)
		case c < n:
			res.lost += n - c
			t.Errorf("%s: %d runs of %s, want %d", what, c, w, n)
		}
	}
	if _, out, err := cli(nil, "check"); err != nil {
		t.Errorf("%s: check: %v\n%s", what, err, out)
	}
	// the ledger: no finished step ran in a later process; steps that ran
	// more than once were running when a process died
	ledger, err := os.ReadFile(filepath.Join(dir, "ledger.txt"))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	runsOf := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(ledger))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			t.Fatalf("%s: ledger line %q", what, sc.Text())
		}
		g, _ := strconv.Atoi(f[2])
		if after, ok := finished[f[0]]; ok && g >= after {
			res.refinished++
			t.Errorf("%s: %s ran in process %d, after its success was committed (before process %d)", what, f[0], g, after)
		}
		runsOf[f[0]]++
	}
	for _, n := range runsOf {
		if n > 1 {
			res.reran += n - 1
		}
	}
	if phase == "rerun" && root.ID != "" && runsOf[root.ID+"/a"] < 2 {
		t.Errorf("%s: the rerun did not run a again", what)
	}
	return res
}
