package crashtest

// TestCrashPlanner: kill -9 around a planner step.
//
// The root's planner step "plan" runs a body that appends a line to
// plans.txt, sleeps in sh() and declares one shell step per service (8),
// each sleeping briefly, then a "summary" task after all of them. Each
// round kills `run` at a random moment of a crash-free run's duration
// (before, during or after the planner step), then resumes until a resume
// runs to its end (sometimes killing the resume too). Whatever the moment
// (SPEC §4b):
//
//   - the root succeeded with the output of a crash-free run;
//   - the run has the declared steps and each planned step exactly once,
//     all succeeded;
//   - the history holds exactly one steps_planned event, by the planner
//     attempt that ended: a crash during the planner step ran the body
//     again instead of keeping half of what it declared;
//   - the body ran once per planner attempt that started, no more often
//     (a line in plans.txt per run of the body).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const plannerServices = 8

const plannerRoot = `
workflow(params = {"n": 8})
found = task("discover", lambda ctx: {"names": ["svc%d" % i for i in range(ctx.params["n"])]})

def summary(ctx):
    return {"deployed": [r["stdout"].strip() for r in ctx.inputs["all"]]}

def make_steps(ctx):
    sh("echo plan $PPID >> plans.txt; sleep 0.15")
    steps = []
    for name in ctx.inputs["names"]:
        steps.append(shell("deploy-" + name, "sleep 0.05; echo " + name))
    task("summary", summary, inputs = {"all": [s.output for s in steps]})

planner("plan", make_steps, inputs = {"names": found.output["names"]})
`

type historyEvent struct {
	Type    string `json:"type"`
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
}

func plannerWant() []any {
	var names []any
	for i := 0; i < plannerServices; i++ {
		names = append(names, fmt.Sprintf("svc%d", i))
	}
	return names
}

func TestCrashPlanner(t *testing.T) {
	rounds, rng := crashSetup(t, 4)
	files := map[string]string{"main.star": plannerRoot}

	ref := newRoundFiles(t, 0, rng, files)
	ref.snap = func(*generation) {}
	ref.exec("run", 0, "run", "main.star", "--durability", "durable")
	refDur := ref.gens[0].dur
	ref.checkPlanner(0)
	if t.Failed() {
		t.Fatalf("the crash-free run is wrong\n%s", ref.stderr.String())
	}
	t.Logf("a crash-free run takes %s", refDur.Round(time.Millisecond))

	for n := 1; n <= rounds; n++ {
		r := newRoundFiles(t, n, rng, files)
		r.snap = func(*generation) {}
		killed, resumeKills := r.crash(refDur)
		t.Logf("round %d: killed %v, resumes killed %d", n, killed, resumeKills)
		r.checkPlanner(n)
		if t.Failed() {
			t.Logf("round %d (killed %v, resumes killed %d) processes:\n%s", n, killed, resumeKills, r.stderr.String())
			return
		}
		r.cleanup()
	}
}

func (r *round) checkPlanner(n int) {
	t := r.t
	t.Helper()
	r.waitOrphans()
	id := r.findRun()
	if id == "" {
		t.Fatalf("round %d: no run", n)
	}
	var rec treeRun
	if err := json.Unmarshal(r.cli("show", "--json", id), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Status != "succeeded" {
		t.Errorf("round %d: run %s, error %q; want succeeded", n, rec.Status, deref(rec.Error))
	}
	want := map[string]any{"summary": map[string]any{"deployed": plannerWant()}}
	if !reflect.DeepEqual(rec.Output, want) {
		t.Errorf("round %d: output %v\nwant %v", n, rec.Output, want)
	}
	ids := []string{"discover", "plan"}
	for i := 0; i < plannerServices; i++ {
		ids = append(ids, fmt.Sprintf("deploy-svc%d", i))
	}
	ids = append(ids, "summary")
	var got []string
	planAttempt := 0
	for _, s := range rec.Steps {
		got = append(got, s.ID)
		if s.Status != "succeeded" {
			t.Errorf("round %d: step %s is %s", n, s.ID, s.Status)
		}
		if s.ID == "plan" {
			planAttempt = s.Attempt
		}
	}
	if !reflect.DeepEqual(got, ids) {
		t.Errorf("round %d: steps %v\nwant %v", n, got, ids)
	}
	var hist []historyEvent
	if err := json.Unmarshal(r.cli("history", "--json", id), &hist); err != nil {
		t.Fatal(err)
	}
	planned, started := 0, 0
	for _, h := range hist {
		switch {
		case h.Type == "steps_planned":
			planned++
			if h.Attempt != planAttempt {
				t.Errorf("round %d: steps_planned by attempt %d, but the planner ended at attempt %d", n, h.Attempt, planAttempt)
			}
		case h.Type == "step_started" && h.Step == "plan":
			started++
		}
	}
	if planned != 1 {
		t.Errorf("round %d: %d steps_planned events, want exactly 1", n, planned)
	}
	data, err := os.ReadFile(filepath.Join(r.dir, "plans.txt"))
	if err != nil {
		t.Fatalf("round %d: %v", n, err)
	}
	if runs := strings.Count(string(data), "plan "); runs < 1 || runs > started {
		t.Errorf("round %d: the planner body ran %d times for %d started attempts", n, runs, started)
	} else {
		t.Logf("round %d: the planner body ran %d time(s), its steps were planned by attempt %d", n, runs, planAttempt)
	}
}
