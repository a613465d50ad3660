package flowscript_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// The tree of the cancel tests: a root runs 10 mids, each mid runs 10
// leaves, and each leaf has a shell step and a task body (sh()) that
// write their shell's pid to pids/ and sleep. A "never" step at every
// level waits for what is cancelled, so nothing may ever start it.
const (
	treeRuns   = 1 + 10 + 100
	treeShells = 2 * 100
)

var cancelTreeFiles = map[string]string{
	"root.star": `
ms = [sub_workflow("mid", id = "m%d" % i) for i in range(10)]
shell("never", "touch never-ran", after = [m.done for m in ms])
`,
	"mid.star": `
ls = [sub_workflow("leaf", id = "l%d" % i) for i in range(10)]
shell("never", "touch never-ran", after = [l.done for l in ls])
`,
	"leaf.star": `
s = shell("sleep", "echo $$ > pids/s$$; sleep 60")
b = task("body", lambda ctx: sh("echo $$ > pids/t$$; sleep 60"))
shell("never", "touch never-ran", after = [s.done, b.done])
`,
}

// treeWatch follows a tree's history through the engine's Observer.
type treeWatch struct {
	mu           sync.Mutex
	cancelAt     time.Time         // set just before Cancel is called
	ended        map[string]string // run id → status of its run_ended
	lastEnd      time.Time         // when the last run_ended was observed
	startedAfter []string          // starts observed after the cancel
	allEnded     chan struct{}     // closed when every run of the tree ended
}

func newTreeWatch() *treeWatch {
	return &treeWatch{ended: map[string]string{}, allEnded: make(chan struct{})}
}

func (w *treeWatch) observe(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	switch ev.Type {
	case "run_ended":
		if _, seen := w.ended[run.ID]; !seen {
			w.ended[run.ID] = ev.Status
			w.lastEnd = now
			if len(w.ended) == treeRuns {
				close(w.allEnded)
			}
		}
	case "run_started", "step_started", "child_spawned", "run_resumed", "retry_scheduled":
		if !w.cancelAt.IsZero() {
			w.startedAfter = append(w.startedAfter, fmt.Sprintf("%s %s %s", run.Workflow, ev.Type, ev.Step))
		}
	}
}

// cancelTree is one tree, started, with every leaf's shells running.
type cancelTree struct {
	eng   *flowscript.Engine
	root  string
	pids  []int
	watch *treeWatch
	start time.Duration // Start → every shell running
}

// startCancelTree opens an engine on dbDir, starts the tree of ws and
// waits (up to timeout) until every leaf shell has written its pid.
func startCancelTree(tb testing.TB, ws, dbDir string, timeout time.Duration) *cancelTree {
	tb.Helper()
	pidDir := filepath.Join(ws, "pids")
	if err := os.RemoveAll(pidDir); err != nil {
		tb.Fatal(err)
	}
	if err := os.Mkdir(pidDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	watch := newTreeWatch()
	// 200 attempts sleep at once: the default pool of 32 would queue most
	eng, err := flowscript.Open(dbDir, flowscript.Options{Workers: 256, Observer: watch.observe})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { eng.Close() })
	ctx := context.Background()
	prog, err := eng.LoadFile(ctx, filepath.Join(ws, "root.star"), flowscript.LoadOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	began := time.Now()
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	var pids []int
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		pids = pidsIn(pidDir)
		if len(pids) == treeShells {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %s only %d of %d leaf shells are running", timeout, len(pids), treeShells)
		}
	}
	return &cancelTree{eng: eng, root: id, pids: pids, watch: watch, start: time.Since(began)}
}

// cancel cancels the root and returns how long it took from the call
// until the last run of the tree was observed ending (up to timeout).
func (c *cancelTree) cancel(tb testing.TB, timeout time.Duration) time.Duration {
	tb.Helper()
	c.watch.mu.Lock()
	c.watch.cancelAt = time.Now()
	began := c.watch.cancelAt
	c.watch.mu.Unlock()
	if _, err := c.eng.Cancel(context.Background(), c.root); err != nil {
		tb.Fatalf("cancel: %v", err)
	}
	select {
	case <-c.watch.allEnded:
	case <-time.After(timeout):
		c.watch.mu.Lock()
		n := len(c.watch.ended)
		c.watch.mu.Unlock()
		tb.Fatalf("%s after the cancel only %d of %d runs ended", timeout, n, treeRuns)
	}
	c.watch.mu.Lock()
	defer c.watch.mu.Unlock()
	return c.watch.lastEnd.Sub(began)
}

// livingInGroups lists the processes, zombies aside, whose process
// group is one of pgids: a shell step's or sh()'s group is its shell's pid.
func livingInGroups(pgids []int) []string {
	want := map[int]bool{}
	for _, p := range pgids {
		want[p] = true
	}
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(data), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); want[pg] || want[pid] {
			out = append(out, fmt.Sprintf("%d (group %s, state %s)", pid, f[2], f[0]))
		}
	}
	return out
}

// TestCancelTreeOf111Runs: cancelling the root of a 1 + 10 + 100 tree whose
// 100 leaves each run two sleeping shells ends every run and every step
// cancelled, leaves no process alive, and starts nothing afterwards.
func TestCancelTreeOf111Runs(t *testing.T) {
	ws := writeWorkspace(t, cancelTreeFiles)
	tree := startCancelTree(t, ws, t.TempDir(), 20*time.Second)
	eng, ctx := tree.eng, context.Background()
	for _, pid := range tree.pids {
		if !alive(pid) {
			t.Fatalf("shell %d ended before the cancel", pid)
		}
	}

	took := tree.cancel(t, 20*time.Second)
	t.Logf("every shell running %s after Start; cancel → last run ended: %s", tree.start.Round(time.Millisecond), took.Round(time.Millisecond))

	// the root's Wait and WaitTree agree
	wctx, stop := context.WithTimeout(ctx, 10*time.Second)
	defer stop()
	rec, err := eng.WaitTree(wctx, tree.root)
	if err != nil || rec.Status != "cancelled" {
		t.Fatalf("root: %+v %v", rec, err)
	}

	// no shell process (nor anything in its group) outlives the cancel;
	// zombies that this container's init does not reap count as gone
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		left = livingInGroups(tree.pids)
		for _, pid := range tree.pids {
			if alive(pid) {
				left = append(left, strconv.Itoa(pid))
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d processes still alive after the cancel: %v", len(left), left)
	}

	// every run of the tree ended cancelled, and each once
	tree.watch.mu.Lock()
	for id, status := range tree.watch.ended {
		if status != "cancelled" {
			t.Errorf("run %s ended %s (observed)", id, status)
		}
	}
	if started := tree.watch.startedAfter; len(started) > 0 {
		t.Errorf("%d things started after the cancel: %v", len(started), started[:min(len(started), 10)])
	}
	cancelAt := tree.watch.cancelAt
	tree.watch.mu.Unlock()

	runs, err := eng.List(ctx, flowscript.ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != treeRuns {
		t.Fatalf("%d runs, want %d", len(runs), treeRuns)
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.Workflow]++
		if r.Status != "cancelled" || r.RootRunID != tree.root {
			t.Errorf("run %s (%s) is %s in tree %s", r.ID, r.Workflow, r.Status, r.RootRunID)
		}
		full, err := eng.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range full.Steps {
			// what was running was stopped; what was waiting never starts
			if s.Status != "cancelled" || s.EndedAt == nil {
				t.Errorf("run %s (%s) step %s is %s", r.ID, r.Workflow, s.ID, s.Status)
			}
			switch s.ID {
			case "never":
				if s.Attempt != 0 || s.StartedAt != nil {
					t.Errorf("run %s (%s): step never started (attempt %d)", r.ID, r.Workflow, s.Attempt)
				}
			default:
				if s.Attempt != 1 || s.StartedAt == nil || s.StartedAt.After(cancelAt) {
					t.Errorf("run %s (%s) step %s: attempt %d started %v, cancel at %v", r.ID, r.Workflow, s.ID, s.Attempt, s.StartedAt, cancelAt)
				}
			}
		}
		hist, err := eng.History(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		cancelled := false
		for _, h := range hist {
			switch h.Type {
			case "cancel_requested":
				cancelled = true
			case "step_started", "child_spawned", "run_started", "run_resumed":
				if cancelled {
					t.Errorf("run %s (%s): %s %s after cancel_requested", r.ID, r.Workflow, h.Type, h.Step)
				}
			}
		}
		if !cancelled {
			t.Errorf("run %s (%s) has no cancel_requested event", r.ID, r.Workflow)
		}
	}
	if count["root"] != 1 || count["mid"] != 10 || count["leaf"] != 100 {
		t.Fatalf("runs per workflow %v", count)
	}
	if _, err := os.Stat(filepath.Join(ws, "never-ran")); err == nil {
		t.Fatal("a step started after the cancel")
	}
}

// BenchmarkCancelTree111: each iteration starts the 1 + 10 + 100 tree
// (200 sleeping shells) in a fresh durable engine, waits until every
// shell runs, then times Cancel of the root until the last run of the
// tree ended. Each iteration spawns 200 processes: use -benchtime 10x.
func BenchmarkCancelTree111(b *testing.B) {
	ws := writeWorkspaceB(b, cancelTreeFiles)
	var took, starts []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tree := startCancelTree(b, ws, b.TempDir(), 60*time.Second)
		b.StartTimer()
		d := tree.cancel(b, 60*time.Second)
		b.StopTimer()
		took = append(took, d)
		starts = append(starts, tree.start)
		if left := livingInGroups(tree.pids); len(left) > 0 {
			// RunShell reaps each group before its step ends
			time.Sleep(time.Second)
			if left = livingInGroups(tree.pids); len(left) > 0 {
				b.Fatalf("processes alive after the cancel: %v", left)
			}
		}
		tree.eng.Close()
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(rankMillis(took, 0.5), "median-ms/cancel")
	b.ReportMetric(rankMillis(took, 0.99), "p99-ms/cancel")
	b.ReportMetric(rankMillis(took, 1), "max-ms/cancel")
	b.ReportMetric(rankMillis(starts, 0.5), "median-ms/start")
}

// rankMillis is the nearest-rank p-quantile of ds, in milliseconds.
func rankMillis(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	i = max(0, min(i, len(s)-1))
	return float64(s[i].Microseconds()) / 1e3
}
