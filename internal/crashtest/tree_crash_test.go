package crashtest

// TestCrashTree: kill -9 during a three-level run tree
//
// The workflow is a tree of nine runs: the root (crash-tree) has two
// blocking sub_workflow steps, c1 and c2, each running crash-child, which
// has three blocking sub_workflow steps, g1–g3, each running crash-leaf.
// Every run also has task and shell steps that append start/end lines to
// the ledger exactly as in TestCrashResume, naming the step by its place
// in the tree: "r/r0", "r.c1/s1", "r.c2.g3/l2". A run's place is given
// to it as params by its parent (path, or up and via for a leaf), and the
// test also derives it from the run records' parent links
// (parent_run_id, parent_step_id); the two must agree. Values flow through
// every step and every child's output into the root's output.
//
// Each round kills `run` at a random moment and resumes, sometimes
// killing the resume too, like TestCrashResume. After every process the
// test reads the whole tree: `runs --json`, then `show --json` of each
// run. It flattens the tree's steps into one snapshot keyed "path/step",
// so invariants 2–6 of TestCrashResume (checkSteps) apply unchanged to
// every task and shell step of every run: in particular a step shown
// succeeded in a snapshot never starts in a later process.
//
// What the engine promises for sub-workflows, from the code
// (runtime/spawn.go, decide.go, core/machine.go), and what is checked:
//
//   - A sub_workflow step's attempt goes up only when core starts the step
//     (its first start, a retry, a rerun). Here retries=0 and nothing is
//     rerun, and a resume does not restart a running sub_workflow step: it
//     re-attaches to its child (ReattachChild) and keeps its attempt. So
//     its attempt is 1 from its start on, across any number of kills.
//   - The step's ChildSpawned (child_run_id), the child's creation, the
//     child's own first transition, and the parent's wait key are one
//     commit; the step's running/1 transition is the commit before it,
//     most often in the same transaction (a decision too large for one is
//     cut between such commits: TestCrashBigSpawn). A resume that finds a
//     running step without a child spawns it under the id derived from
//     (parent, step, attempt), so no second child can appear.
//   - A child's end writes its notice in the same commit; the parent's
//     step ends only by applying that notice, later.
//
// Hence, in every committed state (every snapshot, not just the last):
//
//	T1 there is at most one root run: depth 1, root_run_id its own id, no
//	   parent, workflow crash-tree; every other run's parent is in the same
//	   snapshot, its depth is its parent's + 1 (2 for crash-child, 3 for
//	   crash-leaf), its root_run_id is the root's id, its parent_step_id
//	   names a sub_workflow step of its parent, and its params name the
//	   place its parent links give it.
//	T2 exactly one child run per spawning step attempt: for a sub_workflow
//	   step S of run P, the runs with (parent_run_id, parent_step_id) =
//	   (P, S) number exactly S's attempt (0 while S is pending, then 1),
//	   and the one child is S's child_run_id; or none while S is running
//	   with no child_run_id (its spawn not yet committed). (In general, with retries
//	   or reruns: at most one child per attempt, since the child's id is
//	   derived from (P, S, attempt) and its creation refuses an existing
//	   id, and exactly one for each attempt whose spawn committed; with
//	   retries=0 and no rerun every spawning attempt is attempt 1.)
//	T3 a sub_workflow step that succeeded has a succeeded child whose
//	   output is the step's output; a run that succeeded has every step
//	   succeeded; a pending run has every step pending. No run is ever
//	   failed or cancelled.
//
// and between consecutive snapshots:
//
//	T4 no run disappears or changes its workflow, parent, parent step,
//	   depth or root; a run's status only moves forward (pending, running,
//	   succeeded); a sub_workflow step moves pending/0 -> running/1 or
//	   succeeded/1, running/1 -> running/1 or succeeded/1 with the same
//	   child, and stays succeeded (allowedChildMove); task and shell steps
//	   move as in TestCrashResume (allowedMove).
//
// At the end (the snapshot after the last process, a resume that ran to
// its end): exactly the nine runs (root, 2 children, 6 grandchildren)
// exist, at their places, each with the steps of its workflow, and
// succeeded, every step succeeded (T2: each sub_workflow step with
// attempt 1 and its one child); the root's output equals the crash-free
// reference run's (and the reference's equals the value computed by
// hand); `tree --json ROOT` shows exactly the runs and parent links of
// `runs --json`; and the ledger passes checkSteps.
//
// The default run is 20 rounds (about 25 s on two cores);
// FLOWSCRIPT_RELIABILITY_ROUNDS and FLOWSCRIPT_CRASH_SEED work as for
// TestCrashResume.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// treeLib holds the step helpers the three workflows load. A task writes
// its ledger lines through sh(), a shell step directly; both name the
// step "<path>/<id>".
const treeLib = `
LEDGER = "ledger.txt"

def num(v):
    if type(v) == "string":
        return int(v.strip())
    return v

def where(ctx):
    p = ctx.params
    if "path" in p:
        return p["path"]
    return p["up"] + "." + p["via"]

def work(ctx):
    tag = where(ctx) + "/" + ctx.step_id + " " + str(ctx.attempt) + " $CRASHTEST_PROC >> " + LEDGER
    sh("echo start " + tag + "; sleep 0.0$(($$ % 3))")
    sh("echo end " + tag)
    total = num(ctx.inputs.get("x", 0)) + 1
    for v in ctx.inputs.get("xs", []):
        total += num(v)
    return {"v": total}

# where_inputs are the params that name the run's place, passed to the
# shell as INPUT_*; where_expr is the shell expression of the place
def shell_step(id, x, where_inputs, where_expr):
    tag = where_expr + "/" + id + " - $CRASHTEST_PROC >> " + LEDGER
    inputs = {"x": x}
    inputs.update(where_inputs)
    return shell(id, "echo start " + tag + "; sleep 0.0$(($$ % 3)); echo end " + tag + "; echo $((INPUT_X + 1))",
                 inputs = inputs)
`

const treeMain = `
load("lib/steps.star", "work", "shell_step")

workflow(name = "crash-tree", params = {"path": "r"})

r0 = task("r0", work, inputs = {"x": 0})
r1 = shell_step("r1", r0.output["v"], {"path": param("path")}, "$INPUT_PATH")
c1 = sub_workflow("crash-child", id = "c1", inputs = {"path": "r.c1", "x": r1.output["stdout"]})
c2 = sub_workflow("crash-child", id = "c2", inputs = {"path": "r.c2", "x": r0.output["v"]})
r2 = task("r2", work, inputs = {"xs": [c1.output["v"], c2.output["v"]]})
output(final = r2.output["v"], c1 = c1.output, c2 = c2.output)
`

const treeChild = `
load("lib/steps.star", "work", "shell_step")

workflow(name = "crash-child", params = {"path": "", "x": 0})

s0 = task("s0", work, inputs = {"x": param("x")})
s1 = shell_step("s1", s0.output["v"], {"path": param("path")}, "$INPUT_PATH")
g1 = sub_workflow("crash-leaf", id = "g1", inputs = {"up": param("path"), "via": "g1", "x": s1.output["stdout"]})
g2 = sub_workflow("crash-leaf", id = "g2", inputs = {"up": param("path"), "via": "g2", "x": s1.output["stdout"]})
g3 = sub_workflow("crash-leaf", id = "g3", inputs = {"up": param("path"), "via": "g3", "x": s0.output["v"]})
s2 = task("s2", work, inputs = {"xs": [g1.output["v"], g2.output["v"], g3.output["v"]]})
output(v = s2.output["v"], g = [g1.output, g2.output, g3.output])
`

const treeLeaf = `
load("lib/steps.star", "work", "shell_step")

workflow(name = "crash-leaf", params = {"up": "", "via": "", "x": 0})

l0 = task("l0", work, inputs = {"x": param("x")})
l1 = shell_step("l1", l0.output["v"], {"up": param("up"), "via": param("via")}, "$INPUT_UP.$INPUT_VIA")
l2 = task("l2", work, inputs = {"x": l1.output["stdout"]})
output(v = l2.output["v"], up = param("up"), via = param("via"))
`

var treeFiles = map[string]string{
	"main.star":      treeMain,
	"child.star":     treeChild,
	"leaf.star":      treeLeaf,
	"lib/steps.star": treeLib,
}

// the tree's shape: the workflow at each depth, and the steps of each
// workflow in declaration order, sub_workflow steps marked
var (
	treeWorkflowAt = map[int]string{1: "crash-tree", 2: "crash-child", 3: "crash-leaf"}
	treeSteps      = map[string][]string{
		"crash-tree":  {"r0", "r1", "c1*", "c2*", "r2"},
		"crash-child": {"s0", "s1", "g1*", "g2*", "g3*", "s2"},
		"crash-leaf":  {"l0", "l1", "l2"},
	}
	treePaths = []string{"r", "r.c1", "r.c1.g1", "r.c1.g2", "r.c1.g3", "r.c2", "r.c2.g1", "r.c2.g2", "r.c2.g3"}
)

// treeOutput is the root's output, computed by hand: r0 = 1, r1 = "2\n";
// a child with x has s0 = x+1, s1 = x+2; a leaf counts up by 3 from its
// x, so g1 and g2 (given s1) end with x+5 and g3 (given s0) with x+4; s2
// = 1 + their sum: 21 for c1 (x = "2\n"), 18 for c2 (x = 1); r2 = 1 + 21
// + 18.
func treeOutput() any {
	leaf := func(up, via string, v float64) any {
		return map[string]any{"v": v, "up": up, "via": via}
	}
	child := func(path string, x float64) any {
		g12, g3 := x+5, x+4
		return map[string]any{"v": 1 + 2*g12 + g3, "g": []any{
			leaf(path, "g1", g12), leaf(path, "g2", g12), leaf(path, "g3", g3),
		}}
	}
	return map[string]any{"final": 40.0, "c1": child("r.c1", 2), "c2": child("r.c2", 1)}
}

type treeStep struct {
	stepRecord
	Output any     `json:"output"`
	Error  *string `json:"error"`
}

type treeRun struct {
	ID           string         `json:"id"`
	Workflow     string         `json:"workflow"`
	Status       string         `json:"status"`
	Params       map[string]any `json:"params"`
	Output       any            `json:"output"`
	Error        *string        `json:"error"`
	ParentRunID  *string        `json:"parent_run_id"`
	ParentStepID *string        `json:"parent_step_id"`
	RootRunID    string         `json:"root_run_id"`
	Depth        int            `json:"depth"`
	Steps        []treeStep     `json:"steps"`

	path string // its place, from the parent links
}

// treeSnapshot is every run of the round, with its steps, as committed
// once a process was gone.
type treeSnapshot struct {
	runs   []*treeRun // in the order of runs --json
	byID   map[string]*treeRun
	byPath map[string]*treeRun
	flat   snapshot // every step, keyed "path/step"
	// problems found while placing the runs: two runs at one place, a
	// run whose parent is not there
	problems []string
}

func newTreeRound(t *testing.T, n int, rng *rand.Rand) *round {
	t.Helper()
	r := newRoundFiles(t, n, rng, treeFiles)
	r.snap = func(g *generation) {
		g.tree = r.treeSnapshot()
		g.after = g.tree.flat
	}
	r.created = func() bool { return len(r.listRuns()) > 0 }
	return r
}

func (r *round) listRuns() []*treeRun {
	t := r.t
	t.Helper()
	out := r.cli("runs", "--json")
	var runs []*treeRun
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("round %d: runs --json: %v\n%s", r.n, err, out)
	}
	return runs
}

// treeSnapshot reads every run with its steps; no process holds the
// database.
func (r *round) treeSnapshot() *treeSnapshot {
	t := r.t
	t.Helper()
	s := &treeSnapshot{byID: map[string]*treeRun{}, byPath: map[string]*treeRun{}, flat: snapshot{}}
	for _, listed := range r.listRuns() {
		out := r.cli("show", "--json", listed.ID)
		var run treeRun
		if err := json.Unmarshal(out, &run); err != nil {
			t.Fatalf("round %d: show --json %s: %v\n%s", r.n, listed.ID, err, out)
		}
		s.runs = append(s.runs, &run)
		s.byID[run.ID] = &run
	}
	var place func(run *treeRun, depth int) string
	place = func(run *treeRun, depth int) string {
		if run.path != "" {
			return run.path
		}
		switch {
		case run.ParentRunID == nil:
			run.path = "r"
		case s.byID[*run.ParentRunID] == nil || depth > len(s.runs):
			s.problems = append(s.problems, fmt.Sprintf("run %s names parent %s, which is not there", run.ID, *run.ParentRunID))
			run.path = "?" + run.ID
		default:
			run.path = place(s.byID[*run.ParentRunID], depth+1) + "." + deref(run.ParentStepID)
		}
		return run.path
	}
	for _, run := range s.runs {
		p := place(run, 0)
		if other, ok := s.byPath[p]; ok {
			s.problems = append(s.problems, fmt.Sprintf("runs %s and %s both sit at %s", other.ID, run.ID, p))
			run.path = p + "#" + run.ID
		}
		s.byPath[run.path] = run
		for _, st := range run.Steps {
			s.flat[run.path+"/"+st.ID] = st.stepRecord
		}
	}
	return s
}

// children returns the runs whose parent is (run, step).
func (s *treeSnapshot) children(run, step string) []*treeRun {
	var kids []*treeRun
	for _, k := range s.runs {
		if k.ParentRunID != nil && *k.ParentRunID == run && deref(k.ParentStepID) == step {
			kids = append(kids, k)
		}
	}
	return kids
}

// placeParams is the place a run's params name.
func placeParams(run *treeRun) string {
	if p, ok := run.Params["path"].(string); ok {
		return p
	}
	up, _ := run.Params["up"].(string)
	via, _ := run.Params["via"].(string)
	return up + "." + via
}

// checkTreeSnapshot checks T1–T3 in one committed state.
func (r *round) checkTreeSnapshot(where string, s *treeSnapshot) {
	t := r.t
	t.Helper()
	for _, p := range s.problems {
		t.Errorf("round %d, %s: %s", r.n, where, p)
	}
	if len(s.runs) > len(treePaths) {
		t.Errorf("round %d, %s: %d runs, the tree has %d", r.n, where, len(s.runs), len(treePaths))
	}
	// T1: the root, and every run's place under it
	var root *treeRun
	for _, run := range s.runs {
		if run.ParentRunID == nil {
			if root != nil {
				t.Errorf("round %d, %s: two root runs, %s and %s", r.n, where, root.ID, run.ID)
			}
			root = run
		}
	}
	for _, run := range s.runs {
		if run.ParentRunID == nil {
			if run.Depth != 1 || run.RootRunID != run.ID || run.ParentStepID != nil || run.Workflow != "crash-tree" {
				t.Errorf("round %d, %s: root run %s: depth %d, root_run_id %s, parent_step_id %q, workflow %s; want 1, itself, null, crash-tree",
					r.n, where, run.ID, run.Depth, run.RootRunID, deref(run.ParentStepID), run.Workflow)
			}
		} else if parent := s.byID[*run.ParentRunID]; parent != nil {
			if run.Depth != parent.Depth+1 {
				t.Errorf("round %d, %s: run %s (%s) has depth %d, its parent %s depth %d", r.n, where, run.ID, run.path, run.Depth, parent.ID, parent.Depth)
			}
			if root != nil && run.RootRunID != root.ID {
				t.Errorf("round %d, %s: run %s (%s) has root_run_id %s, the root is %s", r.n, where, run.ID, run.path, run.RootRunID, root.ID)
			}
			if want := treeWorkflowAt[run.Depth]; run.Workflow != want {
				t.Errorf("round %d, %s: run %s (%s) at depth %d runs %s, want %s", r.n, where, run.ID, run.path, run.Depth, run.Workflow, want)
			}
			if !hasChildStep(parent, deref(run.ParentStepID)) {
				t.Errorf("round %d, %s: run %s names parent step %s/%s, which is not a sub_workflow step", r.n, where, run.ID, parent.path, deref(run.ParentStepID))
			}
		}
		if got := placeParams(run); got != run.path && !strings.ContainsAny(run.path, "#?") {
			t.Errorf("round %d, %s: run %s sits at %s but its params say %s (%v)", r.n, where, run.ID, run.path, got, run.Params)
		}
		// T3 for the run's own status
		switch run.Status {
		case "pending", "running":
		case "succeeded":
			for _, st := range run.Steps {
				if st.Status != "succeeded" {
					t.Errorf("round %d, %s: run %s (%s) succeeded with step %s %s", r.n, where, run.ID, run.path, st.ID, st.Status)
				}
			}
		default:
			t.Errorf("round %d, %s: run %s (%s) is %s (error %s)", r.n, where, run.ID, run.path, run.Status, deref(run.Error))
		}
		if run.Status == "pending" {
			for _, st := range run.Steps {
				if st.Status != "pending" || st.Attempt != 0 {
					t.Errorf("round %d, %s: run %s (%s) is pending with step %s %s/%d", r.n, where, run.ID, run.path, st.ID, st.Status, st.Attempt)
				}
			}
		}
		// T2, T3: one child per spawning attempt
		for _, st := range run.Steps {
			if st.Kind != "sub_workflow" {
				continue
			}
			kids := s.children(run.ID, st.ID)
			var ids []string
			for _, k := range kids {
				ids = append(ids, k.ID)
			}
			switch st.Status {
			case "pending":
				if st.Attempt != 0 || st.ChildRunID != "" || len(kids) != 0 {
					t.Errorf("round %d, %s: step %s/%s is pending with attempt %d, child_run_id %q and child runs %v; want 0, none, none",
						r.n, where, run.path, st.ID, st.Attempt, st.ChildRunID, ids)
				}
			case "running", "succeeded":
				if st.Status == "running" && st.Attempt == 1 && st.ChildRunID == "" && len(kids) == 0 {
					continue // started; its spawn is the next commit
				}
				if st.Attempt != 1 || len(kids) != 1 || st.ChildRunID != kids[0].ID {
					t.Errorf("round %d, %s: step %s/%s is %s with attempt %d, child_run_id %q and child runs %v; want attempt 1 and exactly that one child",
						r.n, where, run.path, st.ID, st.Status, st.Attempt, st.ChildRunID, ids)
					continue
				}
				if kid := kids[0]; st.Status == "succeeded" && (kid.Status != "succeeded" || !reflect.DeepEqual(kid.Output, st.Output)) {
					t.Errorf("round %d, %s: step %s/%s succeeded with output %v, its child %s is %s with output %v",
						r.n, where, run.path, st.ID, st.Output, kid.ID, kid.Status, kid.Output)
				}
			default:
				t.Errorf("round %d, %s: step %s/%s is %s (error %s)", r.n, where, run.path, st.ID, st.Status, deref(st.Error))
			}
		}
	}
}

func hasChildStep(run *treeRun, step string) bool {
	for _, st := range run.Steps {
		if st.ID == step {
			return st.Kind == "sub_workflow"
		}
	}
	return false
}

// checkTreeMoves checks T4 for the runs (the steps are checkSteps').
func (r *round) checkTreeMoves(where string, prev, cur *treeSnapshot) {
	t := r.t
	t.Helper()
	rank := map[string]int{"pending": 0, "running": 1, "succeeded": 2}
	for _, was := range prev.runs {
		now := cur.byID[was.ID]
		if now == nil {
			t.Errorf("round %d, %s: run %s (%s) is gone", r.n, where, was.ID, was.path)
			continue
		}
		if now.Workflow != was.Workflow || deref(now.ParentRunID) != deref(was.ParentRunID) ||
			deref(now.ParentStepID) != deref(was.ParentStepID) || now.Depth != was.Depth || now.RootRunID != was.RootRunID {
			t.Errorf("round %d, %s: run %s changed from %s under %s/%s (depth %d, root %s) to %s under %s/%s (depth %d, root %s)",
				r.n, where, was.ID, was.Workflow, deref(was.ParentRunID), deref(was.ParentStepID), was.Depth, was.RootRunID,
				now.Workflow, deref(now.ParentRunID), deref(now.ParentStepID), now.Depth, now.RootRunID)
		}
		if rank[now.Status] < rank[was.Status] {
			t.Errorf("round %d, %s: run %s (%s) went from %s back to %s", r.n, where, was.ID, was.path, was.Status, now.Status)
		}
	}
}

// treeStats are what the kills of a round hit.
type treeStats struct {
	partial    int // kills that left a tree with some but not all runs
	reattached int // sub_workflow steps running at a kill (re-attached by the resume)
	waiting    int // ... whose child had already succeeded: its notice waited in the store
	multi      int // task and shell steps that needed more than one attempt
}

// checkTree checks the round: every snapshot (T1–T3), every move between
// them (T4), the final tree, and the ledger. The final tree is the last
// snapshot: nothing runs after the last process.
func (r *round) checkTree(want any) treeStats {
	t := r.t
	t.Helper()
	var st treeStats
	final := r.gens[len(r.gens)-1].tree
	var prev *treeSnapshot = &treeSnapshot{byID: map[string]*treeRun{}}
	for gi, g := range r.gens {
		where := fmt.Sprintf("after generation %d (%s, killed %v)", gi, g.cmd, g.killed)
		r.checkTreeSnapshot(where, g.tree)
		r.checkTreeMoves(where, prev, g.tree)
		prev = g.tree
		if !g.killed {
			continue
		}
		if n := len(g.tree.runs); n > 0 && n < len(treePaths) {
			st.partial++
		}
		for _, run := range g.tree.runs {
			for _, s := range run.Steps {
				if s.Kind == "sub_workflow" && s.Status == "running" {
					st.reattached++
					if kid := g.tree.byID[s.ChildRunID]; kid != nil && kid.Status == "succeeded" {
						st.waiting++
					}
				}
			}
		}
	}

	// the outcome: nine runs at their places, all succeeded
	if len(final.runs) != len(treePaths) {
		t.Errorf("round %d: %d runs at the end, want %d", r.n, len(final.runs), len(treePaths))
	}
	for _, p := range treePaths {
		run := final.byPath[p]
		if run == nil {
			t.Errorf("round %d: no run at %s", r.n, p)
			continue
		}
		if run.Status != "succeeded" {
			t.Errorf("round %d: run %s (%s) ended %s (error %s)", r.n, run.ID, p, run.Status, deref(run.Error))
		}
		var ids []string
		for _, s := range run.Steps {
			ids = append(ids, s.ID)
			if s.Kind == "sub_workflow" {
				ids[len(ids)-1] += "*"
			}
			if s.Status != "succeeded" || s.Attempt < 1 {
				t.Errorf("round %d: step %s/%s ended %s with attempt %d", r.n, p, s.ID, s.Status, s.Attempt)
			}
			if s.Kind != "sub_workflow" && s.Attempt > 1 {
				st.multi++
			}
		}
		if w := treeSteps[run.Workflow]; !reflect.DeepEqual(ids, w) {
			t.Errorf("round %d: run %s (%s) has steps %v, want %v", r.n, run.ID, p, ids, w)
		}
	}
	if root := final.byPath["r"]; root != nil && !reflect.DeepEqual(root.Output, want) {
		got, _ := json.Marshal(root.Output)
		exp, _ := json.Marshal(want)
		t.Errorf("round %d: root output %s, want %s (the crash-free run's)", r.n, got, exp)
	}
	r.checkTreeCommand(final)

	// the ledger, step by step, in the order of the tree
	paths := make([]string, 0, len(final.byPath))
	for p := range final.byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var order []string
	for _, p := range paths {
		for _, s := range final.byPath[p].Steps {
			order = append(order, p+"/"+s.ID)
		}
	}
	r.checkSteps(final.flat, order)
	return st
}

type treeNode struct {
	Run      treeRun     `json:"run"`
	Children []*treeNode `json:"children"`
}

// checkTreeCommand checks that `tree --json ROOT` shows the runs and links
// of runs --json: every run once, each under its parent.
func (r *round) checkTreeCommand(final *treeSnapshot) {
	t := r.t
	t.Helper()
	root := final.byPath["r"]
	if root == nil {
		return
	}
	out := r.cli("tree", "--json", root.ID)
	var top treeNode
	if err := json.Unmarshal(out, &top); err != nil {
		t.Fatalf("round %d: tree --json: %v\n%s", r.n, err, out)
	}
	seen := map[string]bool{}
	var walk func(n *treeNode, parent string, depth int)
	walk = func(n *treeNode, parent string, depth int) {
		id := n.Run.ID
		if seen[id] {
			t.Errorf("round %d: tree --json shows run %s twice", r.n, id)
			return
		}
		seen[id] = true
		run := final.byID[id]
		if run == nil {
			t.Errorf("round %d: tree --json shows run %s, which runs --json does not list", r.n, id)
			return
		}
		if deref(run.ParentRunID) != parent || n.Run.Depth != depth || n.Run.Status != run.Status {
			t.Errorf("round %d: tree --json shows run %s under %q at depth %d %s; runs --json says under %q, depth %d, %s",
				r.n, id, parent, depth, n.Run.Status, deref(run.ParentRunID), run.Depth, run.Status)
		}
		var want []string
		for _, k := range final.runs {
			if deref(k.ParentRunID) == id {
				want = append(want, k.ID)
			}
		}
		var got []string
		for _, c := range n.Children {
			got = append(got, c.Run.ID)
		}
		sort.Strings(want)
		sort.Strings(got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round %d: tree --json shows children %v under run %s, runs --json %v", r.n, got, id, want)
		}
		for _, c := range n.Children {
			walk(c, id, depth+1)
		}
	}
	walk(&top, "", 1)
	if len(seen) != len(final.runs) {
		t.Errorf("round %d: tree --json shows %d runs, runs --json %d", r.n, len(seen), len(final.runs))
	}
}

func TestCrashTree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hundreds of processes and kills them")
	}
	rounds, rng := crashSetup(t, 20)

	// the reference: one run without kills
	ref := newTreeRound(t, 0, rng)
	ref.startRun(0)
	if len(ref.gens) != 1 || ref.gens[0].killed {
		t.Fatal("the reference run did not run once to the end")
	}
	// the run process alone: reading the tree afterwards takes longer
	// than the run
	refDur := ref.gens[0].dur
	ref.checkTree(treeOutput())
	if t.Failed() {
		t.Fatalf("the reference run failed; stderr:\n%s", ref.stderr.String())
	}
	want := ref.gens[0].tree.byPath["r"].Output
	ref.cleanup()
	wantJSON, _ := json.Marshal(want)
	t.Logf("reference run: %s, output %s", refDur.Round(time.Millisecond), wantJSON)

	var kills, resumeKills, notCreated, reran, orphanEnds, silent int
	var total treeStats
	var recovery []time.Duration
	began := time.Now()
	for n := 1; n <= rounds; n++ {
		r := newTreeRound(t, n, rng)
		killed, killedResumes := r.crash(refDur)
		if killed {
			kills++
		}
		resumeKills += killedResumes
		if killed {
			recovery = append(recovery, r.gens[len(r.gens)-1].dur)
		}
		st := r.checkTree(want)
		notCreated += r.notCreated
		reran += r.reranAfterEnd
		orphanEnds += r.orphanEnds
		silent += r.silentTries
		total.partial += st.partial
		total.reattached += st.reattached
		total.waiting += st.waiting
		total.multi += st.multi
		if t.Failed() {
			var snaps strings.Builder
			for gi, g := range r.gens {
				fmt.Fprintf(&snaps, "after generation %d (%s, proc %d, killed %v): %s\n", gi, g.cmd, g.proc, g.killed, g.tree)
			}
			t.Fatalf("round %d failed; the snapshots:\n%sstderr of its processes:\n%s", n, snaps.String(), r.stderr.String())
		}
		r.cleanup()
	}
	t.Logf("%d rounds in %s: %d runs killed (%d before the root existed), %d resumes killed; "+
		"%d kills left a partly spawned tree, %d sub_workflow steps were running at a kill and re-attached "+
		"(%d of them to a child that had already succeeded, its notice waiting in the store); "+
		"%d task/shell steps needed more than one attempt; %d attempts wrote \"end\" before the kill and still ran again, "+
		"%d more wrote it from an orphaned shell; %d attempts were committed as running but killed before writing \"start\"",
		rounds, time.Since(began).Round(time.Millisecond), kills, notCreated, resumeKills,
		total.partial, total.reattached, total.waiting, total.multi, reran, orphanEnds, silent)
	crashFigures("kill -9 at random moments (9-run tree)", rounds, kills, notCreated, resumeKills, total.multi, reran, recovery)
}

// String is a one-line view of a snapshot, for failure reports.
func (s *treeSnapshot) String() string {
	var b strings.Builder
	for _, run := range s.runs {
		fmt.Fprintf(&b, "%s %s [", run.path, run.Status)
		for i, st := range run.Steps {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%s:%s/%d", st.ID, st.Status, st.Attempt)
		}
		b.WriteString("] ")
	}
	return b.String()
}
