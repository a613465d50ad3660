package journal

import (
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// PutRun and PutStep refuse, inside the transaction, a record that would
// move the stored one back.
func TestTransitionsOnlyMoveForward(t *testing.T) {
	j := New(memStore(t))
	defer j.Close()
	write := func(o Op, err error) error {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return j.Wait(j.Submit([][]Op{{o}}))
	}
	at := time.Now()
	run := func(status core.RunStatus, epoch int) *RunRecord {
		return &RunRecord{ID: "r1", Workflow: "w", Status: status, Epoch: epoch, CreatedAt: at, Params: map[string]any{"status": "pending", "epoch": 9.0}}
	}
	for _, c := range []struct {
		rec  *RunRecord
		fail bool
	}{
		{run(core.RunRunning, 0), false},
		{run(core.RunSucceeded, 0), false},
		{run(core.RunRunning, 0), true},   // ended, then running in the same epoch
		{run(core.RunPending, 1), false},  // a rerun's higher epoch
		{run(core.RunSucceeded, 0), true}, // a lower epoch
	} {
		err := write(PutRun(c.rec))
		if (err != nil) != c.fail || err != nil && !strings.Contains(err.Error(), "cannot move back") {
			t.Fatalf("run %s epoch %d: %v, want failure %v", c.rec.Status, c.rec.Epoch, err, c.fail)
		}
	}
	step := func(status core.StepStatus, attempt int) *StepRecord {
		return &StepRecord{ID: "s", Status: status, Attempt: attempt}
	}
	for _, c := range []struct {
		rec  *StepRecord
		fail bool
	}{
		{step(core.StepRunning, 1), false},
		{step(core.StepSucceeded, 1), false},
		{step(core.StepRunning, 1), true},
		{step(core.StepRunning, 2), false},
	} {
		err := write(PutStep("r1", 0, c.rec))
		if (err != nil) != c.fail {
			t.Fatalf("step %s attempt %d: %v, want failure %v", c.rec.Status, c.rec.Attempt, err, c.fail)
		}
	}
}
