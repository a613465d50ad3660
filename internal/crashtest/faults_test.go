package crashtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/flowscript/flowscript/internal/faultstore"
	"github.com/flowscript/flowscript/internal/testio"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// faultsStar has a chain, a fan-out and fan-in, and a blocking child.
const faultsStar = `workflow(name = "faults")
a = task("a", "nop")
fan = [task("f" + str(i), "nop", after = [a]) for i in range(5)]
j = task("j", "nop", after = fan)
sub_workflow("kid", id = "k", after = [j], script = "workflow(name = \"kid\")\ntask(\"x\", \"nop\")\ntask(\"y\", \"nop\", after = [\"x\"])\n")
`

// TestStoreFaults runs workflows on a real Badger store wrapped so that 1%
// and then 10% of its operations fail (reads, writes, commits). Once the
// faults stop, a new engine resumes: every run must end, every run that
// succeeded must have every step succeeded, and CheckHistories must find
// every history whole and every parent/child link consistent.
func TestStoreFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("runs hundreds of steps under injected faults")
	}
	runs := 20
	if os.Getenv("FLOWSCRIPT_RELIABILITY_ROUNDS") != "" {
		runs = 100
	}
	for _, rate := range []float64{0.01, 0.10} {
		t.Run(fmt.Sprintf("%g%%", rate*100), func(t *testing.T) {
			bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{Durability: badgerstore.Fast})
			if err != nil {
				t.Fatal(err)
			}
			defer bs.Close()
			fs := faultstore.New(bs, uint64(rate*1000)+1)
			nop := func(ctx context.Context, tc *runtime.TaskContext) (map[string]any, error) { return nil, nil }
			var engineLog testio.SyncBuffer
			newEngine := func() *runtime.Engine {
				e := runtime.New(fs, runtime.Options{Workers: 8, Logger: hclog.New(&hclog.LoggerOptions{Output: &engineLog, Level: hclog.Warn})})
				e.RegisterHandler("nop", nop)
				return e
			}
			e := newEngine()
			ctx := context.Background()
			fs.SetRate(rate)
			var ids []string
			refused := 0
			for i := 0; i < runs; i++ {
				ws := lang.NewWorkspaceFiles(map[string][]byte{"faults.star": []byte(faultsStar)}, e.LangOptions())
				prog, err := ws.Load(ctx, "faults.star")
				if err != nil {
					t.Fatal(err)
				}
				for attempt := 0; attempt < 100; attempt++ {
					id, err := e.Start(ctx, prog, runtime.StartOptions{})
					if err == nil {
						ids = append(ids, id)
						break
					}
					refused++ // a start whose commit failed stores nothing: again
				}
			}
			stuck, stopped := 0, 0
			for _, id := range ids {
				// a run under faults ends or stops (a failed commit stops
				// it, and the parents waiting for it): one that does
				// neither would keep `flowscript run` waiting for ever
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err := e.Wait(wctx, id)
				stalled := wctx.Err() != nil
				cancel()
				switch {
				case stalled:
					stuck++ // no progress for a minute although not stopped
					t.Errorf("run %s neither ended nor stopped within a minute under faults: %v", id, err)
				case err != nil:
					stopped++ // stopped by a failed commit: resumed below
				}
			}
			e.Close()
			fs.SetRate(0)
			injected, ops := fs.Injected(), fs.Ops()

			e = newEngine()
			defer e.Close()
			began := time.Now()
			if _, err := e.Resume(ctx); err != nil {
				t.Fatalf("resume after the faults: %v", err)
			}
			failed := 0
			for _, id := range ids {
				wctx, cancel := context.WithTimeout(ctx, time.Minute)
				rec, err := e.Wait(wctx, id)
				cancel()
				if err != nil {
					t.Fatalf("run %s after the faults stopped: %v\n%s\nengine log:\n%s", id, err, describeTree(ctx, e, id), tail(engineLog.String()))
				}
				if !rec.Status.Terminal() {
					t.Fatalf("run %s is %s after the faults stopped", id, rec.Status)
				}
				if rec.Status == core.RunSucceeded {
					for _, s := range rec.Steps {
						if s.Status != core.StepSucceeded {
							t.Errorf("run %s succeeded with step %s %s", id, s.ID, s.Status)
						}
					}
				} else {
					failed++
					t.Logf("run %s %s: %s", id, rec.Status, deref(rec.Error))
				}
			}
			recovery := time.Since(began)
			unfinished, err := e.Unfinished(ctx)
			if err != nil || len(unfinished) > 0 {
				t.Fatalf("unfinished after resume: %v %v", unfinished, err)
			}
			rep, err := runtime.CheckHistories(ctx, bs)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rep.Problems {
				t.Errorf("history: %s", p)
			}
			sec := fmt.Sprintf("store faults %g%%", rate*100)
			if stuck > 0 {
				t.Logf("engine log:\n%s", tail(engineLog.String()))
			}
			figure(sec, "operations, faults injected", "%d, %d", ops, injected)
			figure(sec, "runs started (starts refused by a fault, retried)", "%d (%d)", len(ids), refused)
			figure(sec, "runs stopped by a failed commit, resumed", "%d", stopped)
			figure(sec, "runs neither ended nor stopped under faults", "%d", stuck)
			figure(sec, "runs terminal after faults stop", "%d of %d (%d failed)", len(ids), len(ids), failed)
			figure(sec, "history or link problems", "%d", len(rep.Problems))
			figure(sec, "recovery (resume to all ended)", "%s", recovery.Round(time.Millisecond))
		})
	}
}

// describeTree says where each run of a tree stands: its status, epoch
// and steps (status, attempt, child), whether this engine runs it, and
// its history, for a failure message.
func describeTree(ctx context.Context, e *runtime.Engine, id string) string {
	var b strings.Builder
	var walk func(id, indent string)
	walk = func(id, indent string) {
		rec, err := e.Get(ctx, id)
		if err != nil {
			fmt.Fprintf(&b, "%s%s: %v\n", indent, id, err)
			return
		}
		fmt.Fprintf(&b, "%srun %s %s %s active=%v\n", indent, rec.ID, rec.Workflow, rec.Status, e.IsActive(rec.ID))
		for _, s := range rec.Steps {
			fmt.Fprintf(&b, "%s  %s %s %s attempt %d child %s\n", indent, s.ID, s.Kind, s.Status, s.Attempt, deref(s.ChildRunID))
		}
		if evs, err := e.History(ctx, rec.ID); err == nil {
			for _, ev := range evs {
				fmt.Fprintf(&b, "%s  | %d %s %s %s\n", indent, ev.Seq, ev.Type, ev.Step, ev.Status)
			}
		}
		for _, s := range rec.Steps {
			if s.ChildRunID != nil {
				walk(*s.ChildRunID, indent+"    ")
			}
		}
	}
	walk(id, "")
	return b.String()
}
