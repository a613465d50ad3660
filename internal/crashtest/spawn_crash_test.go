package crashtest

// TestCrashBigSpawn: kill -9 in the middle of a 2,000-child spawn
//
// The parent (big-spawn) runs one task, "first", which appends a line to
// the ledger, and then 2,000 sub_workflow steps c0..c1999, all ready at
// once when first ends; each runs big-leaf, one task doubling its param.
// One decision starts the 2,000 steps and spawns their children. That is
// far more than one Badger transaction holds, so it commits in several:
// the decision's own transition (first ended, the 2,000 steps running),
// then the children, each created in one commit with its parent step's
// ChildSpawned, packed by the store's limits (SPEC §8).
//
// Each round kills `run` at a random moment after first's ledger line
// appears (the spawn begins then) and before the spawn ends, as the
// reference run measured it (the child c0 writes a line when it runs, and
// no child runs before the whole spawn is committed), then resumes, in half of the rounds killing the first
// resume too. After every process the test reads every run and the
// parent's steps, and checks, in every committed state:
//
//	B1 one root run, big-spawn; every other run is its child, at a
//	   sub_workflow step of it.
//	B2 exactly one child per spawning attempt: a step's attempt is 0 or 1;
//	   a step with a child_run_id has exactly that one child; a pending
//	   step, and a running step whose spawn has not committed (no
//	   child_run_id: a kill between the transactions of the decision), has
//	   none.
//
// and between consecutive states:
//
//	B3 no child disappears; a step's child, once set, never changes; a
//	   run that succeeded stays succeeded with the same output.
//	B4 a finished step is not run again: once a state shows first
//	   succeeded, the ledger gains no line for it.
//
// At the end: the parent succeeded with 2,000 steps, each with its own
// child that succeeded with twice the step's index; exactly 2,000 children
// exist. The test logs how many kills fell between the transactions of
// the spawn; it asserts nothing about timing.
//
// The default is 3 rounds; FLOWSCRIPT_HEAVY_ROUNDS (make reliability: 50),
// else FLOWSCRIPT_RELIABILITY_ROUNDS, and
// FLOWSCRIPT_CRASH_SEED work as for TestCrashResume.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const bigSpawnChildren = 2000

var bigSpawnFiles = map[string]string{
	"main.star": fmt.Sprintf(`
workflow(name = "big-spawn")

def first(ctx):
    sh("echo first $CRASHTEST_PROC >> ledger.txt")
    return None

task("first", first)
for i in range(%d):
    sub_workflow("big-leaf", id = "c%%d" %% i, inputs = {"n": i}, after = ["first"])
`, bigSpawnChildren),
	"leaf.star": `
workflow(name = "big-leaf", params = {"n": 0})

def double(ctx):
    if ctx.params["n"] == 0:
        # no child runs before the whole spawn is committed: this line
        # tells the test when the spawn ended
        sh("echo leaf0 $CRASHTEST_PROC >> ledger.txt")
    return {"v": ctx.params["n"] * 2}

task("double", double)
`,
}

// spawnState is what the database held once a process was gone.
type spawnState struct {
	parent   *treeRun
	children map[string]*treeRun // by id
	byStep   map[string][]string // parent step -> child ids
	firsts   int                 // ledger lines of first
	partial  bool                // steps running without their child
	spawned  int                 // steps with a child
}

func TestCrashBigSpawn(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; not in -short")
	}
	rounds, rng := crashSetup(t, 3, "FLOWSCRIPT_HEAVY_ROUNDS")

	// the reference: how long the spawn takes once first has written its
	// line
	ref := newRoundFiles(t, 0, rng, bigSpawnFiles)
	firstAt, spawnEnd := ref.runKilledAfterFirst(0)
	spawn := spawnEnd - firstAt
	ref.checkSpawnFinal(ref.checkedState(nil))
	ref.cleanup()
	t.Logf("reference: first's line after %s, the spawn took %s", firstAt.Round(time.Millisecond), spawn.Round(time.Millisecond))

	partial := 0
	for n := 1; n <= rounds; n++ {
		r := newRoundFiles(t, n, rng, bigSpawnFiles)
		var states []*spawnState
		// mostly in the spawn's later part, where its commits are
		delay := spawn/5 + time.Duration(rng.Int64N(int64(spawn)+1))
		r.runKilledAfterFirst(delay)
		states = append(states, r.checkedState(states))
		if states[len(states)-1].partial {
			partial++
		}
		if rng.IntN(2) == 0 {
			if r.exec("resume", firstAt+time.Duration(rng.Int64N(int64(spawn)+1)), "resume", "--durability", "durable") {
				states = append(states, r.checkedState(states))
				if states[len(states)-1].partial {
					partial++
				}
			}
		}
		if r.exec("resume", 0, "resume", "--durability", "durable") {
			t.Fatalf("round %d: the last resume was killed", n)
		}
		last := r.checkedState(states)
		r.checkSpawnFinal(last)
		if t.Failed() {
			t.Logf("round %d processes:\n%s", n, r.stderr.String())
			return
		}
		r.cleanup()
	}
	t.Logf("%d of the kills left a spawn cut between its transactions (steps running without their child)", partial)
}

// runKilledAfterFirst runs the workflow; with kill > 0 it is killed with
// SIGKILL that long after first's ledger line appears, with 0 it runs to
// its end. It returns how long after the process's start first's line
// appeared, and c0's (when it ran to its end).
func (r *round) runKilledAfterFirst(kill time.Duration) (firstAt, leafAt time.Duration) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := r.command(ctx, "run", "main.star", "--durability", "durable")
	r.procs++
	cmd.Env = append(cmd.Env, fmt.Sprintf("CRASHTEST_PROC=%d", r.procs))
	cmd.Stderr = &r.stderr
	fmt.Fprintf(&r.stderr, "--- round %d: flowscript run main.star (kill %s after first)\n", r.n, kill)
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gen := &generation{cmd: "run", proc: r.procs}
	r.gens = append(r.gens, gen)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if n := r.ledgerLength(); leafAt == 0 && n > 1 {
				leafAt = time.Since(began)
			}
			if firstAt == 0 && r.ledgerLength() > 0 {
				firstAt = time.Since(began)
				if kill > 0 {
					time.Sleep(kill)
					if kerr := cmd.Process.Kill(); kerr != nil {
						t.Logf("kill: %v", kerr)
					}
					err = <-done
					gen.killed = isKilled(cmd.ProcessState)
					break wait
				}
			}
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("round %d: flowscript run did not end within 3 minutes\n%s", r.n, r.stderr.String())
	}
	if !gen.killed && err != nil {
		t.Fatalf("round %d: flowscript run: %v\n%s", r.n, err, r.stderr.String())
	}
	if firstAt == 0 || leafAt == 0 && kill == 0 {
		t.Fatalf("round %d: the ledger lacks first's or c0's line", r.n)
	}
	fmt.Fprintf(&r.stderr, "--- killed %v\n", gen.killed)
	return firstAt, leafAt
}

// spawnState reads every run, the parent's steps and the ledger.
func (r *round) spawnState() *spawnState {
	t := r.t
	t.Helper()
	var runs []*treeRun
	out := r.cli("runs", "--json")
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("runs --json: %v\n%.500s", err, out)
	}
	s := &spawnState{children: map[string]*treeRun{}, byStep: map[string][]string{}}
	for _, run := range runs {
		if run.ParentRunID == nil {
			if s.parent != nil {
				t.Errorf("round %d: B1: two root runs, %s and %s", r.n, s.parent.ID, run.ID)
			}
			s.parent = run
			continue
		}
		s.children[run.ID] = run
	}
	if s.parent == nil {
		if len(runs) > 0 {
			t.Errorf("round %d: B1: %d runs and no root", r.n, len(runs))
		}
		return s
	}
	if s.parent.Workflow != "big-spawn" {
		t.Errorf("round %d: B1: the root runs %s", r.n, s.parent.Workflow)
	}
	out = r.cli("show", "--json", s.parent.ID)
	if err := json.Unmarshal(out, s.parent); err != nil {
		t.Fatalf("show --json: %v\n%.500s", err, out)
	}
	for _, c := range s.children {
		if *c.ParentRunID != s.parent.ID || !hasChildStep(s.parent, deref(c.ParentStepID)) {
			t.Errorf("round %d: B1: run %s hangs under %s/%s, not under a sub_workflow step of the root %s", r.n, c.ID, *c.ParentRunID, deref(c.ParentStepID), s.parent.ID)
			continue
		}
		step := deref(c.ParentStepID)
		s.byStep[step] = append(s.byStep[step], c.ID)
	}
	data, _ := os.ReadFile(filepath.Join(r.dir, "ledger.txt"))
	s.firsts = strings.Count(string(data), "first ")
	return s
}

// checkedState reads the state and checks B1–B4 against the states
// before it.
func (r *round) checkedState(before []*spawnState) *spawnState {
	t := r.t
	t.Helper()
	r.waitOrphans()
	s := r.spawnState()
	if s.parent == nil {
		return s
	}
	// B2
	for _, st := range s.parent.Steps {
		if st.Kind != "sub_workflow" {
			continue
		}
		kids := s.byStep[st.ID]
		if st.Attempt > 1 {
			t.Errorf("round %d: B2: step %s has attempt %d", r.n, st.ID, st.Attempt)
		}
		switch {
		case st.ChildRunID != "":
			s.spawned++
			if len(kids) != 1 || kids[0] != st.ChildRunID {
				t.Errorf("round %d: B2: step %s (%s/%d) has child %s; the runs under it are %v", r.n, st.ID, st.Status, st.Attempt, st.ChildRunID, kids)
			}
		case st.Status == "pending" || st.Status == "running":
			if st.Status == "running" {
				s.partial = true
			}
			if len(kids) != 0 {
				t.Errorf("round %d: B2: step %s is %s/%d with no child_run_id, yet runs %v hang under it", r.n, st.ID, st.Status, st.Attempt, kids)
			}
		default:
			t.Errorf("round %d: B2: step %s is %s without a child (error %s)", r.n, st.ID, st.Status, deref(st.Error))
		}
	}
	if len(before) == 0 {
		return s
	}
	// B3, B4
	prev := before[len(before)-1]
	for id, was := range prev.children {
		now := s.children[id]
		if now == nil {
			t.Errorf("round %d: B3: child %s (%s) is gone", r.n, id, deref(was.ParentStepID))
			continue
		}
		if was.Status == "succeeded" && (now.Status != "succeeded" || !reflect.DeepEqual(now.Output, was.Output)) {
			t.Errorf("round %d: B3: child %s went from succeeded (%v) to %s (%v)", r.n, id, was.Output, now.Status, now.Output)
		}
	}
	if prev.parent != nil {
		prevSteps := map[string]treeStep{}
		for _, st := range prev.parent.Steps {
			prevSteps[st.ID] = st
		}
		for _, st := range s.parent.Steps {
			if was := prevSteps[st.ID]; was.ChildRunID != "" && st.ChildRunID != was.ChildRunID {
				t.Errorf("round %d: B3: step %s changed its child from %s to %s", r.n, st.ID, was.ChildRunID, st.ChildRunID)
			}
		}
		for _, b := range before {
			if b.parent != nil && stepStatus(b.parent, "first") == "succeeded" && s.firsts > b.firsts {
				t.Errorf("round %d: B4: first had succeeded, and ran again (%d ledger lines, %d then)", r.n, s.firsts, b.firsts)
				break
			}
		}
	}
	return s
}

func stepStatus(run *treeRun, id string) string {
	for _, st := range run.Steps {
		if st.ID == id {
			return st.Status
		}
	}
	return ""
}

// checkSpawnFinal checks the end: everything succeeded, one child per
// step, each with its step's doubled index.
func (r *round) checkSpawnFinal(s *spawnState) {
	t := r.t
	t.Helper()
	if s.parent == nil || s.parent.Status != "succeeded" {
		t.Fatalf("round %d: the parent did not succeed: %+v", r.n, s.parent)
	}
	if len(s.children) != bigSpawnChildren || s.spawned != bigSpawnChildren {
		t.Errorf("round %d: %d children in the store, %d steps with a child; want %d of each", r.n, len(s.children), s.spawned, bigSpawnChildren)
	}
	for i, st := range s.parent.Steps {
		if st.ID == "first" {
			continue
		}
		if st.Status != "succeeded" || st.Attempt != 1 {
			t.Errorf("round %d: step %s is %s/%d", r.n, st.ID, st.Status, st.Attempt)
			continue
		}
		kid := s.children[st.ChildRunID]
		if kid == nil || kid.Status != "succeeded" {
			t.Errorf("round %d: step %s: child %s is %+v", r.n, st.ID, st.ChildRunID, kid)
			continue
		}
		var n int
		fmt.Sscanf(st.ID, "c%d", &n)
		want := map[string]any{"double": map[string]any{"v": float64(2 * n)}}
		if !reflect.DeepEqual(st.Output, want) {
			t.Errorf("round %d: step %s (#%d) output %v; want %v", r.n, st.ID, i, st.Output, want)
		}
	}
	if s.firsts < 1 {
		t.Errorf("round %d: first never wrote its line", r.n)
	}
}
