// Regression test from a review: its comment describes the defect it
// caught, in the code as it was then.

package runtime

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
	"github.com/hashicorp/go-hclog"
)

// failStartStore fails any transaction that writes step "victim" as running.
type failStartStore struct{ store.Store }
type failStartTx struct{ store.Tx }

func (s *failStartStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(&failStartTx{tx}) })
}
func (t *failStartTx) Set(k, v []byte) error {
	if bytes.HasPrefix(k, []byte(journal.PrefixStep)) && bytes.Contains(v, []byte(`"id":"victim"`)) && bytes.Contains(v, []byte(`"status":"running"`)) {
		return errors.New("simulated disk error")
	}
	return t.Tx.Set(k, v)
}

func loadProg(t *testing.T, e *Engine, src string) *lang.Program {
	t.Helper()
	ws := lang.NewWorkspaceFiles(map[string][]byte{"m.star": []byte(src)}, e.LangOptions())
	prog, err := ws.LoadSource(context.Background(), "m.star", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(prog.Errors) > 0 {
		t.Fatal(prog.Errors)
	}
	return prog
}

// R2: a Dispatch whose commit fails releases the worker twice: once in
// decision.abandon (dispatchReady(nil) for its StartStep) and once more in
// dispatchReady's own loop. busy drifts below the real count.
func TestRegressDispatchCommitFailureDoubleRelease(t *testing.T) {
	bs, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := New(&failStartStore{bs}, Options{Workers: 1, Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Error})})
	defer e.Close()
	hold := make(chan struct{})
	e.RegisterHandler("hold", func(ctx context.Context, tc *TaskContext) (map[string]any, error) {
		<-hold
		return nil, nil
	})
	e.RegisterHandler("nop", func(ctx context.Context, tc *TaskContext) (map[string]any, error) { return nil, nil })
	ctx := context.Background()
	id, err := e.Start(ctx, loadProg(t, e, "task(\"x\", \"hold\")\ntask(\"victim\", \"nop\")\n"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // victim is Ready, waiting for x's worker
	e.q.mu.Lock()
	t.Logf("before: busy=%d ready=%d", e.q.busy, len(e.q.ready))
	e.q.mu.Unlock()
	close(hold) // x ends; its worker dispatches victim, whose commit fails
	time.Sleep(300 * time.Millisecond)
	e.q.mu.Lock()
	busy := e.q.busy
	e.q.mu.Unlock()
	rec, _ := e.Get(ctx, id)
	for _, s := range rec.Steps {
		t.Logf("%s %s %d", s.ID, s.Status, s.Attempt)
	}
	hist, _ := e.History(ctx, id)
	for _, h := range hist {
		t.Logf("%d %s %s %s", h.Seq, h.Type, h.Step, h.Status)
	}
	if busy != 0 {
		t.Fatalf("no step runs, yet busy=%d (want 0)", busy)
	}
}

// Every worker taken is given back: after runs that queue steps for a few
// workers (fan-outs with priorities, chains, failures with retries, then
// cancels), no worker stays taken and no step stays queued. A worker that
// gave itself to a step its end started once gave itself away a second
// time, and busy went below zero.
func TestWorkersAllReturned(t *testing.T) {
	bs, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := New(bs, Options{Workers: 3})
	defer e.Close()
	ctx := context.Background()
	settled := func(phase string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			e.q.mu.Lock()
			busy, ready := e.q.busy, len(e.q.ready)
			e.q.mu.Unlock()
			if busy == 0 && ready == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: after every run ended, %d workers taken, %d steps queued", phase, busy, ready)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	work := `
def ok(ctx):
    return 1
def bad(ctx):
    fail("no")
fan = [task("f%d" % i, ok, priority = i % 7) for i in range(40)]
prev = task("c0", ok, after = fan)
for i in range(1, 10):
    prev = task("c%d" % i, ok, after = [prev])
task("r", bad, retries = 2, retry_delay = "1ms", optional = True)
`
	startAll := func(src string, n int) []string {
		var ids []string
		for range n {
			id, err := e.Start(ctx, loadProg(t, e, src), StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	for _, id := range startAll(work, 4) {
		if _, err := e.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	settled("four runs")
	ids := startAll(work+"shell(\"slow\", \"sleep 5\")\n", 3)
	for _, id := range ids {
		if _, err := e.Cancel(ctx, id); err != nil && !errors.Is(err, ErrAlreadyEnded) {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		if _, err := e.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	settled("three cancelled runs")
}
