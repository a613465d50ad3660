// Regression tests from a review of the worker admission, the committer
// and the timeout changes. Each "R" comment describes the defect the test
// caught, in the code as it was then.

package flowscript_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// R1: a step left Ready (no worker free at admit) is put in the ready heap
// only after its commit (perform -> AwaitWorker -> q.await). If the busy
// worker ends and releases in between, ready is empty, busy goes to 0, and
// the step then waits for a release that never comes.
func TestRegressReadyLostWakeup(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	obs := func(run *flowscript.RunRecord, ev flowscript.HistoryEvent) {
		// B's first commit is observed before its AwaitWorker is performed
		if run.Workflow == "b" && ev.Type == "run_started" {
			once.Do(func() {
				close(release)                     // let A's step end
				time.Sleep(300 * time.Millisecond) // and its worker release (busy 1 -> 0)
			})
		}
	}
	eng := specEngine(t, flowscript.Options{Workers: 1, Observer: obs})
	eng.RegisterHandler("hold", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		<-release
		return nil, nil
	})
	ctx := t.Context()
	a, err := eng.LoadString(ctx, "a.star", `workflow(name="a")
task("a1", "hold")`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := eng.LoadString(ctx, "b.star", `workflow(name="b")
task("b1", lambda ctx: None)`)
	if err != nil {
		t.Fatal(err)
	}
	aid, err := eng.Start(ctx, a, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		r, _ := eng.Get(ctx, aid)
		return r != nil && r.Steps[0].Status == "running"
	})
	bid, err := eng.Start(ctx, b, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := eng.Wait(wctx, aid); err != nil {
		t.Fatalf("a: %v", err)
	}
	if _, err := eng.Wait(wctx, bid); err != nil {
		r, _ := eng.Get(ctx, bid)
		// a third run, started with the engine idle, is stuck as well
		cid, _ := eng.Start(ctx, b, flowscript.RunOptions{Workspace: t.TempDir()})
		c2, cancel2 := context.WithTimeout(ctx, 2*time.Second)
		defer cancel2()
		_, errc := eng.Wait(c2, cid)
		t.Fatalf("b never finished: %v; b1 is %s (attempt %d); a later run on the idle engine: %v", err, r.Steps[0].Status, r.Steps[0].Attempt, errc)
	}
	// and a third run with the same priority is blocked behind the stale
	// ready entry too
}

// R1 without hooks: many short runs on few workers.
func TestRegressReadyStress(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 2})
	ctx := t.Context()
	prog, err := eng.LoadString(ctx, "s.star", `
a = task("a", lambda ctx: None)
task("b", lambda ctx: None, after=[a])
task("c", lambda ctx: None, after=[a])
task("d", lambda ctx: None)
`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 25; k++ {
				id, err := eng.Start(ctx, prog, flowscript.RunOptions{Priority: (i + k) % 3})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stuck := 0
	for _, id := range ids {
		if _, err := eng.Wait(wctx, id); err != nil {
			stuck++
		}
	}
	if stuck > 0 {
		t.Fatalf("%d of %d runs never finished", stuck, len(ids))
	}
}

// R3: Close interrupts the running step; its worker then dispatches the
// Ready step, commits its start and runs its handler (with a cancelled
// context) while the engine is closing.
func TestRegressCloseRunsReadyStep(t *testing.T) {
	dir := t.TempDir()
	eng, err := flowscript.Open(dir, flowscript.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	var yCalls atomic.Int64
	var closing atomic.Bool
	var yDuringClose atomic.Int64
	eng.RegisterHandler("hold", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	eng.RegisterHandler("side", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		yCalls.Add(1)
		if closing.Load() {
			yDuringClose.Add(1)
		}
		return nil, nil
	})
	ctx := t.Context()
	prog, err := eng.LoadString(ctx, "m.star", `workflow(name="m")
task("x", "hold")
task("y", "side")
`)
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		r, _ := eng.Get(ctx, id)
		return r != nil && r.Steps[0].Status == "running"
	})
	closing.Store(true)
	eng.Close()
	eng2 := openEngine(t, dir, flowscript.Options{Workers: 1})
	r, err := eng2.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Steps {
		t.Logf("after close: %s %s attempt %d", s.ID, s.Status, s.Attempt)
	}
	eng2.RegisterHandler("hold", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) { return nil, nil })
	eng2.RegisterHandler("side", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		yCalls.Add(1)
		return nil, nil
	})
	if _, err := eng2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if r2, err := eng2.Wait(ctx, id); err == nil {
		t.Logf("after resume: run %s, y attempt %d; y's handler called %d times in all", r2.Status, r2.Steps[1].Attempt, yCalls.Load())
	}
	if n := yDuringClose.Load(); n > 0 {
		t.Fatalf("y's handler ran %d time(s) during Close; stored y: %s attempt %d", n, r.Steps[1].Status, r.Steps[1].Attempt)
	}
}

// R4: the timeout timer of a run's first execution is not stale after a
// rerun (Rerun loads a new activeRun; the old one's epoch never moves), and
// it calls cancelChildren unconditionally: it cancels the rerun's child
// long before the rerun's own timeout.
func TestRegressOldRunTimeoutCancelsRerunChild(t *testing.T) {
	ws := writeWorkspace(t, map[string]string{
		"root.star": "workflow(name = \"root\", timeout = \"2s\")\nsub_workflow(\"kid\", id = \"k\")\n",
		"kid.star":  "workflow(name = \"kid\")\nshell(\"s\", \"sleep 1.2\")\n",
	})
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	ctx := t.Context()
	t0 := time.Now()
	rec := runFile(t, eng, filepath.Join(ws, "root.star"), flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("first run %s %s", rec.Status, deref(rec.Error))
	}
	// first run ended ~1.2s after t0; its timer fires at t0+2s. Rerun now:
	// the rerun's timeout is rerun_at+2s, its child needs 1.2s.
	if _, err := eng.Rerun(ctx, rec.ID, "k", runtimeRerunOptions()); err != nil {
		t.Fatal(err)
	}
	rerunAt := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var r *flowscript.RunRecord
	for {
		var err error
		r, err = eng.Get(wctx, rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == "succeeded" || r.Status == "failed" || r.Status == "cancelled" {
			break
		}
		if wctx.Err() != nil {
			t.Fatal("rerun never ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("first run took %v; rerun at +%v ended %s after %v: %s", rec.EndedAt.Sub(t0), rerunAt.Sub(t0), r.Status, time.Since(rerunAt), deref(r.Error))
	if r.Status != "succeeded" {
		t.Fatalf("rerun %s: %s (its own timeout was 2s after the rerun)", r.Status, deref(r.Error))
	}
}

// R5: a decision whose encoding fails (NaN in an output) sets ar.broken and
// returns nil from decideLocked, but the workers Admit took for the steps it
// started are never released: with Workers=1 no other run can start a step.
func TestRegressEncodeFailureLeaksWorker(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 1})
	ctx := t.Context()
	bad, err := eng.LoadString(ctx, "bad.star", `workflow(name="bad")
a = task("a", lambda ctx: {"x": float("nan")})
task("b", lambda ctx: None, after = [a])
`)
	if err != nil {
		t.Fatal(err)
	}
	good, err := eng.LoadString(ctx, "good.star", `workflow(name="good")
task("g", lambda ctx: None)
`)
	if err != nil {
		t.Fatal(err)
	}
	bid, err := eng.Start(ctx, bad, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	r, err := eng.Get(ctx, bid)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Steps {
		t.Logf("bad run: %s %s %d %s", s.ID, s.Status, s.Attempt, deref(s.Error))
	}
	gid, err := eng.Start(ctx, good, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := eng.Wait(wctx, gid); err != nil {
		g, _ := eng.Get(ctx, gid)
		t.Fatalf("an unrelated run never got a worker: %v (g %+v)", err, g)
	}
}

// R1 without hooks: run A's step ends while run B's start (which found no
// worker) is being committed.
func TestRegressReadyStressNoHook(t *testing.T) {
	eng := specEngine(t, flowscript.Options{Workers: 1})
	eng.RegisterHandler("short", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		time.Sleep(rand.N(3 * time.Millisecond)) // ends at varied moments
		return nil, nil
	})
	ctx := t.Context()
	pa, err := eng.LoadString(ctx, "a.star", "workflow(name=\"a\")\ntask(\"s\", \"short\")\n")
	if err != nil {
		t.Fatal(err)
	}
	pb, err := eng.LoadString(ctx, "b.star", "workflow(name=\"b\")\ntask(\"s\", lambda ctx: None)\n")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		aid, err := eng.Start(ctx, pa, flowscript.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bid, err := eng.Start(ctx, pb, flowscript.RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err1 := eng.Wait(wctx, aid)
		_, err2 := eng.Wait(wctx, bid)
		cancel()
		if err1 != nil || err2 != nil {
			t.Fatalf("iteration %d: a %v, b %v", i, err1, err2)
		}
	}
}

// R6: a step that found no free worker was queued for one while its run's
// first decision was still uncommitted. When that commit then failed (a
// start refused by its idempotency key), the queued step was dispatched
// anyway and wrote a run that was never created: concurrent starts with
// one key left many runs bound to it.
func TestRegressRefusedStartLeavesNoRun(t *testing.T) {
	eng := openEngine(t, t.TempDir(), flowscript.Options{Workers: 1})
	ctx := context.Background()
	hold, err := eng.LoadString(ctx, "hold.star", "workflow(name = \"hold\")\nshell(\"s\", \"sleep 0.3\")\n")
	if err != nil {
		t.Fatal(err)
	}
	keyed, err := eng.LoadString(ctx, "keyed.star", "workflow(name = \"keyed\")\ntask(\"t\", lambda ctx: None)\n")
	if err != nil {
		t.Fatal(err)
	}
	ws := t.TempDir()
	if _, err := eng.Start(ctx, hold, flowscript.RunOptions{Workspace: ws}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make(chan string, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := eng.Start(ctx, keyed, flowscript.RunOptions{Workspace: ws, IdempotencyKey: "k"})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- id
		}()
	}
	wg.Wait()
	close(ids)
	first := ""
	for id := range ids {
		if first == "" {
			first = id
		} else if id != first {
			t.Fatalf("two starts with one key got runs %s and %s", first, id)
		}
	}
	if _, err := eng.Wait(ctx, first); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // what a stray dispatch would write
	runs, err := eng.List(ctx, flowscript.ListFilter{Workflow: "keyed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs of the keyed workflow, want 1", len(runs))
	}
}
