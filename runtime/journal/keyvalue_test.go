package journal

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// PutStep and AppendHistory build key and value in one buffer: both are
// what stepKey/encodeStep and histKey/encodeHistory make, for a value
// that fits the room left after the key and for one that outgrows it.
func TestOpKeyAndValueShareABuffer(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, out := range []any{nil, strings.Repeat("x", 1000)} {
		rec := &StepRecord{ID: "s", Kind: "task", Status: core.StepSucceeded, Attempt: 1, StartedAt: &at, EndedAt: &at, Output: out}
		op, err := PutStep("run-1", 7, rec)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := encodeStep(rec)
		if !bytes.Equal(op.key, stepKey("run-1", 7)) || !bytes.Equal(op.val, want) {
			t.Errorf("PutStep: key %q value %q, want %q and %q", op.key, op.val, stepKey("run-1", 7), want)
		}
		if cap(op.key) != len(op.key) {
			t.Errorf("PutStep's key has room after it (cap %d, len %d): a value could overwrite what follows it", cap(op.key), len(op.key))
		}
		s, _ := out.(string)
		msg := strings.Repeat("e", len(s))
		h := &HistoryEvent{Seq: 3, Type: core.RecStepEnded, Time: at, Step: "s", Attempt: 1, Error: msg}
		hop, err := AppendHistory("run-1", h)
		if err != nil {
			t.Fatal(err)
		}
		run := &RunRecord{ID: "run-1", Workflow: "w", Status: core.RunRunning, StartedAt: &at, Output: out}
		rop, err := PutRun(run)
		if err != nil {
			t.Fatal(err)
		}
		rwant, _ := encodeRun(run)
		if !bytes.Equal(rop.key, runKey("run-1")) || !bytes.Equal(rop.val, rwant) || cap(rop.key) != len(rop.key) {
			t.Errorf("PutRun: key %q value %q, want %q and %q", rop.key, rop.val, runKey("run-1"), rwant)
		}
		hwant, _ := encodeHistory(h)
		if !bytes.Equal(hop.key, histKey("run-1", 3)) || !bytes.Equal(hop.val, hwant) {
			t.Errorf("AppendHistory: key %q value %q, want %q and %q", hop.key, hop.val, histKey("run-1", 3), hwant)
		}
	}
}
