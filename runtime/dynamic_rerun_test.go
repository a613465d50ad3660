package runtime

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// scanCounter counts the scans of one run's children (the real store
// underneath).
type scanCounter struct {
	store.Store
	prefix atomic.Pointer[[]byte]
	scans  atomic.Int64
}

type scanCounterTx struct {
	store.Tx
	s *scanCounter
}

func (s *scanCounter) View(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.View(ctx, func(tx store.Tx) error { return fn(&scanCounterTx{tx, s}) })
}

func (t *scanCounterTx) Scan(prefix []byte, opts store.ScanOptions, fn func(k, v []byte) error) error {
	if p := t.s.prefix.Load(); p != nil && bytes.Equal(prefix, *p) {
		t.s.scans.Add(1)
	}
	return t.Tx.Scan(prefix, opts, fn)
}

// dryRunScans runs a workflow of `steps` for_each steps whose child of
// item 1 fails, then plans a rerun --failed, and returns how many times
// planning it read the run's children, and the plan.
func dryRunScans(t *testing.T, steps int) (int64, *RerunRun) {
	t.Helper()
	ctx := context.Background()
	var src strings.Builder
	for n := 0; n < steps; n++ {
		fmt.Fprintf(&src, "for_each(\"each%d\", items = [0, 1, 2], workflow = \"leaf\", inputs = lambda i: {\"i\": i}, on_failure = \"continue\")\n", n)
	}
	e, st, rec := runFiles(t, map[string]string{
		"main.star": src.String(),
		"leaf.star": "workflow(params = {\"i\": 0})\n" +
			"def body(ctx):\n    if ctx.params[\"i\"] == 1:\n        fail(\"no\")\n    return {\"i\": ctx.params[\"i\"]}\n" +
			"task(\"t\", body)\n",
	})
	if rec.Status != core.RunFailed {
		t.Fatalf("run: %+v", rec)
	}
	id := rec.ID
	prefix := journal.ChildKey(id, "")
	st.prefix.Store(&prefix)
	plan, err := e.Rerun(ctx, id, "", RerunOptions{DryRun: true, Failed: true})
	if err != nil {
		t.Fatal(err)
	}
	st.prefix.Store(nil)
	for _, r := range plan.Runs {
		if r.RunID == id {
			return st.scans.Load(), &r
		}
	}
	t.Fatalf("plan without run %s: %+v", id, plan)
	return 0, nil
}

// A dry run of rerun --failed reads the run's children once, however
// many for_each steps keep their succeeded children, and plans each.
func TestDryRunReadsChildrenOnce(t *testing.T) {
	one, _ := dryRunScans(t, 1)
	three, plan := dryRunScans(t, 3)
	if three != one {
		t.Errorf("planning 3 steps read the children %d times, 1 step %d times", three, one)
	}
	for n := 0; n < 3; n++ {
		step := fmt.Sprintf("each%d", n)
		if k, nw := plan.KeptIterations[step], plan.NewIterations[step]; fmt.Sprint(k, nw) != "[0 2] [1]" {
			t.Errorf("%s: kept %v, new %v; want [0 2] and [1]", step, k, nw)
		}
	}
}

// runFiles runs files' main.star to its end on an engine over a real
// Badger, its child scans counted, and returns the engine (closed when
// the test ends), the counter, and the run's record.
func runFiles(t *testing.T, files map[string]string) (*Engine, *scanCounter, *RunRecord) {
	t.Helper()
	ctx := context.Background()
	bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &scanCounter{Store: bs}
	e := New(st, Options{})
	t.Cleanup(func() { e.Close() })
	srcs := map[string][]byte{}
	for name, src := range files {
		srcs[name] = []byte(src)
	}
	prog, err := lang.NewWorkspaceFiles(srcs, e.LangOptions()).LoadSource(ctx, "main.star", srcs["main.star"])
	if err != nil || len(prog.Errors) > 0 {
		t.Fatal(err, prog.Errors)
	}
	id, err := e.Start(ctx, prog, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return e, st, rec
}
