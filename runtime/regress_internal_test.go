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
	if bytes.HasPrefix(k, []byte(prefixStep)) && bytes.Contains(v, []byte(`"id":"victim"`)) && bytes.Contains(v, []byte(`"status":"running"`)) {
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
