// Package crashtest proves that runs survive kill -9: it builds the
// flowscript CLI, runs a workflow of shell and Starlark steps in a real
// subprocess on a real Badger database, kills the process with SIGKILL at a
// random moment (sometimes the resuming process too), resumes, and checks
// the run record and a ledger the steps append to.
//
// It touches nothing but the CLI binary, the temporary directories it
// makes and the processes it starts (and their orphaned shell steps).
//
// The test runs 30 rounds by default (about 20 s on two cores);
// FLOWSCRIPT_RELIABILITY_ROUNDS=N runs N (make reliability: 200), and
// FLOWSCRIPT_CRASH_SEED=S replays the random choices of an earlier run
// (the seed is logged). -short skips it.
//
// TestCrashTree (tree_crash_test.go) does the same to a three-level tree
// of sub-workflow runs, with the checks below applied to every run of the
// tree and the tree's own invariants on top.
package crashtest

// What the test can prove, and checks
//
// Every step appends "start <id> <attempt> <proc>" to ledger.txt before its
// work and "end <id> <attempt> <proc>" after it (a shell step cannot see its
// attempt and writes "-"); <proc> is $CRASHTEST_PROC, which the test sets
// differently in the environment of each flowscript process it starts and
// which the step's shell inherits (even when the flowscript process died
// while starting it: $PPID would then be 1). It names the "generation"
// that ran the attempt (the first `run`, then each `resume`). With
// retries=0 a process runs a step at most once, so (step, generation) names
// an attempt. Shell steps run in their own process group and outlive a
// killed flowscript, so an old attempt may still write while the resumed
// one runs; the tags keep that apart, and the ledger is read only once no
// process of the round is left.
// After every killed generation the test reads the run record from the
// database (`show --json`), before anything resumes it: that snapshot is
// exactly what was committed when the process died.
//
// The engine promises: a step attempt starts only after its "running"
// transition (with the attempt number) is committed; a step whose
// completion is committed never runs again; a step that was running when
// the process died runs again as attempt+1. It cannot promise more: a step
// may write its "end" line and be killed before its completion commits;
// that step rightly runs again (at least once). So "start lines = final
// attempt" is NOT an invariant (a step can be committed running and killed
// before its body wrote "start": the attempt number is used up, no line
// exists), and "no start after an end" is not one either. Instead:
//
//  1. The run succeeds, every step is succeeded with attempt >= 1, and the
//     run's output equals that of a crash-free reference run.
//  2. Per step and generation: at most one start and one end, the end
//     after the start.
//  3. A start in generation g means the snapshot after g shows the step
//     running or succeeded, with the attempt the body saw (tasks): the
//     running transition was committed before the body ran.
//  4. A step succeeded in the snapshot after generation g has no start in
//     any later generation: a finished step never runs again.
//  5. Between consecutive snapshots a step moves only like this:
//     pending/0 -> pending/0, running/1, succeeded/1;
//     running/k -> running/k (the resume's own transition did not commit),
//     running/k+1, succeeded/k+1 (never succeeded/k: attempt k died with
//     its process); succeeded/k -> succeeded/k.
//  6. Every step has an end line in the generation of its last start, with
//     the final attempt (tasks); the number of generations in which it
//     started is at most its final attempt.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the flowscript CLI built by TestMain.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "crashtest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := buildCLI(dir); err != nil {
			fmt.Fprintln(os.Stderr, "crashtest:", err)
			return 1
		}
		code := m.Run()
		printFigures()
		return code
	}()
	os.Exit(code)
}

// buildCLI builds ./cmd/flowscript of this module into dir.
func buildCLI(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("not inside the flowscript module")
	}
	binary = filepath.Join(dir, "flowscript")
	cmd := exec.Command("go", "build", "-o", binary, "./cmd/flowscript")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/flowscript: %v\n%s", err, out)
	}
	return nil
}

// mainStar is the workflow: 55 steps. Chain A (11 steps, task and shell
// alternating), a fan-out of 24 steps after it and a join (fan-in) over
// all of them, chain B (10) after the join, chain C (8) on its own from
// the start, and a final step after B and C. Values flow through inputs,
// so the output proves that every step saw its upstream outputs.
const mainStar = `
workflow(name = "crash")

LEDGER = "ledger.txt"

def num(v):
    if type(v) == "string":
        return int(v.strip())
    return v

def work(ctx):
    tag = ctx.step_id + " " + str(ctx.attempt) + " $CRASHTEST_PROC >> " + LEDGER
    sh("echo start " + tag + "; sleep 0.0$(($$ % 3))")
    sh("echo end " + tag)
    total = num(ctx.inputs.get("x", 0)) + 1
    for v in ctx.inputs.get("xs", []):
        total += num(v)
    return {"v": total}

def shell_step(id, x):
    tag = id + " - $CRASHTEST_PROC >> " + LEDGER
    return shell(id, "echo start " + tag + "; sleep 0.0$(($$ % 3)); echo end " + tag + "; echo $((INPUT_X + 1))",
                 inputs = {"x": x})

def value(s):
    # a task's output is {"v": n}, a shell step's {"stdout": "n\n", ...}
    if s.id in SHELLS:
        return s.output["stdout"]
    return s.output["v"]

SHELLS = set()

def chain(prefix, n, first_x, first_shell):
    prev = None
    for i in range(n):
        id = prefix + str(i)
        is_shell = (i % 2 == 0) == first_shell
        if prev == None:
            x = first_x
        else:
            x = value(prev)
        if is_shell:
            SHELLS.add(id)
            prev = shell_step(id, x)
        else:
            prev = task(id, work, inputs = {"x": x})
    return prev

a = chain("a", 11, 0, False)
fan = []
for i in range(24):
    id = "f" + str(i)
    if i % 2 == 1:
        SHELLS.add(id)
        fan.append(shell_step(id, a.output["v"]))
    else:
        fan.append(task(id, work, inputs = {"x": a.output["v"]}))
join = task("join", work, inputs = {"xs": [value(f) for f in fan]})
b = chain("b", 10, join.output["v"], True)
c = chain("c", 8, 0, False)
final = task("final", work, inputs = {"xs": [value(b), value(c)]})
output(final = final.output["v"], join = join.output["v"], a = a.output["v"], c = value(c))
`

// stepCount is the number of steps mainStar declares.
const stepCount = 11 + 24 + 1 + 10 + 8 + 1

type stepRecord struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Status  string `json:"status"`
	Attempt int    `json:"attempt"`
	// a sub_workflow step's child ("" when null); a string, so that
	// records compare with ==
	ChildRunID string `json:"child_run_id"`
}

type runRecord struct {
	ID     string       `json:"id"`
	Status string       `json:"status"`
	Output any          `json:"output"`
	Error  *string      `json:"error"`
	Steps  []stepRecord `json:"steps"`
}

// snapshot is what the database held for each step when a process ended.
type snapshot map[string]stepRecord

// generation is one flowscript process that ran steps of the round.
type generation struct {
	cmd    string // run or resume
	proc   int    // its $CRASHTEST_PROC
	killed bool
	dur    time.Duration // from its start until it was gone
	after  snapshot      // the committed state once the process was gone
	// linesAtKill is the ledger's length when the killed process was
	// gone: its lines after that were written by orphaned shell steps.
	linesAtKill int
	// tree is the whole run tree once the process was gone (TestCrashTree)
	tree *treeSnapshot
}

type round struct {
	t      *testing.T
	n      int
	rng    *rand.Rand
	base   string // holds dir and db
	dir    string // workspace: main.star and ledger.txt
	db     string
	mark   string // in the environment of every process of the round
	gens   []*generation
	procs  int // processes started
	runID  string
	stderr bytes.Buffer

	// snap, when set, records what was committed once generation g's
	// process was gone (g.after, and whatever else the test keeps);
	// created reports whether the round's run exists. TestCrashResume
	// leaves them nil: the single run's snapshot and findRun.
	snap    func(g *generation)
	created func() bool
	// failOK: a run or resume that exits 1 (a run failed) is expected
	failOK bool

	// statistics
	notCreated    int // kills before the run existed
	reranAfterEnd int // attempts that wrote "end" before the kill and yet ran again
	orphanEnds    int // attempts whose shell wrote "end" after its flowscript died
	silentTries   int // attempts committed as running that never wrote "start"
}

func TestCrashResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hundreds of processes and kills them")
	}
	rounds, rng := crashSetup(t, 30)

	// the reference: one run without kills
	start := time.Now()
	ref := newRound(t, 0, rng)
	ref.startRun(0)
	if len(ref.gens) != 1 || ref.gens[0].killed {
		t.Fatal("the reference run did not run once to the end")
	}
	refDur := time.Since(start)
	refRec := ref.record()
	want := refRec.Output
	// values flow through every step: a0..a10 count to 11, each fan-out
	// step adds one, the join adds them up, chain B counts on from there
	computed := map[string]any{"a": 11.0, "join": 1 + 24*12.0, "final": 1 + 299 + 8.0, "c": "8\n"}
	ref.check(refRec, computed)
	ref.cleanup()
	wantJSON, _ := json.Marshal(want)
	t.Logf("reference run: %s, output %s", refDur.Round(time.Millisecond), wantJSON)

	var kills, resumeKills, notCreated, reran, orphanEnds, silent, multiAttempt int
	var recovery []time.Duration
	began := time.Now()
	for n := 1; n <= rounds; n++ {
		r := newRound(t, n, rng)
		killed, killedResumes := r.crash(refDur)
		if killed {
			kills++
		}
		resumeKills += killedResumes
		if killed {
			recovery = append(recovery, r.gens[len(r.gens)-1].dur)
		}
		rec := r.record()
		r.check(rec, want)
		notCreated += r.notCreated
		reran += r.reranAfterEnd
		orphanEnds += r.orphanEnds
		silent += r.silentTries
		for _, s := range rec.Steps {
			if s.Attempt > 1 {
				multiAttempt++
			}
		}
		if t.Failed() {
			t.Fatalf("round %d failed; stderr of its processes:\n%s", n, r.stderr.String())
		}
		r.cleanup()
	}
	t.Logf("%d rounds in %s: %d runs killed (%d before the run was created), %d resumes killed; "+
		"%d steps needed more than one attempt; %d attempts wrote \"end\" before the kill and still ran again (their end was not committed), "+
		"%d more wrote it from an orphaned shell after the kill; %d attempts were committed as running but killed before writing \"start\"",
		rounds, time.Since(began).Round(time.Millisecond), kills, notCreated, resumeKills, multiAttempt, reran, orphanEnds, silent)
	crashFigures("kill -9 at random moments (55-step run)", rounds, kills, notCreated, resumeKills, multiAttempt, reran, recovery)
}

// crashFigures reports a random-kill test's figures. Its checks fail the
// test at the first round with a lost or duplicate run or a finished step
// that ran again, so a test that ends reports 0 of each.
func crashFigures(sec string, rounds, kills, notCreated, resumeKills, multiAttempt, reran int, recovery []time.Duration) {
	figure(sec, "rounds (run killed; before it existed; resumes killed)", "%d (%d; %d; %d)", rounds, kills, notCreated, resumeKills)
	figure(sec, "duplicate runs, lost runs", "0, 0 (checked in every round)")
	figure(sec, "finished steps run again", "0 (checked per step and process)")
	figure(sec, "unfinished steps run again (more than one attempt)", "%d (%d had written their end before the kill)", multiAttempt, reran)
	if len(recovery) > 0 {
		slices.Sort(recovery)
		figure(sec, "recovery (the last resume, to all ended): median, max", "%s, %s",
			recovery[len(recovery)/2].Round(time.Millisecond), recovery[len(recovery)-1].Round(time.Millisecond))
	}
}

// crashSetup reads the number of rounds (FLOWSCRIPT_RELIABILITY_ROUNDS,
// else def) and the seed (FLOWSCRIPT_CRASH_SEED, else the time), logs
// them, and returns the rounds and the random source.
//
// Tests whose rounds take seconds each (a 2,000-child spawn, a 50-child
// for_each, a timeout that has to pass) name a variable of their own in
// prefer, read before FLOWSCRIPT_RELIABILITY_ROUNDS: make reliability sets
// FLOWSCRIPT_HEAVY_ROUNDS lower, so that the suite ends within its time.
func crashSetup(t *testing.T, def int, prefer ...string) (int, *rand.Rand) {
	t.Helper()
	rounds := def
	for _, name := range append(prefer, "FLOWSCRIPT_RELIABILITY_ROUNDS") {
		s := os.Getenv(name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q is not a positive number", name, s)
		}
		rounds = n
		break
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("FLOWSCRIPT_CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FLOWSCRIPT_CRASH_SEED=%q is not a number", s)
		}
		seed = n
	}
	t.Logf("seed %d (replay with FLOWSCRIPT_CRASH_SEED=%d), %d rounds", seed, seed, rounds)
	return rounds, rand.New(rand.NewPCG(seed, 0x5eed))
}

// crash runs the round's workflow and kills it with SIGKILL somewhere
// between its start and nine tenths of refDur, the time a whole
// crash-free run takes (process start and Badger's first open included);
// then resumes until a resume runs to its end, in about a third of the
// rounds killing the resuming process too, once or twice. It reports
// whether the run was killed and how many resumes were.
func (r *round) crash(refDur time.Duration) (killed bool, resumeKills int) {
	rng := r.rng
	r.startRun(time.Duration(10+rng.IntN(int(refDur.Milliseconds())*9/10)) * time.Millisecond)
	if !r.gens[len(r.gens)-1].killed {
		return false, 0
	}
	killResumes := 0
	if rng.IntN(3) == 0 {
		killResumes = 1 + rng.IntN(2)
	}
	for !r.resume(killResumes > 0, refDur) {
		killResumes--
		resumeKills++
	}
	return true, resumeKills
}

func newRound(t *testing.T, n int, rng *rand.Rand) *round {
	t.Helper()
	return newRoundFiles(t, n, rng, map[string]string{"main.star": mainStar})
}

// newRoundFiles makes a round whose workspace holds files (paths relative
// to it); the round runs main.star.
func newRoundFiles(t *testing.T, n int, rng *rand.Rand, files map[string]string) *round {
	t.Helper()
	base := t.TempDir()
	r := &round{
		t: t, n: n, rng: rng, base: base,
		dir:  filepath.Join(base, "ws"),
		db:   filepath.Join(base, "db"),
		mark: fmt.Sprintf("FLOWSCRIPT_CRASHTEST_MARK=%d-%d-%d", os.Getpid(), n, time.Now().UnixNano()),
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		path := filepath.Join(r.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// command starts the CLI in the workspace.
func (r *round) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, append([]string{"--db", r.db}, args...)...)
	cmd.Dir = r.dir
	// kills come up to three in a row while one step runs: keep the
	// crash-loop protection (which would fail that step) out of the way
	cmd.Env = append(os.Environ(), r.mark, "FLOWSCRIPT_MAX_ENGINE_STOPS=1000")
	return cmd
}

// exec runs one generation; with killAfter > 0 it is killed with SIGKILL
// after that long, unless it ended before. It reports whether it was
// killed.
func (r *round) exec(name string, killAfter time.Duration, args ...string) bool {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	r.procs++
	cmd.Env = append(cmd.Env, fmt.Sprintf("CRASHTEST_PROC=%d", r.procs))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &r.stderr
	fmt.Fprintf(&r.stderr, "--- round %d: flowscript %s (kill after %s)\n", r.n, strings.Join(args, " "), killAfter)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gen := &generation{cmd: name, proc: r.procs}
	r.gens = append(r.gens, gen)
	began := time.Now()
	defer func() { gen.dur = time.Since(began) }()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	if killAfter > 0 {
		select {
		case err = <-done:
		case <-time.After(killAfter):
			if kerr := cmd.Process.Kill(); kerr != nil {
				t.Logf("kill: %v", kerr)
			}
			err = <-done
			gen.killed = isKilled(cmd.ProcessState)
			gen.linesAtKill = r.ledgerLength()
		}
	} else {
		err = <-done
	}
	if ctx.Err() != nil {
		t.Fatalf("round %d: flowscript %s did not end within 2 minutes\n%s", r.n, name, r.stderr.String())
	}
	var exit *exec.ExitError
	failedRun := r.failOK && errors.As(err, &exit) && exit.ExitCode() == 1
	if !gen.killed && err != nil && !failedRun {
		t.Fatalf("round %d: flowscript %s: %v\n%s", r.n, strings.Join(args, " "), err, r.stderr.String())
	}
	fmt.Fprintf(&r.stderr, "--- killed %v; stdout: %s\n", gen.killed, stdout.String())
	return gen.killed
}

// ledgerLength counts the lines of the ledger.
func (r *round) ledgerLength() int {
	data, _ := os.ReadFile(filepath.Join(r.dir, "ledger.txt"))
	return bytes.Count(data, []byte("\n"))
}

// isKilled reports whether a process died of SIGKILL (rather than ending
// on its own just before the kill).
func isKilled(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// startRun runs the workflow until it ends or is killed. A kill that came
// before the run was created leaves nothing to resume: then it starts
// again.
func (r *round) startRun(killAfter time.Duration) {
	for {
		if !r.exec("run", killAfter, "run", "main.star", "--durability", "durable") {
			r.takeSnapshot(r.gens[len(r.gens)-1])
			return
		}
		if r.runExists() {
			r.takeSnapshot(r.gens[len(r.gens)-1])
			return
		}
		r.notCreated++
		r.gens = r.gens[:len(r.gens)-1] // it ran no step: no line can name it
		killAfter += 50 * time.Millisecond
	}
}

// resume continues the run; with kill, the process is killed after a
// random delay. It reports whether the resume ran to its end.
func (r *round) resume(kill bool, refDur time.Duration) bool {
	var after time.Duration
	if kill {
		after = time.Duration(10+r.rng.IntN(int(refDur.Milliseconds()/2)+1)) * time.Millisecond
	}
	killed := r.exec("resume", after, "resume", "--durability", "durable")
	r.takeSnapshot(r.gens[len(r.gens)-1])
	return !killed
}

// takeSnapshot records what is committed once g's process is gone.
func (r *round) takeSnapshot(g *generation) {
	if r.snap != nil {
		r.snap(g)
		return
	}
	g.after = r.snapshot()
}

// runExists reports whether the round's run was created.
func (r *round) runExists() bool {
	if r.created != nil {
		return r.created()
	}
	return r.findRun() != ""
}

// findRun returns the round's run id, or "" if no run exists yet.
func (r *round) findRun() string {
	t := r.t
	t.Helper()
	if r.runID != "" {
		return r.runID
	}
	out := r.cli("runs", "--json")
	var runs []runRecord
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("runs --json: %v\n%s", err, out)
	}
	switch len(runs) {
	case 0:
		return ""
	case 1:
		r.runID = runs[0].ID
		return r.runID
	}
	t.Fatalf("round %d: %d runs in the database, want 1", r.n, len(runs))
	return ""
}

// cli runs a command that must succeed and returns its stdout.
func (r *round) cli(args ...string) []byte {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := r.command(ctx, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("round %d: flowscript %s: %v\n%s\nthe round's processes so far:\n%s", r.n, strings.Join(args, " "), err, stderr.String(), r.stderr.String())
	}
	return out
}

func (r *round) record() *runRecord {
	t := r.t
	t.Helper()
	id := r.findRun()
	if id == "" {
		t.Fatalf("round %d: no run in the database", r.n)
	}
	out := r.cli("show", "--json", id)
	var rec runRecord
	if err := json.Unmarshal(out, &rec); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	return &rec
}

// snapshot reads what is committed, with no process holding the database.
func (r *round) snapshot() snapshot {
	s := snapshot{}
	if r.findRun() == "" {
		return s
	}
	for _, st := range r.record().Steps {
		s[st.ID] = st
	}
	return s
}

type ledgerLine struct {
	no      int
	start   bool
	step    string
	attempt int // -1 for shell steps
	gen     int
}

// ledger reads ledger.txt once every process of the round is gone (shell
// steps of a killed process live on and may still write).
func (r *round) ledger() []ledgerLine {
	t := r.t
	t.Helper()
	r.waitOrphans()
	gens := map[int]int{}
	for i, g := range r.gens {
		gens[g.proc] = i
	}
	f, err := os.Open(filepath.Join(r.dir, "ledger.txt"))
	if err != nil {
		t.Fatalf("round %d: %v", r.n, err)
	}
	defer f.Close()
	var lines []ledgerLine
	sc := bufio.NewScanner(f)
	for no := 1; sc.Scan(); no++ {
		fields := strings.Fields(sc.Text())
		if len(fields) != 4 || (fields[0] != "start" && fields[0] != "end") {
			t.Errorf("round %d: ledger line %d is malformed: %q", r.n, no, sc.Text())
			continue
		}
		l := ledgerLine{no: no, start: fields[0] == "start", step: fields[1], attempt: -1}
		if fields[2] != "-" {
			l.attempt, err = strconv.Atoi(fields[2])
			if err != nil {
				t.Errorf("round %d: ledger line %d: bad attempt %q", r.n, no, fields[2])
			}
		}
		proc, err := strconv.Atoi(fields[3])
		g, ok := gens[proc]
		if err != nil || !ok {
			t.Errorf("round %d: ledger line %d: %q names no flowscript process of the round", r.n, no, sc.Text())
			continue
		}
		l.gen = g
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// waitOrphans waits until no process carries the round's mark: the shell
// steps that a killed flowscript left behind have ended.
func (r *round) waitOrphans() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if !markedProcessExists(r.mark) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("round %d: processes of the round are still running after 30 s", r.n)
}

func markedProcessExists(mark string) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := []byte(mark + "\x00")
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(env, want) {
			continue
		}
		// a zombie is dead already
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
				continue
			}
		}
		return true
	}
	return false
}

// cleanup removes the round's files once its processes are gone (t.TempDir
// would keep them all until the test ends).
func (r *round) cleanup() {
	r.waitOrphans()
	if err := os.RemoveAll(r.base); err != nil {
		r.t.Logf("round %d: %v", r.n, err)
	}
}

// check verifies the final record and the ledger against the snapshots.
func (r *round) check(rec *runRecord, want any) {
	t := r.t
	t.Helper()
	// 1. the outcome
	if rec.Status != "succeeded" {
		t.Errorf("round %d: run %s ended %s (error %v)", r.n, rec.ID, rec.Status, deref(rec.Error))
	}
	if len(rec.Steps) != stepCount {
		t.Errorf("round %d: %d steps, want %d", r.n, len(rec.Steps), stepCount)
	}
	final := snapshot{}
	for _, s := range rec.Steps {
		final[s.ID] = s
		if s.Status != "succeeded" || s.Attempt < 1 {
			t.Errorf("round %d: step %s ended %s with attempt %d", r.n, s.ID, s.Status, s.Attempt)
		}
	}
	if !reflect.DeepEqual(rec.Output, want) {
		t.Errorf("round %d: output %v, want %v (the crash-free run's)", r.n, rec.Output, want)
	}
	last := r.gens[len(r.gens)-1]
	if !reflect.DeepEqual(last.after, final) {
		t.Errorf("round %d: the record changed after the last process ended", r.n)
	}
	order := make([]string, len(rec.Steps))
	for i, s := range rec.Steps {
		order[i] = s.ID
	}
	r.checkSteps(final, order)
}

// checkSteps checks invariants 2–6 for every step of final, in order: how
// each moved from snapshot to snapshot, and the ledger against the
// snapshots. Steps are named as in the snapshots and the ledger (the step
// id; "path/id" in a run tree). A sub_workflow step writes no ledger lines
// and moves by allowedChildMove; every other step by allowedMove.
func (r *round) checkSteps(final snapshot, order []string) {
	t := r.t
	t.Helper()

	// 5. how each step moved from snapshot to snapshot
	prev := snapshot{}
	for gi, g := range r.gens {
		for _, id := range order {
			from, to := prev[id], g.after[id]
			if from.Status == "" {
				from = stepRecord{Status: "pending"}
			}
			if to.Status == "" {
				to = stepRecord{Status: "pending"}
			}
			allowed := allowedMove
			if final[id].Kind == "sub_workflow" {
				allowed = allowedChildMove
			}
			if !allowed(from, to) {
				child := ""
				if from.ChildRunID != "" || to.ChildRunID != "" {
					child = fmt.Sprintf(" (child %q, then %q)", from.ChildRunID, to.ChildRunID)
				}
				t.Errorf("round %d: step %s went from %s/%d to %s/%d%s across generation %d (%s, killed %v)",
					r.n, id, from.Status, from.Attempt, to.Status, to.Attempt, child, gi, g.cmd, g.killed)
			}
		}
		prev = g.after
	}

	// 2–4, 6: the ledger
	type key struct {
		step string
		gen  int
	}
	starts := map[key]ledgerLine{}
	ends := map[key]ledgerLine{}
	lastStart := map[string]ledgerLine{}
	for _, l := range r.ledger() {
		k := key{l.step, l.gen}
		g := r.gens[l.gen]
		if _, ok := final[l.step]; !ok {
			t.Errorf("round %d: ledger line %d names an unknown step %s", r.n, l.no, l.step)
			continue
		}
		if !l.start {
			if _, ok := ends[k]; ok {
				t.Errorf("round %d: step %s ended twice in generation %d (line %d)", r.n, l.step, l.gen, l.no)
			}
			st, ok := starts[k]
			if !ok {
				t.Errorf("round %d: step %s ended in generation %d without a start (line %d)", r.n, l.step, l.gen, l.no)
			} else if st.attempt != l.attempt {
				t.Errorf("round %d: step %s started attempt %d and ended attempt %d (line %d)", r.n, l.step, st.attempt, l.attempt, l.no)
			}
			ends[k] = l
			continue
		}
		if _, ok := starts[k]; ok {
			t.Errorf("round %d: step %s started twice in generation %d (line %d): an attempt ran twice", r.n, l.step, l.gen, l.no)
		}
		starts[k] = l
		// 3. committed before it ran, with the attempt it saw
		snap := g.after[l.step]
		if snap.Status != "running" && snap.Status != "succeeded" {
			t.Errorf("round %d: step %s started in generation %d (line %d) but the database then says %s/%d: it ran before its start was committed",
				r.n, l.step, l.gen, l.no, snap.Status, snap.Attempt)
		}
		if l.attempt >= 0 && l.attempt != snap.Attempt {
			t.Errorf("round %d: step %s ran attempt %d in generation %d (line %d) but the database then says attempt %d",
				r.n, l.step, l.attempt, l.gen, l.no, snap.Attempt)
		}
		// 4. a step whose completion was committed never runs again
		for h := 0; h < l.gen; h++ {
			if r.gens[h].after[l.step].Status == "succeeded" {
				t.Errorf("round %d: step %s ran again in generation %d (line %d) although its success was committed in generation %d",
					r.n, l.step, l.gen, l.no, h)
			}
		}
		if prevStart, ok := lastStart[l.step]; ok {
			if end, ended := ends[key{l.step, prevStart.gen}]; ended {
				if pg := r.gens[prevStart.gen]; pg.killed && end.no > pg.linesAtKill {
					r.orphanEnds++
				} else {
					r.reranAfterEnd++
				}
			}
		}
		lastStart[l.step] = l
	}
	// 6. every step finished in the generation of its last start
	for _, id := range order {
		s := final[id]
		if s.Kind == "sub_workflow" {
			if _, ok := lastStart[id]; ok {
				t.Errorf("round %d: sub_workflow step %s has ledger lines", r.n, id)
			}
			continue
		}
		ls, ok := lastStart[id]
		if !ok {
			t.Errorf("round %d: step %s has no start line", r.n, id)
			continue
		}
		end, ok := ends[key{id, ls.gen}]
		if !ok {
			t.Errorf("round %d: step %s has no end line for its last start (generation %d)", r.n, id, ls.gen)
		} else if end.attempt >= 0 && end.attempt != s.Attempt {
			t.Errorf("round %d: step %s last ended attempt %d, the record says attempt %d", r.n, id, end.attempt, s.Attempt)
		}
		gensStarted := 0
		for k := range starts {
			if k.step == id {
				gensStarted++
			}
		}
		if gensStarted > s.Attempt {
			t.Errorf("round %d: step %s started in %d processes but its attempt is %d", r.n, id, gensStarted, s.Attempt)
		} else {
			r.silentTries += s.Attempt - gensStarted
		}
	}
}

// allowedMove says whether a step may go from one committed state to
// another across the life of one process.
func allowedMove(from, to stepRecord) bool {
	switch from.Status {
	case "pending":
		return from.Attempt == 0 && ((to.Status == "pending" && to.Attempt == 0) ||
			((to.Status == "running" || to.Status == "succeeded") && to.Attempt == 1))
	case "running":
		return (to.Status == "running" && (to.Attempt == from.Attempt || to.Attempt == from.Attempt+1)) ||
			(to.Status == "succeeded" && to.Attempt == from.Attempt+1)
	case "succeeded":
		return to == from
	}
	return false
}

// allowedChildMove is allowedMove for a sub_workflow step (retries=0, no
// rerun): its one attempt starts, then its child's spawn commits (most
// often in the same transaction; a running step without a child gets it
// from the resume, under the same derived id), and a resume re-attaches
// to that child instead of starting a new attempt, so
// the attempt never goes past 1 and the child never changes:
// pending/0 -> pending/0, running/1, succeeded/1; running/1 -> running/1,
// succeeded/1 (the same child); succeeded/1 -> succeeded/1.
func allowedChildMove(from, to stepRecord) bool {
	switch from.Status {
	case "pending":
		return from.Attempt == 0 && ((to.Status == "pending" && to.Attempt == 0 && to.ChildRunID == "") ||
			((to.Status == "running" || to.Status == "succeeded") && to.Attempt == 1 && (to.ChildRunID != "" || to.Status == "running")))
	case "running":
		// a step started whose spawn had not committed gets its child
		return from.Attempt == 1 && to.Attempt == 1 && (to.ChildRunID == from.ChildRunID || from.ChildRunID == "") &&
			(to.Status == "running" || to.Status == "succeeded")
	case "succeeded":
		return to == from
	}
	return false
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
