package runtime

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// A step attempt that a decision started and a later decision stopped
// before any worker took its job never runs: the worker finds the stop
// in the attempt's registration (decide.go handOver) and ends the step
// cancelled. The test holds the started job back from the queue (it
// commits the decision without carrying it out), cancels the run, then
// runs the job as a worker would.
func TestStoppedJobNeverRuns(t *testing.T) {
	bs, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := New(bs, Options{})
	defer e.Close()
	running, release := make(chan struct{}), make(chan struct{})
	e.RegisterHandler("hold", func(ctx context.Context, tc *TaskContext) (map[string]any, error) {
		close(running)
		<-release
		return nil, nil
	})
	var ran atomic.Int32
	e.RegisterHandler("count", func(ctx context.Context, tc *TaskContext) (map[string]any, error) {
		ran.Add(1)
		return nil, nil
	})
	ctx := context.Background()
	id, err := e.Start(ctx, loadProg(t, e, "a = task(\"a\", \"hold\")\ntask(\"b\", \"count\", after = [a])\n"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	<-running
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()

	// a ends (decided here, not by its worker): b starts, and its job is
	// handed over and registered, but not queued
	ar.mu.Lock()
	d := ar.decideLocked(e, core.StepEnded{Step: "a", Attempt: 1, At: e.now()})
	if d == nil || len(d.jobs) != 1 || d.jobs[0].def.ID != "b" || d.jobs[0].attempt != 1 {
		ar.mu.Unlock()
		t.Fatalf("the decision hands over %+v, want b's first attempt", d)
	}
	b := d.jobs[0]
	cms := e.c.submitAll(d.units(), ar)
	ar.mu.Unlock()
	if err := e.c.waitAll(cms); err != nil {
		t.Fatal(err)
	}
	e.apply(ar, core.Cancel{At: e.now()})
	e.execute(b, &handoff{})
	close(release) // a's own end is late now, and changes nothing

	rec, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "cancelled" || rec.Steps[1].Status != core.StepCancelled || deref(rec.Steps[1].Error) != "cancelled" {
		t.Fatalf("run %s, step b %s (%q): want both cancelled", rec.Status, rec.Steps[1].Status, deref(rec.Steps[1].Error))
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("b's body ran %d times after its attempt was stopped", n)
	}
}
